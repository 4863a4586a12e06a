"""Every check finds a fault injected straight into the tables, with the right ids, and
finds nothing on data written by ingest."""

import io
import json

import pytest
from django.core.management import call_command
from django.db import connection

from telemetry.consistency.checks import BY_NAME
from telemetry.consistency.runner import run_check, run_checks
from telemetry.models import CheckResult, Conversation, Organization
from tests.conftest import full_run

# check name -> SQL that breaks one run (%(run)s) or its derived rows
FAULTS = {
    "run_missing_trace": [
        "DELETE FROM workflow_events WHERE run_id = %(run)s",
        "DELETE FROM workflow_trace_screenshot WHERE run_id = %(run)s",
        "DELETE FROM workflow_trace_context WHERE run_id = %(run)s",
        "DELETE FROM workflow_trace_endpoint WHERE run_id = %(run)s",
        "DELETE FROM workflow_steps WHERE run_id = %(run)s",
        "DELETE FROM workflow_trace WHERE run_id = %(run)s",
    ],
    "trace_without_run": [
        "INSERT INTO workflow_trace (org_id, run_id, status) "
        "SELECT org_id, '00000000-0000-4000-8000-000000000001', 'completed' "
        "FROM user_workflow_run WHERE run_id = %(run)s",
    ],
    "step_count_parity": [
        "DELETE FROM workflow_events WHERE run_id = %(run)s AND step_number = 1",
        "DELETE FROM workflow_steps WHERE run_id = %(run)s AND step_number = 1",
    ],
    "event_count_parity": [
        "DELETE FROM workflow_events WHERE run_id = %(run)s AND position = 2",
    ],
    "screenshot_count_parity": ["DELETE FROM workflow_trace_screenshot WHERE run_id = %(run)s"],
    "context_key_parity": [
        "INSERT INTO workflow_trace_context (trace_id, run_id, context_key) "
        "SELECT trace_id, run_id, 'stray' FROM workflow_trace WHERE run_id = %(run)s",
    ],
    "endpoint_parity": ["DELETE FROM workflow_trace_endpoint WHERE run_id = %(run)s"],
    "usage_log_parity": [
        "INSERT INTO llm_usage_logs (org_id, run_id, step_number, request_type, model, "
        "total_tokens, cost, success, created_at) SELECT org_id, run_id, step_number, "
        "request_type, model, 0, 0, true, created_at FROM llm_usage_logs "
        "WHERE run_id = %(run)s AND step_number = 1",
    ],
    "token_cost_parity": [
        "UPDATE llm_usage_logs SET total_tokens = total_tokens + 1 WHERE run_id = %(run)s "
        "AND step_number = 1",
    ],
    "status_timing_parity": ["UPDATE workflow_trace SET status = 'running' WHERE run_id = %(run)s"],
    "llm_step_without_tokens": [
        "UPDATE user_workflow_run_step SET total_tokens = NULL WHERE run_id = %(run)s "
        "AND step_number = 1",
    ],
    "duplicate_usage_rows": [
        "INSERT INTO llm_usage_logs (org_id, run_id, step_number, request_type, model, "
        "prompt_tokens, completion_tokens, total_tokens, cost, success, created_at) "
        "SELECT org_id, run_id, step_number, request_type, model, prompt_tokens, "
        "completion_tokens, total_tokens, cost, success, created_at FROM llm_usage_logs "
        "WHERE run_id = %(run)s AND step_number = 3",
    ],
    "message_parity": [
        "UPDATE messages SET cost = cost + 1 WHERE run_id = %(run)s AND step_number = 3",
    ],
    "rollup_parity": ["UPDATE rollup_run_hourly SET cost_usd = cost_usd + 1"],
    "outbox_dead_letters": [
        "INSERT INTO legacy_outbox (run_id, org_id, attempts, dead_at, last_error) "
        "SELECT run_id, org_id, 8, now(), 'boom' FROM user_workflow_run WHERE run_id = %(run)s",
    ],
    "step_number_gaps": [
        "UPDATE user_workflow_run_step SET step_number = 9 WHERE run_id = %(run)s "
        "AND step_number = 3",
    ],
    "unknown_model_cost": [
        "UPDATE user_workflow_run_step SET cost_source = 'unknown_model' WHERE run_id = %(run)s "
        "AND step_number = 1",
    ],
    "daily_analytics_parity": [
        "UPDATE token_usage_analytics SET total_tokens_used = total_tokens_used + 1 "
        "WHERE model = 'gpt-4o'",
    ],
    "conversation_totals": ["UPDATE conversations SET message_count = message_count + 1"],
}


