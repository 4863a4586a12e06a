"""The consistency page: operators only, every check with its latest result, repair."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from telemetry.consistency.checks import CHECKS
from telemetry.consistency.runner import run_checks
from telemetry.models import CheckResult, LegacyOutbox, WorkflowTrace
from tests.conftest import full_run


@pytest.fixture
def operator(client, db):
    user = get_user_model().objects.create_user("ops", password="pw-123456", is_staff=True)
    client.force_login(user)
    return user


@pytest.fixture
def broken_run(ingest):
    run = full_run()
    assert ingest(run, full_run()).status_code == 200
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE workflow_trace SET status = 'running' WHERE run_id = %s", [run["run_id"]]
        )
    return run["run_id"]


def test_anonymous_visitors_are_sent_to_log_in(client, db):
    response = client.get("/consistency/")
    assert response.status_code == 302 and response.url.startswith("/login/")


def test_members_who_are_not_operators_are_refused(client, db):
    user = get_user_model().objects.create_user("ana", password="pw-123456")
    client.force_login(user)
    assert client.get("/consistency/").status_code == 403
    assert client.post("/consistency/repair/status_timing_parity/do/").status_code == 403


def test_before_any_check_ran_the_page_says_how_to_run_one(client, operator):
    html = client.get("/consistency/").content.decode()
    assert "No check has run yet" in html and "check_consistency --all" in html
    assert "Nothing to chart yet" in html


def test_every_check_is_listed_with_its_latest_result(client, operator, broken_run):
    run_checks()
    html = client.get("/consistency/").content.decode()
    for check in CHECKS:
        assert check.name in html
    assert html.count('class="badge bad"') == 1
    assert broken_run[:12] in html
    assert 'data-figure="fig-offenders"' in html  # the chart and its data


def test_check_now_runs_the_recent_checks(client, operator, broken_run):
    response = client.post("/consistency/run/", follow=True)
    assert "found offenders" in response.content.decode()
    assert CheckResult.objects.filter(check_name="status_timing_parity", offenders=1).exists()


def test_repair_is_confirmed_then_done_and_checked_again(client, operator, broken_run):
    run_checks()
    confirm = client.get("/consistency/repair/status_timing_parity/").content.decode()
    assert broken_run in confirm and "written again from the consolidated runs" in confirm
    response = client.post("/consistency/repair/status_timing_parity/do/", follow=True)
    assert "Repair of status_timing_parity started" in response.content.decode()
    latest = CheckResult.objects.filter(check_name="status_timing_parity").latest("checked_at")
    assert latest.passed
    assert WorkflowTrace.objects.get(run_id=broken_run).status == "completed"


def test_orphan_repair_warns_that_rows_will_be_deleted(client, operator, ingest):
    ingest(full_run())
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO workflow_trace (org_id, run_id, status) SELECT org_id, "
            "'00000000-0000-4000-8000-000000000009', 'completed' FROM workflow_trace"
        )
    html = client.get("/consistency/repair/trace_without_run/").content.decode()
    assert "will be deleted" in html and "00000000-0000-4000-8000-000000000009" in html


def test_repair_needs_a_post_and_a_repairable_check(client, operator):
    assert client.get("/consistency/repair/status_timing_parity/do/").status_code == 405
    assert client.get("/consistency/repair/unknown_model_cost/").status_code == 404
    assert client.get("/consistency/repair/no_such_check/").status_code == 404


def test_dead_letters_are_shown_and_can_be_retried(client, operator, ingest):
    run = full_run()
    ingest(run)
    LegacyOutbox.objects.create(
        run_id=run["run_id"],
        org_id=WorkflowTrace.objects.get().org_id,
        attempts=8,
        last_error="IntegrityError: boom",
        dead_at="2025-01-01T00:00:00Z",
    )
    html = client.get("/consistency/").content.decode()
    assert "IntegrityError: boom" in html
    response = client.post("/consistency/outbox/revive/", follow=True)
    assert "1 dead letter(s) queued again" in response.content.decode()
    assert not LegacyOutbox.objects.exists()  # drained in-process (no broker in tests)


def test_the_cutover_page_says_what_stands_in_the_way(client, operator, broken_run):
    html = client.get("/cutover/").content.decode()
    assert "Not ready" in html and "No whole-history check has run" in html
    assert "workflow_trace_retired" in html  # what will change, table by table
    response = client.post("/cutover/check/", follow=True)  # runs in-process without a worker
    html = response.content.decode()
    assert "Checking the whole history" in html
    assert "status_timing_parity" in html and "Not ready" in html
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE workflow_trace SET status = 'completed' WHERE run_id = %s", [broken_run]
        )
    run_checks()
    assert "Ready" in client.get("/cutover/").content.decode().replace("Not ready", "")


def test_the_cutover_page_is_for_operators_only(client, db):
    user = get_user_model().objects.create_user("ana", password="pw-123456")
    client.force_login(user)
    assert client.get("/cutover/").status_code == 403
    assert client.post("/cutover/check/").status_code == 403
