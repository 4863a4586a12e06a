"""Runs sent whole, in pieces, in any order, and again: the stored state is the same."""

import copy
import itertools

import pytest

from telemetry.models import WorkflowRun, WorkflowRunStep
from tests.conftest import full_run
from tests.telemetry.helpers import snapshot, table_ids, wipe


def pieces(run: dict) -> list[dict]:
    """Start, each step on its own, then the end: how a client streams a run."""
    start = {
        k: run[k]
        for k in (
            "run_id",
            "workflow_id",
            "channel",
            "external_id",
            "user_id",
            "conversation_id",
            "started_at",
            "context",
            "endpoints_used",
            "config_snapshot",
            "tier",
            "tier_reason",
        )
    }
    start["status"] = "running"
    steps = [{"run_id": run["run_id"], "steps": [step]} for step in run["steps"]]
    end = {"run_id": run["run_id"], "status": run["status"], "ended_at": run["ended_at"]}
    return [start, *steps, end]


def test_replaying_a_batch_changes_nothing(ingest):
    run = full_run()
    assert ingest(run).json()["results"][0]["status"] == "created"
    before, ids = snapshot(), table_ids()
    for _ in range(2):
        assert ingest(run).json()["results"][0]["status"] == "unchanged"
    assert snapshot() == before
    assert table_ids() == ids


def test_a_run_sent_in_pieces_equals_the_run_sent_whole(ingest):
    run = full_run()
    ingest(run)
    whole = snapshot()
    wipe()
    statuses = [ingest(p).json()["results"][0]["status"] for p in pieces(run)]
    assert statuses == ["created", "updated", "updated", "updated", "updated"]
    assert snapshot() == whole


@pytest.mark.parametrize("order", list(itertools.permutations(range(5)))[::17])
def test_pieces_in_any_order_end_in_the_same_state(ingest, order):
    run = full_run()
    parts = pieces(run)
    for i in order:
        ingest(parts[i])
    stored = WorkflowRun.objects.get(run_id=run["run_id"])
    assert stored.status == "completed"
    assert stored.workflow_id == "support-triage"
    assert stored.duration_ms == 9500
    assert stored.step_count == 3
    assert stored.llm_tokens_used == 1500 + 2200
    assert list(stored.steps.values_list("step_number", flat=True)) == [1, 2, 3]


def test_a_step_before_its_run_creates_a_pending_run_that_fills_in_later(ingest):
    run = full_run()
    first = {"run_id": run["run_id"], "steps": [run["steps"][0]]}
    assert ingest(first).json()["results"][0]["status"] == "created"
    stored = WorkflowRun.objects.get(run_id=run["run_id"])
    assert (stored.status, stored.workflow_id, stored.llm_tokens_used) == ("pending", None, 1500)
    ingest(run)
    stored.refresh_from_db()
    assert (stored.status, stored.workflow_id, stored.step_count) == (
        "completed",
        "support-triage",
        3,
    )


def test_a_late_running_piece_does_not_undo_completed(ingest):
    run = full_run()
    ingest(run)
    response = ingest({"run_id": run["run_id"], "status": "running"})
    assert response.json()["results"][0]["status"] == "unchanged"
    assert WorkflowRun.objects.get(run_id=run["run_id"]).status == "completed"


def test_a_final_status_can_be_corrected(ingest):
    run = full_run()
    ingest(run)
    ingest({"run_id": run["run_id"], "status": "failed", "error": {"message": "judge said no"}})
    stored = WorkflowRun.objects.get(run_id=run["run_id"])
    assert (stored.status, stored.error_message) == ("failed", "judge said no")


def test_context_keys_from_pieces_are_merged(ingest):
    run = full_run()
    ingest(run)
    ingest({"run_id": run["run_id"], "context": {"retry_attempt": 1, "shard": "eu"}})
    stored = WorkflowRun.objects.get(run_id=run["run_id"])
    assert stored.context == {"correlation_id": "xyz789", "retry_attempt": 1, "shard": "eu"}


def test_updating_one_step_recomputes_the_run_totals(ingest):
    run = full_run()
    ingest(run)
    changed = copy.deepcopy(run["steps"][0])
    changed["llm"]["usage"] = {"prompt_tokens": 10, "completion_tokens": 5}
    assert (
        ingest({"run_id": run["run_id"], "steps": [changed]}).json()["results"][0]["status"]
        == "updated"
    )
    stored = WorkflowRun.objects.get(run_id=run["run_id"])
    steps = WorkflowRunStep.objects.filter(run=stored)
    assert stored.llm_tokens_used == 15 + 2200 == sum(s.total_tokens or 0 for s in steps)
    assert stored.cost_usd == sum(s.cost_usd or 0 for s in steps)


def test_the_same_run_twice_in_one_batch_is_merged_in_order(ingest):
    run = full_run()
    results = ingest(run, {"run_id": run["run_id"], "tier": 3}).json()["results"]
    assert [r["status"] for r in results] == ["created", "updated"]
    assert WorkflowRun.objects.get(run_id=run["run_id"]).tier == 3


def test_run_totals_come_from_the_steps(ingest):
    run = full_run()
    ingest(run)
    stored = WorkflowRun.objects.get(run_id=run["run_id"])
    assert stored.input_tokens == 1200 + 1800
    assert stored.output_tokens == 300 + 400
    assert stored.cached_input_tokens == 200 + 1000
    assert stored.llm_model == "claude-sonnet-4-5"  # the last LLM call
    assert stored.llm_prompt == "Classify this ticket"
    assert stored.llm_response == "Sorry about that invoice..."
    costs = [s.cost_usd for s in stored.steps.all() if s.cost_usd is not None]
    assert len(costs) == 2 and stored.cost_usd == sum(costs) > 0
