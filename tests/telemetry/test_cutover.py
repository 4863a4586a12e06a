"""Cutover: what an old reader's SQL returns before equals what the views return after;
writes go on into the consolidated tables; rollback restores the tables."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from telemetry import cutover
from telemetry.cutover import LEGACY_TABLES
from telemetry.demo import demo_runs
from telemetry.ingest.writer import ingest_runs
from telemetry.models import WorkflowRun
from tests.conftest import CHANGES_SCHEMA, full_run

pytestmark = CHANGES_SCHEMA  # the cutover's DDL is the schema owner's, and commits

ORDER = {
    "workflow_trace": "run_id",
    "workflow_steps": "run_id, step_number",
    "workflow_events": "run_id, step_number, position",
    "workflow_trace_screenshot": "run_id, step_number, position",
    "workflow_trace_context": "run_id, context_key",
    "workflow_trace_endpoint": "run_id, position",
    "llm_usage_logs": "run_id, step_number, id",
    "token_usage_analytics": "org_id, user_id, date, request_type, model",
    "messages": "run_id, step_number",
    "conversations": "org_id, conversation_id",
}
# Bookkeeping times that the old tables set when a row was last recomputed.
RECOMPUTED_AT = {"token_usage_analytics": "updated_at", "conversations": "updated_at"}


def read_like_an_old_reader() -> dict[str, list]:
    out = {}
    with connection.cursor() as cur:
        for table in LEGACY_TABLES:
            cur.execute(f"SELECT * FROM {table} ORDER BY {ORDER[table]}")
            names = [c.name for c in cur.description]
            skip = RECOMPUTED_AT.get(table)
            out[table] = [
                tuple(v for n, v in zip(names, row, strict=True) if n != skip)
                for row in cur.fetchall()
            ]
            out[table + " columns"] = names
    return out


@pytest.fixture(autouse=True)
def _tables_restored_afterwards():
    yield
    if cutover.cut_over_at():
        cutover.rollback()


@pytest.fixture
def history(org):
    ingest_runs(org, None, list(demo_runs(80, days=2)) + [full_run()])
    with connection.cursor() as cur:  # a usage row written by older code, with no trace
        cur.execute(
            "INSERT INTO llm_usage_logs (org_id, user_id, request_type, model, "
            "prompt_tokens, completion_tokens, total_tokens, cost, success, created_at) "
            "VALUES (%s, 'u1', 'old-app', 'gpt-4o', 1, 1, 2, 0, true, now())",
            [org.id],
        )
    call_command("repair", "--yes", stdout=io.StringIO(), stderr=io.StringIO())
    return org


def test_old_readers_see_the_same_rows_through_the_views(history):
    before = read_like_an_old_reader()
    assert all(before[t] for t in LEGACY_TABLES)
    out = io.StringIO()
    call_command("cutover", stdout=out, stderr=io.StringIO())
    assert "Cut over." in out.getvalue()
    after = read_like_an_old_reader()
    for table in LEGACY_TABLES:
        assert after[table + " columns"] == before[table + " columns"], table
        assert after[table] == before[table], table


def test_writes_after_cutover_show_through_the_views(history, org):
    call_command("cutover", stdout=io.StringIO(), stderr=io.StringIO())
    run = full_run()
    assert [r.status for r in ingest_runs(org, None, [run])] == ["created"]
    with connection.cursor() as cur:
        cur.execute(
            "SELECT status, trace_id < 0 FROM workflow_trace WHERE run_id = %s", [run["run_id"]]
        )
        assert cur.fetchone() == ("completed", True)
        cur.execute("SELECT count(*) FROM llm_usage_logs WHERE run_id = %s", [run["run_id"]])
        assert cur.fetchone()[0] == 2


def test_rollback_restores_the_tables_with_what_was_written_meanwhile(history, org):
    call_command("cutover", stdout=io.StringIO(), stderr=io.StringIO())
    run = full_run()
    ingest_runs(org, None, [run])
    out = io.StringIO()
    call_command("cutover", "--rollback", stdout=out, stderr=io.StringIO())
    assert "projected into them" in out.getvalue()
    with connection.cursor() as cur:
        cur.execute("SELECT relkind FROM pg_class WHERE relname = 'workflow_trace'")
        assert cur.fetchone() == ("r",)  # a table again
        cur.execute("SELECT count(*) FROM workflow_trace WHERE run_id = %s", [run["run_id"]])
        assert cur.fetchone()[0] == 1
    from telemetry.consistency.runner import run_checks

    assert [r.check_name for r in run_checks() if r.severity == "error" and not r.passed] == []
    assert WorkflowRun.objects.filter(run_id=run["run_id"]).exists()


def test_check_reports_readiness_and_refuses_when_not_ready(history):
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE workflow_trace SET status = 'running' WHERE trace_id = "
            "(SELECT min(trace_id) FROM workflow_trace)"
        )
    out = io.StringIO()
    call_command("cutover", "--check", stdout=out, stderr=io.StringIO())
    text = out.getvalue()
    assert "FAIL  consistency of the whole history: status_timing_parity" in text
    assert "ok    legacy outbox empty" in text and "scans" in text
    with pytest.raises(CommandError, match="Not ready"):
        call_command("cutover", stdout=io.StringIO(), stderr=io.StringIO())
