"""consolidated run -> legacy rows: every legacy table, compared with the consolidated rows."""

from decimal import Decimal

from django.db import connection, transaction

from telemetry.models import (
    Conversation,
    LlmUsageLog,
    Message,
    WorkflowEvent,
    WorkflowRun,
    WorkflowStep,
    WorkflowTrace,
    WorkflowTraceContext,
    WorkflowTraceEndpoint,
    WorkflowTraceScreenshot,
)
from telemetry.projection import project_runs
from tests.conftest import full_run
from tests.telemetry.helpers import snapshot, table_ids


def stored(run_doc: dict) -> WorkflowRun:
    return WorkflowRun.objects.get(run_id=run_doc["run_id"])


def test_the_trace_mirrors_the_run(ingest):
    doc = full_run()
    ingest(doc)
    run = stored(doc)
    trace = WorkflowTrace.objects.get(run_id=run.run_id)
    for name in (
        "workflow_id",
        "status",
        "channel",
        "external_id",
        "user_id",
        "started_at",
        "ended_at",
        "duration_ms",
        "error_message",
        "created_at",
    ):
        assert getattr(trace, name) == getattr(run, name), name
    assert trace.org_id == run.org_id


def test_legacy_steps_mirror_the_steps(ingest):
    doc = full_run()
    ingest(doc)
    run = stored(doc)
    trace = WorkflowTrace.objects.get(run_id=run.run_id)
    legacy = {s.step_number: s for s in WorkflowStep.objects.filter(run_id=run.run_id)}
    steps = list(run.steps.order_by("step_number"))
    assert sorted(legacy) == [s.step_number for s in steps]
    for step in steps:
        old = legacy[step.step_number]
        assert old.trace_id == trace.trace_id
        assert (old.node_id, old.name, old.step_type, old.status, old.retry_count) == (
            step.node_id,
            step.name,
            step.kind,
            step.status,
            step.retry_count,
        )
        assert (old.started_at, old.ended_at, old.duration_ms) == (
            step.started_at,
            step.ended_at,
            step.duration_ms,
        )
        assert (old.input_data, old.output_data, old.error_message) == (
            step.input_data,
            step.output_data,
            step.error_message,
        )


def test_one_event_row_per_event_in_order(ingest):
    doc = full_run()
    ingest(doc)
    run = stored(doc)
    rows = list(WorkflowEvent.objects.filter(run_id=run.run_id).order_by("step_number", "position"))
    expected = [
        (s.step_number, i + 1, e)
        for s in run.steps.order_by("step_number")
        for i, e in enumerate(s.events)
    ]
    assert len(rows) == len(expected) == 3
    for row, (number, position, event) in zip(rows, expected, strict=True):
        assert (row.step_number, row.position, row.event_type) == (number, position, event["type"])
        assert row.event_data == event.get("data", {})
        step = WorkflowStep.objects.get(run_id=run.run_id, step_number=number)
        assert row.step_id == step.step_id
    assert rows[0].event_timestamp.isoformat() == "2025-01-14T10:30:01+00:00"
    assert rows[2].event_timestamp is None


def test_one_screenshot_row_per_screenshot(ingest):
    doc = full_run()
    ingest(doc)
    (row,) = WorkflowTraceScreenshot.objects.filter(run_id=doc["run_id"])
    shot = doc["steps"][1]["screenshots"][0]
    assert (
        row.step_number,
        row.position,
        row.url,
        row.thumbnail_url,
        row.action,
        row.selector,
        row.element_found,
        row.confidence,
    ) == (2, 1, shot["url"], shot["thumbnail_url"], shot["action"], shot["selector"], True, 0.95)
    assert row.taken_at.isoformat() == "2025-01-14T10:30:05+00:00"


def test_one_context_row_per_key_and_one_endpoint_row_per_endpoint(ingest):
    doc = full_run()
    ingest(doc)
    context = {
        r.context_key: r.context_value
        for r in WorkflowTraceContext.objects.filter(run_id=doc["run_id"])
    }
    assert context == doc["context"]
    endpoints = list(
        WorkflowTraceEndpoint.objects.filter(run_id=doc["run_id"])
        .order_by("position")
        .values_list("endpoint", flat=True)
    )
    assert endpoints == doc["endpoints_used"]


