"""Backfill: legacy rows written by older code (no run_id) become consolidated runs."""

import io

import pytest
from django.core.management import call_command
from django.db import connection

from telemetry.backfill import backfill, run_id_for
from telemetry.consistency.runner import run_checks
from telemetry.models import WorkflowRun, WorkflowRunStep, WorkflowTrace

LEGACY_ONLY = """
INSERT INTO workflow_trace (trace_id, org_id, workflow_id, status, channel, user_id,
    started_at, ended_at, error_message, created_at, updated_at) VALUES
  (1001, %(org)s, 'claims', 'success', 'web', 'u1', '2024-03-01 10:00+00', '2024-03-01 10:00:07+00',
   NULL, '2024-03-01', '2024-03-01'),
  (1002, %(org)s, 'claims', 'error', 'efax', NULL, NULL, NULL, 'boom', '2024-03-02', '2024-03-02'),
  (1003, %(org)s, NULL, 'weird', NULL, NULL, '2024-03-03 09:00+00', NULL, NULL,
   '2024-03-03', '2024-03-03');
INSERT INTO workflow_steps (step_id, trace_id, step_number, name, step_type, status,
    retry_count, started_at, ended_at, input_data, output_data) VALUES
  (2001, 1001, 1, 'fetch', 'tool', 'completed', 0, '2024-03-01 10:00:01+00',
   '2024-03-01 10:00:02+00', '{"id": 7}', '{"ok": true}'),
  (2002, 1001, 2, 'summarise', 'llm', 'completed', 1, '2024-03-01 10:00:02+00',
   '2024-03-01 10:00:06+00', NULL, NULL),
  (2003, 1002, NULL, 'ocr', 'magic', 'failed', 0, NULL, NULL, NULL, NULL),
  (2004, 1002, NULL, 'retry ocr', NULL, 'completed', 0, NULL, NULL, NULL, NULL);
INSERT INTO workflow_events (trace_id, step_id, position, event_type, event_timestamp,
    event_data) VALUES
  (1001, 2001, 1, 'request', '2024-03-01 10:00:01+00', '{"url": "/x"}'),
  (1001, 2001, 2, 'response', '2024-03-01 10:00:02+00', '{}'),
  (1001, 2002, 1, 'llm_call', NULL, '{"model": "gpt-4o"}');
INSERT INTO workflow_trace_screenshot (trace_id, step_id, position, url, action, element_found,
    confidence) VALUES (1001, 2001, 1, 's3://b/1.png', 'click', true, 0.9);
INSERT INTO workflow_trace_context (trace_id, context_key, context_value) VALUES
  (1001, 'correlation_id', '"abc"'), (1001, 'attempt', '2');
INSERT INTO workflow_trace_endpoint (trace_id, position, endpoint) VALUES
  (1001, 1, '/claims'), (1001, 2, '/ocr');
INSERT INTO llm_usage_logs (org_id, user_id, request_type, model, prompt_tokens,
    completion_tokens, total_tokens, cost, success, created_at) VALUES
  (%(org)s, 'u1', 'claims', 'gpt-4o', 10, 5, 15, 0.001, true, '2024-03-01 10:00:03+00');
"""


@pytest.fixture
def legacy(org):
    with connection.cursor() as cur:
        cur.execute(LEGACY_ONLY, {"org": org.id})
    return org


def failing_checks() -> list[str]:
    return [r.check_name for r in run_checks() if r.severity == "error" and not r.passed]


def test_legacy_traces_become_runs_and_the_checks_are_clean(legacy):
    report = backfill(chunk_size=2)
    assert (report.traces, report.steps, report.events) == (3, 4, 3)
    assert (report.traces_without_start, report.steps_without_events) == (1, 2)
    assert report.usage_rows_without_trace == 1
    run = WorkflowRun.objects.get(run_id=run_id_for(1001))
    assert (run.workflow_id, run.status, run.user_id, run.duration_ms) == (
        "claims",
        "completed",
        "u1",
        7000,
    )
    assert run.context == {"correlation_id": "abc", "attempt": 2}
    assert run.endpoints_used == ["/claims", "/ocr"]
    fetch = run.steps.get(step_number=1)
    assert [e["type"] for e in fetch.events] == ["request", "response"]
    assert fetch.screenshots[0]["url"] == "s3://b/1.png" and fetch.input_data == {"id": 7}
    failed = WorkflowRun.objects.get(run_id=run_id_for(1002))
    assert (failed.status, failed.error_message, failed.started_at) == ("failed", "boom", None)
    assert list(failed.steps.values_list("step_number", "kind", "name")) == [
        (1, "other", "ocr"),
        (2, "other", "retry ocr"),
    ]
    assert WorkflowRun.objects.get(run_id=run_id_for(1003)).status == "running"
    assert not WorkflowTrace.objects.filter(run_id=None).exists()
    assert WorkflowTrace.objects.get(trace_id=1001).status == "completed"  # as the run says
    assert failing_checks() == []


def test_backfill_is_idempotent_and_resumes(legacy):
    backfill(chunk_size=1)
    counts = (WorkflowRun.objects.count(), WorkflowRunStep.objects.count())
    assert backfill(chunk_size=1).traces == 0
    assert (WorkflowRun.objects.count(), WorkflowRunStep.objects.count()) == counts


def test_an_interrupted_backfill_loses_nothing_and_resumes(legacy, monkeypatch):
    from telemetry import backfill as module

    real = module._backfill_chunk
    calls = []

    def fail_on_second(traces):
        calls.append(traces)
        if len(calls) == 2:
            raise RuntimeError("power cut")
        return real(traces)

    monkeypatch.setattr(module, "_backfill_chunk", fail_on_second)
    with pytest.raises(RuntimeError):
        backfill(chunk_size=1)
    assert WorkflowRun.objects.count() == 1  # the first chunk landed, the second rolled back
    monkeypatch.setattr(module, "_backfill_chunk", real)
    assert backfill(chunk_size=1).traces == 2
    assert WorkflowRun.objects.count() == 3 and failing_checks() == []


def test_dry_run_writes_nothing(legacy):
    out = io.StringIO()
    call_command("backfill", "--dry-run", stdout=out, stderr=io.StringIO())
    assert "Would backfill 3 trace(s)" in out.getvalue()
    assert WorkflowRun.objects.count() == 0
    assert WorkflowTrace.objects.filter(run_id=None).count() == 3


def test_the_command_reports_messy_rows(legacy):
    out = io.StringIO()
    call_command("backfill", stdout=out, stderr=io.StringIO())
    text = out.getvalue()
    assert "Backfilled 3 trace(s) into runs with 4 steps and 3 events" in text
    assert "1 trace(s) without a start time" in text
    assert "1 llm_usage_logs row(s) belong to no trace" in text
