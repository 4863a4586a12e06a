"""POST /api/v1/ingest: answers, bad inputs of every kind, and nothing half-written."""

import copy

import orjson
import pytest

from telemetry.models import LlmUsageLog, WorkflowRun, WorkflowRunStep, WorkflowTrace
from tests.conftest import CHANGES_SCHEMA, full_run, new_run_id


def rows_written() -> tuple[int, int, int, int]:
    return (
        WorkflowRun.objects.count(),
        WorkflowRunStep.objects.count(),
        WorkflowTrace.objects.count(),
        LlmUsageLog.objects.count(),
    )


def test_a_good_batch_is_accepted_with_one_result_per_run(ingest):
    first, second = full_run(), full_run()
    response = ingest(first, second)
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 2 and body["rejected"] == 0
    assert [r["run_id"] for r in body["results"]] == [first["run_id"], second["run_id"]]
    assert {r["status"] for r in body["results"]} == {"created"}
    assert rows_written() == (2, 6, 2, 4)


def test_some_bad_runs_get_207_and_the_good_ones_land(ingest):
    good = full_run()
    bad = full_run(status="finished")
    response = ingest(good, bad)
    assert response.status_code == 207
    results = response.json()["results"]
    assert results[0]["status"] == "created"
    assert results[1] == {
        "index": 1,
        "run_id": bad["run_id"],
        "status": "rejected",
        "errors": [{"field": "status", "message": results[1]["errors"][0]["message"]}],
    }
    assert "pending" in results[1]["errors"][0]["message"]
    assert WorkflowRun.objects.filter(run_id=good["run_id"]).exists()
    assert not WorkflowRun.objects.filter(run_id=bad["run_id"]).exists()


def _with(path: str, value, base: dict | None = None) -> dict:
    run = copy.deepcopy(base or full_run())
    target = run
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return run


_DELETE = object()

BAD_RUNS = [
    ("run_id", _DELETE, "run_id", "required field is missing"),
    ("run_id", "not-a-uuid", "run_id", "valid UUID"),
    ("run_id", 42, "run_id", "UUID string"),
    ("status", "done", "status", "'pending', 'running', 'completed', 'failed' or 'cancelled'"),
    ("started_at", "yesterday", "started_at", "not an RFC 3339 timestamp"),
    ("started_at", "2025-01-14T10:30:00", "started_at", "no time zone"),
    ("started_at", 1736850600, "started_at", "RFC 3339 timestamp string"),
    ("ended_at", "2025-01-14T09:00:00Z", "(run)", "ended_at is before started_at"),
    ("context", ["a"], "context", "valid dictionary"),
    ("tier", "2", "tier", "valid integer"),
    ("endpoints_used", "/api", "endpoints_used", "valid list"),
    ("colour", "blue", "colour", "unknown field"),
    ("steps.0.step_number", "1", "steps[0].step_number", "valid integer"),
    ("steps.0.step_number", _DELETE, "steps[0].step_number", "required field is missing"),
    ("steps.1.step_number", 1, "(run)", "step_number 1 appears twice"),
    ("steps.0.kind", "magic", "steps[0].kind", "'llm', 'tool'"),
    ("steps.0.llm.model", _DELETE, "steps[0].llm.model", "required field is missing"),
    ("steps.0.llm.usage", {"tokens": 5}, "steps[0].llm.usage", "not a usage object"),
    ("steps.0.llm.usage", {"prompt_tokens": 5}, "steps[0].llm.usage", "completion_tokens"),
    ("steps.0.llm.cost_usd", "cheap", "steps[0].llm.cost_usd", "number of US dollars"),
    ("steps.0.llm.cost_usd", -1, "steps[0].llm.cost_usd", "greater than or equal to 0"),
    ("steps.0.events.0.type", _DELETE, "steps[0].events[0].type", "required field is missing"),
    ("steps.0.events.0.extra", 1, "steps[0].events[0].extra", "unknown field"),
    ("steps.1.screenshots.0.confidence", 3, "steps[1].screenshots[0].confidence", "less than"),
    (
        "steps.1.screenshots.0.element_found",
        "yes",
        "steps[1].screenshots[0].element_found",
        "valid boolean",
    ),
    ("steps.0.retry_count", -1, "steps[0].retry_count", "greater than or equal to 0"),
]


@pytest.mark.parametrize(("path", "value", "field", "message"), BAD_RUNS)
def test_a_bad_run_is_rejected_with_a_field_error_and_writes_nothing(
    ingest, path, value, field, message
):
    response = ingest(_with(path, value))
    assert response.status_code == 207
    (result,) = response.json()["results"]
    assert result["status"] == "rejected"
    assert any(e["field"] == field and message in e["message"] for e in result["errors"]), result
    assert rows_written() == (0, 0, 0, 0)