@pytest.fixture
def runs(ingest):
    clean, broken = full_run(), full_run()
    assert ingest(clean, broken).status_code == 200
    return clean["run_id"], broken["run_id"]


def test_every_registered_check_has_a_fault_test():
    assert set(FAULTS) == set(BY_NAME)


def test_data_written_by_ingest_passes_every_error_check(runs):
    results = run_checks()
    assert {r.check_name for r in results} == set(BY_NAME)
    assert [r.check_name for r in results if not r.passed] == []
    # every check looked at something (the outbox is empty in sync mode)
    assert all(r.rows_examined > 0 for r in results if r.check_name != "outbox_dead_letters")


def expected_ids(name: str, broken: str) -> list[str]:
    if name == "trace_without_run":
        return ["00000000-0000-4000-8000-000000000001"]
    if name == "daily_analytics_parity":
        org = Organization.objects.get()
        return [json.dumps([str(org.id), "user-7", "2025-01-14", "support-triage", "gpt-4o"])]
    if name == "rollup_parity":
        org = Organization.objects.get()
        return [json.dumps([str(org.id), "2025-01-14T10:00:00+00:00"])]
    if name == "conversation_totals":
        conversation = Conversation.objects.get()
        return [json.dumps([str(conversation.org_id), conversation.conversation_id])]
    return [broken]


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_an_injected_fault_is_found_with_its_ids(runs, name):
    clean, broken = runs
    with connection.cursor() as cur:
        for statement in FAULTS[name]:
            cur.execute(statement, {"run": broken})
    result = run_check(BY_NAME[name], None, None)
    assert result.offenders == len(expected_ids(name, broken))
    assert result.sample_ids == expected_ids(name, broken)
    assert clean not in result.sample_ids
    assert CheckResult.objects.filter(check_name=name, offenders=result.offenders).exists()


def test_the_window_limits_what_is_examined(runs):
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE user_workflow_run SET updated_at = now() - interval '2 days' WHERE run_id = %s",
            [runs[1]],
        )
        cur.execute("DELETE FROM workflow_trace_endpoint WHERE run_id = %s", [runs[1]])
    from django.utils import timezone

    recent = run_check(
        BY_NAME["endpoint_parity"], timezone.now() - timezone.timedelta(hours=1), None
    )
    assert (recent.rows_examined, recent.offenders) == (1, 0)
    everything = run_check(BY_NAME["endpoint_parity"], None, None)
    assert (everything.rows_examined, everything.offenders) == (2, 1)


def test_the_command_prints_a_table_and_exits_1_on_an_error(runs):
    out = io.StringIO()
    call_command("check_consistency", "--all", stdout=out, stderr=io.StringIO())
    assert "ok    run_missing_trace" in out.getvalue()
    with connection.cursor() as cur:
        cur.execute("UPDATE workflow_trace SET status = 'running' WHERE run_id = %s", [runs[1]])
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("check_consistency", "--since", "1h", stdout=out, stderr=io.StringIO())
    assert exit_info.value.code == 1
    assert "FAIL  status_timing_parity" in out.getvalue()
    assert runs[1] in out.getvalue()


def test_the_command_speaks_json_and_warnings_do_not_fail_it(runs):
    with connection.cursor() as cur:
        cur.execute("UPDATE user_workflow_run_step SET cost_source = 'unknown_model'")
    out = io.StringIO()
    call_command("check_consistency", "--all", "--json", stdout=out, stderr=io.StringIO())
    rows = {r["check"]: r for r in json.loads(out.getvalue())}
    assert rows["unknown_model_cost"]["offenders"] == 2
    assert rows["unknown_model_cost"]["severity"] == "warning"
    assert rows["run_missing_trace"]["passed"] is True


def test_a_bad_window_is_explained(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="such as 15m, 1h or 7d"):
        call_command("check_consistency", "--since", "yesterday", stdout=io.StringIO())