def test_one_usage_log_per_llm_call_with_its_tokens_and_cost(ingest):
    doc = full_run()
    ingest(doc)
    run = stored(doc)
    logs = {log.step_number: log for log in LlmUsageLog.objects.filter(run_id=run.run_id)}
    llm_steps = {s.step_number: s for s in run.steps.exclude(llm_model=None)}
    assert sorted(logs) == sorted(llm_steps) == [1, 3]
    for number, step in llm_steps.items():
        log = logs[number]
        assert (log.provider, log.model, log.request_type, log.user_id) == (
            step.llm_provider,
            step.llm_model,
            "support-triage",
            "user-7",
        )
        assert (log.prompt_tokens, log.completion_tokens, log.total_tokens, log.cached_tokens) == (
            step.input_tokens,
            step.output_tokens,
            step.total_tokens,
            step.cached_input_tokens,
        )
        assert log.cost == step.cost_usd and log.duration_ms == step.duration_ms
        assert log.created_at == step.started_at
    assert sum(log.total_tokens for log in logs.values()) == run.llm_tokens_used
    assert sum(log.cost for log in logs.values()) == run.cost_usd


def test_a_conversation_gets_one_message_per_llm_call_and_exact_totals(ingest):
    doc = full_run()
    ingest(doc)
    run = stored(doc)
    conversation = Conversation.objects.get(org_id=run.org_id, conversation_id="conv-1")
    messages = list(Message.objects.filter(run_id=run.run_id).order_by("step_number"))
    assert [(m.step_number, m.role, m.provider_used, m.model_used) for m in messages] == [
        (1, "assistant", "openai", "gpt-4o"),
        (3, "assistant", "anthropic", "claude-sonnet-4-5"),
    ]
    assert messages[0].content == "billing"
    assert all(m.conversation_id == conversation.id for m in messages)
    assert conversation.message_count == 2
    assert conversation.total_tokens == run.llm_tokens_used
    assert conversation.total_cost == run.cost_usd


def test_a_run_without_conversation_writes_no_messages(ingest):
    doc = full_run(conversation_id=None)
    del doc["conversation_id"]
    ingest(doc)
    assert Message.objects.count() == 0 and Conversation.objects.count() == 0


def test_unknown_model_is_counted_and_flagged_not_rejected(ingest):
    doc = full_run()
    doc["steps"][0]["llm"]["model"] = "acme-private-9"
    doc["steps"][0]["llm"]["provider"] = "acme"
    assert ingest(doc).status_code == 200
    run = stored(doc)
    step = run.steps.get(step_number=1)
    assert (step.cost_usd, step.cost_source, step.total_tokens) == (None, "unknown_model", 1500)
    assert run.llm_tokens_used == 1500 + 2200
    log = LlmUsageLog.objects.get(run_id=run.run_id, step_number=1)
    assert (log.cost, log.total_tokens) == (None, 1500)


def test_client_cost_is_kept_and_marked_as_the_clients(ingest):
    doc = full_run()
    doc["steps"][0]["llm"]["cost_usd"] = 0.0123
    ingest(doc)
    step = stored(doc).steps.get(step_number=1)
    assert (step.cost_usd, step.cost_source) == (Decimal("0.0123"), "client")


def test_reprojecting_changes_nothing_and_keeps_ids(ingest):
    doc = full_run()
    ingest(doc)
    before, ids = snapshot(), table_ids()
    with transaction.atomic():
        project_runs([stored(doc).run_id])
        project_runs([stored(doc).run_id])
    assert snapshot() == before
    assert table_ids() == ids


def test_reprojecting_repairs_damaged_legacy_rows(ingest):
    doc = full_run()
    ingest(doc)
    before = snapshot()
    with connection.cursor() as cur:
        cur.execute("DELETE FROM workflow_events WHERE step_number = 1")
        cur.execute("UPDATE workflow_trace SET status = 'running'")
        cur.execute("UPDATE llm_usage_logs SET total_tokens = 1")
        cur.execute(
            "INSERT INTO workflow_trace_context (trace_id, run_id, context_key) "
            "SELECT trace_id, run_id, 'stray' FROM workflow_trace"
        )
        cur.execute("UPDATE conversations SET message_count = 99")
    with transaction.atomic():
        project_runs([stored(doc).run_id])
    assert snapshot() == before