def test_every_error_of_a_run_is_reported_at_once(ingest):
    run = _with("status", "done", _with("steps.0.step_number", "x"))
    (result,) = ingest(run).json()["results"]
    assert {e["field"] for e in result["errors"]} == {"status", "steps[0].step_number"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", 'must be a JSON object {"runs"'),
        (b'{"run": []}', 'must be a JSON object {"runs"'),
        (b'{"runs": {}}', 'must be a JSON object {"runs"'),
        (b'{"runs": []}', "'runs' is empty"),
        (b'{"runs": [{}], "extra": 1}', "Unknown top-level field(s) extra"),
    ],
)
def test_a_body_that_is_not_a_batch_gets_400(ingest, body, message):
    response = ingest(body=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_a_run_that_is_not_an_object_is_rejected(ingest):
    response = ingest(body=b'{"runs": ["x"]}')
    assert response.status_code == 207
    assert response.json()["results"][0]["errors"][0]["message"] == "expected a JSON object"


def test_too_many_runs_in_one_request_gets_400(ingest, settings):
    settings.LOCKSTEP_MAX_RUNS_PER_BATCH = 2
    response = ingest(full_run(), full_run(), full_run())
    assert response.status_code == 400
    assert "at most 2 per request" in response.json()["error"]
    assert rows_written() == (0, 0, 0, 0)


def test_a_body_over_the_limit_gets_413(ingest, settings):
    settings.LOCKSTEP_MAX_BODY_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2000
    huge = full_run(context={"blob": "x" * 5000})
    response = ingest(huge)
    assert response.status_code == 413
    assert "over 2,000 bytes" in response.json()["error"]
    assert rows_written() == (0, 0, 0, 0)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "needs an API key"),
        ("Bearer lsk_nope_nope", "not recognised"),
        ("Bearer ", "must be 'Bearer <api key>'"),
        ("Basic dXNlcjpwYXNz", "must be 'Bearer <api key>'"),
    ],
)
def test_a_missing_or_bad_key_gets_401(client, db, header, message):
    headers = {"Authorization": header} if header else {}
    response = client.post(
        "/api/v1/ingest",
        orjson.dumps({"runs": [full_run()]}),
        content_type="application/json",
        headers=headers,
    )
    assert response.status_code == 401
    assert message in response.json()["error"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert rows_written() == (0, 0, 0, 0)


def test_a_revoked_key_gets_401(ingest, api_key):
    from django.utils import timezone

    from telemetry.models import ApiKey

    ApiKey.objects.update(revoked_at=timezone.now())
    assert ingest(full_run()).status_code == 401


def test_too_many_requests_get_429_and_the_rejected_request_writes_nothing(ingest, settings):
    settings.LOCKSTEP_INGEST_RATE = "2/min"
    assert ingest(full_run()).status_code == 200
    assert ingest(full_run()).status_code == 200
    response = ingest(full_run())
    assert response.status_code == 429
    assert "Too many requests" in response.json()["error"]
    assert "Retry-After" in response.headers
    assert WorkflowRun.objects.count() == 2


def test_a_run_id_of_another_organisation_is_rejected_and_left_alone(ingest, other_api_key):
    run = full_run()
    assert ingest(run).status_code == 200
    hijack = {"run_id": run["run_id"], "status": "failed", "workflow_id": "evil"}
    response = ingest(hijack, key=other_api_key)
    assert response.status_code == 207
    assert "another organisation" in response.json()["results"][0]["errors"][0]["message"]
    stored = WorkflowRun.objects.get(run_id=run["run_id"])
    assert (stored.status, stored.workflow_id) == ("completed", "support-triage")


def test_reads_need_a_key_or_login(client, db):
    assert client.get("/api/v1/runs").status_code in (401, 403)


def test_openapi_schema_describes_the_ingest_contract(client, db):
    response = client.get("/api/schema/", headers={"Accept": "application/json"})
    assert response.status_code == 200
    text = response.content.decode()
    assert "/api/v1/ingest" in text and "RunDoc" in text and "StepDoc" in text


def test_openapi_schema_is_valid_and_declares_the_bearer_key(db, tmp_path):
    from django.core.management import call_command

    target = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert "scheme: bearer" in target.read_text()


def test_api_docs_page_uses_local_assets(client, db):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn." not in html and "unpkg" not in html


def test_a_new_run_id_each_time_is_a_new_run(ingest):
    ingest(full_run(run_id=new_run_id()))
    ingest(full_run(run_id=new_run_id()))
    assert WorkflowRun.objects.count() == 2


@CHANGES_SCHEMA
def test_when_the_legacy_write_fails_the_consolidated_rows_roll_back_too(
    ingest, refuse_evil_traces
):
    """sync mode: the consolidated rows and their projection commit together or not at all."""
    refuse_evil_traces(False)
    kept = full_run()
    assert ingest(kept).status_code == 200
    refuse_evil_traces(True)
    before = rows_written()
    response = ingest(full_run(workflow_id="evil"), full_run())
    assert response.status_code == 503
    assert "nothing from it was stored" in response.json()["error"]
    assert rows_written() == before
    update = {"run_id": kept["run_id"], "workflow_id": "evil"}
    assert ingest(update).status_code == 503
    assert WorkflowRun.objects.get(run_id=kept["run_id"]).workflow_id == "support-triage"
