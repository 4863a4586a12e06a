"""The dashboard pages: login, organisation scoping, filters, empty states."""

import json

import pytest
from django.contrib.auth import get_user_model

from telemetry.demo import demo_runs
from telemetry.ingest.writer import ingest_runs
from telemetry.models import Membership, WorkflowRun

PAGES = ["/overview/", "/cost/", "/latency/", "/runs/"]


@pytest.fixture
def member(client, org):
    user = get_user_model().objects.create_user("ana", password="pw-123456")
    Membership.objects.create(user=user, org=org)
    client.force_login(user)
    return user


@pytest.fixture
def demo(org):
    ingest_runs(org, None, list(demo_runs(150, days=2)))
    return org


@pytest.mark.parametrize("path", PAGES)
def test_pages_need_a_login(client, db, path):
    response = client.get(path)
    assert response.status_code == 302 and response.url.startswith("/login/")


@pytest.mark.parametrize("path", PAGES)
def test_an_empty_organisation_gets_told_how_to_send_data(client, member, path):
    html = client.get(path).content.decode()
    assert "/api/v1/ingest" in html


@pytest.mark.parametrize("path", PAGES)
def test_pages_show_the_organisations_data(client, member, demo, path):
    response = client.get(path, {"range": "7d"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "No runs in this range yet" not in html
    assert "Acme" in html


def test_overview_headline_counts_the_runs_in_range(client, member, demo):
    html = client.get("/overview/", {"range": "7d"}).content.decode()
    assert f"{WorkflowRun.objects.count():,}" in html
    assert 'data-figure="fig-cost"' in html and 'data-figure="fig-latency"' in html


def test_filters_are_shown_and_applied(client, member, demo):
    html = client.get("/cost/", {"range": "7d", "model": "gpt-4o"}).content.decode()
    assert "model = <strong>gpt-4o</strong>" in html
    assert "claude-sonnet-4-5</a>" not in html


def test_a_bad_range_is_explained(client, member, demo):
    html = client.get("/overview/", {"range": "forever"}).content.decode()
    assert "Unknown range" in html
    html = client.get("/overview/", {"range": "custom", "since": "soon"}).content.decode()
    assert "give &#x27;since&#x27; as a date" in html


def test_a_custom_range_typed_without_a_zone_is_utc(client, member, demo):
    response = client.get("/runs/", {"range": "custom", "since": "2020-01-01T00:00"})
    assert response.status_code == 200
    assert "Older runs" in response.content.decode()  # everything since 2020, paged


def test_runs_explorer_filters_by_context_and_pages(client, member, demo):
    run = WorkflowRun.objects.order_by("-started_at")[3]
    context = json.dumps({"correlation_id": run.context["correlation_id"]})
    html = client.get("/runs/", {"range": "7d", "context": context}).content.decode()
    assert str(run.run_id) in html and html.count("/runs/") >= 1
    first = client.get("/runs/", {"range": "7d"})
    assert "Older runs" in first.content.decode()
    bad = client.get("/runs/", {"range": "7d", "context": "[1]"}).content.decode()
    assert "Context must be a JSON object" in bad


def test_run_page_shows_both_sides(client, member, demo):
    run = WorkflowRun.objects.exclude(conversation_id=None).first()
    html = client.get(f"/runs/{run.run_id}/").content.decode()
    assert run.workflow_id in html and "workflow_trace" in html and "llm_usage_logs" in html
    assert 'data-figure="fig-timeline"' in html


def test_another_organisations_run_is_not_found(client, member, demo, other_org):
    from tests.conftest import full_run

    ingest_runs(other_org, None, [full_run()])
    foreign = WorkflowRun.objects.filter(org=other_org).first()
    assert client.get(f"/runs/{foreign.run_id}/").status_code == 404


def test_a_superuser_switches_organisation(client, org, other_org, demo):
    admin = get_user_model().objects.create_superuser("root", password="pw-123456")
    client.force_login(admin)
    html = client.get("/overview/", {"range": "7d", "org": other_org.slug}).content.decode()
    assert "Overview of Globex" in html and "No runs in this range yet" in html
    html = client.get("/overview/", {"range": "7d"}).content.decode()
    assert "Overview of Globex" in html  # remembered for the session


def test_a_member_cannot_switch_to_another_organisation(client, member, other_org):
    html = client.get("/overview/", {"org": other_org.slug}).content.decode()
    assert "Overview of Acme" in html


def test_a_login_without_organisation_is_refused(client, db):
    user = get_user_model().objects.create_user("lonely", password="pw-123456")
    client.force_login(user)
    assert client.get("/overview/").status_code == 403


def test_cost_page_says_which_models_are_not_priced(client, member, demo):
    html = client.get("/cost/", {"range": "7d"}).content.decode()
    row = html[html.index("acme-internal-llm-2</a>") :]
    assert "not priced" in row[: row.index("</tr>")]
