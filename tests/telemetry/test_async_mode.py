"""LOCKSTEP_WRITE_MODE=async: the consolidated rows and an outbox record commit together; the
drain writes the legacy rows later, with retries; a legacy failure never fails ingest."""

import copy
from datetime import timedelta

import pytest
from django.utils import timezone

from telemetry.consistency.runner import run_checks
from telemetry.models import (
    LegacyOutbox,
    LlmUsageLog,
    TokenUsageAnalytics,
    WorkflowRun,
    WorkflowTrace,
)
from telemetry.outbox import drain_outbox, revive_dead_letters
from tests.conftest import CHANGES_SCHEMA, full_run
from tests.telemetry.helpers import snapshot, wipe


@pytest.fixture
def async_mode(settings):
    settings.LOCKSTEP_WRITE_MODE = "async"


def failing_checks() -> list[str]:
    return [r.check_name for r in run_checks() if r.severity == "error" and not r.passed]


def make_due() -> None:
    LegacyOutbox.objects.update(next_attempt_at=timezone.now())


def test_async_ingest_ends_equal_to_sync_ingest(
    ingest, settings, django_capture_on_commit_callbacks
):
    runs = [full_run(), full_run()]
    ingest(*runs)
    sync_state = snapshot()
    wipe()
    settings.LOCKSTEP_WRITE_MODE = "async"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert ingest(*runs).status_code == 200
    assert len(callbacks) == 1  # a drain is scheduled once the batch commits
    assert WorkflowRun.objects.count() == 2 and WorkflowTrace.objects.count() == 0
    assert LegacyOutbox.objects.count() == 2
    callbacks[0]()  # Celery runs in-process here (no broker): the drain itself
    assert LegacyOutbox.objects.count() == 0
    assert snapshot() == sync_state
    assert failing_checks() == []


@CHANGES_SCHEMA
def test_a_failing_legacy_write_never_fails_ingest_and_is_retried(
    refuse_evil_traces, tasks_queued_not_run, ingest, async_mode
):
    run = full_run(workflow_id="evil")
    assert ingest(run).status_code == 200
    assert WorkflowRun.objects.filter(run_id=run["run_id"]).exists()
    result = drain_outbox()
    assert (result.projected, result.failed) == (0, 1)
    record = LegacyOutbox.objects.get()
    assert record.attempts == 1 and "refuse_evil" in record.last_error
    assert record.next_attempt_at > timezone.now()  # backing off
    assert drain_outbox().failed == 0  # not due yet: nothing tried
    refuse_evil_traces(False)
    make_due()
    assert drain_outbox().projected == 1
    assert LegacyOutbox.objects.count() == 0
    assert failing_checks() == []


@CHANGES_SCHEMA
def test_one_poisoned_run_does_not_hold_back_the_others(
    refuse_evil_traces, tasks_queued_not_run, ingest, async_mode
):
    good, bad = full_run(), full_run(workflow_id="evil")
    ingest(good, bad)
    result = drain_outbox()
    assert (result.projected, result.failed) == (1, 1)
    assert WorkflowTrace.objects.filter(run_id=good["run_id"]).exists()
    assert list(LegacyOutbox.objects.values_list("run_id", flat=True)) == [
        WorkflowRun.objects.get(workflow_id="evil").run_id
    ]


@CHANGES_SCHEMA
def test_past_the_retry_limit_a_record_is_a_dead_letter_until_repaired(
    refuse_evil_traces, tasks_queued_not_run, ingest, settings, async_mode
):
    settings.LOCKSTEP_OUTBOX_MAX_ATTEMPTS = 3
    ingest(full_run(workflow_id="evil"))
    for _ in range(3):
        make_due()
        drain_outbox()
    record = LegacyOutbox.objects.get()
    assert record.dead_at is not None and record.attempts == 3
    make_due()
    assert drain_outbox().failed == 0  # dead letters are not retried by the drain
    assert "outbox_dead_letters" in failing_checks()
    refuse_evil_traces(False)
    assert revive_dead_letters() == 1
    assert drain_outbox().projected == 1
    assert failing_checks() == []


def test_the_same_record_delivered_twice_counts_once(ingest, async_mode):
    run = full_run()
    ingest(run)
    LegacyOutbox.objects.create(run_id=run["run_id"], org_id=WorkflowRun.objects.get().org_id)
    drain_outbox()
    LegacyOutbox.objects.create(run_id=run["run_id"], org_id=WorkflowRun.objects.get().org_id)
    drain_outbox()
    drain_outbox()
    assert LlmUsageLog.objects.count() == 2
    assert TokenUsageAnalytics.objects.get(model="gpt-4o").request_count == 1
    assert failing_checks() == []


def test_updates_in_async_mode_settle_to_the_latest_state(ingest, async_mode):
    run = full_run()
    ingest(run)
    changed = copy.deepcopy(run["steps"][0])
    changed["llm"]["model"] = "gpt-4o-mini"
    ingest({"run_id": run["run_id"], "status": "failed", "steps": [changed]})
    assert LegacyOutbox.objects.count() == 2
    assert drain_outbox().projected == 1  # both records settled by one projection
    assert WorkflowTrace.objects.get().status == "failed"
    assert LlmUsageLog.objects.filter(model="gpt-4o-mini").count() == 1
    assert failing_checks() == []


def test_backoff_grows_exponentially_and_is_capped():
    from telemetry.outbox import backoff

    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [2, 4, 8, 16]
    assert backoff(30) == timedelta(hours=1)
