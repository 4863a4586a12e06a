"""GET /api/v1/runs and /api/v1/runs/<run_id>: filters, pagination, and org isolation."""

import copy
import json

import pytest

from tests.conftest import full_run


@pytest.fixture
def three_runs(ingest):
    a = full_run(
        workflow_id="support-triage",
        user_id="u1",
        started_at="2025-01-10T10:00:00Z",
        ended_at="2025-01-10T10:00:09Z",
        context={"correlation_id": "aaa", "tier": "gold"},
    )
    b = full_run(
        workflow_id="invoice",
        status="failed",
        user_id="u2",
        conversation_id="conv-9",
        external_id="inv-1",
        started_at="2025-01-12T10:00:00Z",
        ended_at="2025-01-12T10:00:09Z",
        context={"correlation_id": "bbb"},
    )
    c = copy.deepcopy(b)
    c.update(
        run_id=full_run()["run_id"],
        status="completed",
        external_id="inv-2",
        started_at="2025-01-14T10:00:00Z",
        ended_at="2025-01-14T10:00:09Z",
        context={"correlation_id": "ccc"},
    )
    for step in c["steps"]:
        if "llm" in step:
            step["llm"]["model"] = "gpt-4o-mini"
            step["llm"]["provider"] = "openai"
    assert ingest(a, b, c).status_code == 200
    return a, b, c


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [r["run_id"] for r in response.json()["results"]]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, "cba"),
        ({"status": "failed"}, "b"),
        ({"workflow_id": "invoice"}, "cb"),
        ({"user_id": "u1"}, "a"),
        ({"conversation_id": "conv-9"}, "cb"),
        ({"external_id": "inv-2"}, "c"),
        ({"model": "gpt-4o-mini"}, "c"),
        ({"model": "gpt-4o"}, "ba"),
        ({"since": "2025-01-11T00:00:00Z"}, "cb"),
        ({"since": "2025-01-11T00:00:00Z", "until": "2025-01-13T00:00:00Z"}, "b"),
        ({"context": json.dumps({"correlation_id": "bbb"})}, "b"),
        ({"context": json.dumps({"tier": "gold"})}, "a"),
        ({"context": json.dumps({"correlation_id": "nope"})}, ""),
    ],
)
def test_runs_can_be_filtered(get_api, three_runs, params, expected):
    a, b, c = three_runs
    names = {a["run_id"]: "a", b["run_id"]: "b", c["run_id"]: "c"}
    found = "".join(names[i] for i in ids(get_api("/api/v1/runs", **params)))
    assert sorted(found) == sorted(expected)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "done"}, "status"),
        ({"since": "last week"}, "since"),
        ({"context": "{not json"}, "context"),
        ({"context": "[1]"}, "context"),
    ],
)
def test_bad_filters_get_400_naming_the_parameter(get_api, three_runs, params, field):
    response = get_api("/api/v1/runs", **params)
    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_runs_are_paginated_with_a_cursor(get_api, ingest):
    sent = {full_run()["run_id"] for _ in range(7)}
    ingest(*[full_run(run_id=r) for r in sent])
    seen, page = [], get_api("/api/v1/runs", page_size=3)
    while True:
        seen += ids(page)
        following = page.json()["next"]
        if not following:
            break
        page = get_api(following)
    assert len(seen) == 7 and set(seen) == sent


def test_a_run_reads_back_with_steps_and_every_legacy_row(get_api, three_runs):
    a = three_runs[0]
    body = get_api(f"/api/v1/runs/{a['run_id']}").json()
    assert body["run"]["run_id"] == a["run_id"]
    assert body["run"]["llm_tokens_used"] == 3700
    assert [s["step_number"] for s in body["steps"]] == [1, 2, 3]
    legacy = body["legacy"]
    assert len(legacy["workflow_trace"]) == 1
    assert legacy["workflow_trace"][0]["status"] == "completed"
    counts = {table: len(rows) for table, rows in legacy.items()}
    assert counts == {
        "workflow_trace": 1,
        "workflow_steps": 3,
        "workflow_events": 3,
        "workflow_trace_screenshot": 1,
        "workflow_trace_context": 2,
        "workflow_trace_endpoint": 2,
        "llm_usage_logs": 2,
        "messages": 2,
        "conversations": 1,
        "token_usage_analytics": 2,
    }


def test_another_organisations_runs_are_invisible(get_api, three_runs, other_api_key):
    a = three_runs[0]
    assert ids(get_api("/api/v1/runs", key=other_api_key)) == []
    response = get_api(f"/api/v1/runs/{a['run_id']}", key=other_api_key)
    assert response.status_code == 404
    assert a["run_id"] not in response.content.decode()


def test_a_logged_in_member_reads_their_organisations_runs(client, three_runs, org, other_org):
    from django.contrib.auth import get_user_model

    from telemetry.models import Membership

    user = get_user_model().objects.create_user("ana", password="pw-123456")
    Membership.objects.create(user=user, org=other_org)
    client.force_login(user)
    assert ids(client.get("/api/v1/runs")) == []
    Membership.objects.filter(user=user).update(org=org)
    assert len(ids(client.get("/api/v1/runs"))) == 3
