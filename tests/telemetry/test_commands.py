"""Management commands: create_api_key and demo."""

import io

from django.core.management import call_command

from telemetry.models import (
    ApiKey,
    LlmUsageLog,
    Organization,
    WorkflowRun,
    WorkflowRunStep,
    WorkflowTrace,
)
from tests.conftest import full_run


def test_create_api_key_creates_the_org_and_prints_a_working_key_last(db, ingest):
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", "new-team", stdout=out, stderr=err)
    key = out.getvalue().strip().splitlines()[-1]
    assert key.startswith("lsk_")
    org = Organization.objects.get(slug="new-team")
    assert ApiKey.objects.filter(org=org).count() == 1
    assert key not in str(list(ApiKey.objects.values()))  # only the hash is stored
    assert ingest(full_run(), key=key).status_code == 200
    assert WorkflowRun.objects.get().org == org


def test_create_api_key_reuses_an_existing_org(org):
    call_command("create_api_key", org.slug, stdout=io.StringIO(), stderr=io.StringIO())
    call_command("create_api_key", org.slug, stdout=io.StringIO(), stderr=io.StringIO())
    assert Organization.objects.count() == 1
    assert ApiKey.objects.filter(org=org).count() == 2


def test_demo_loads_runs_through_ingest_and_is_idempotent(db, settings):
    out = io.StringIO()
    call_command("demo", runs=120, stdout=out)
    assert "120 created" in out.getvalue()
    assert settings.LOCKSTEP_DEMO_API_KEY in out.getvalue()
    counts = (
        WorkflowRun.objects.count(),
        WorkflowRunStep.objects.count(),
        WorkflowTrace.objects.count(),
        LlmUsageLog.objects.count(),
    )
    assert counts[0] == counts[2] == 120 and counts[1] > 300 and counts[3] > 100

    again = io.StringIO()
    call_command("demo", runs=120, stdout=again)
    assert "120 unchanged" in again.getvalue()
    assert (
        WorkflowRun.objects.count(),
        WorkflowRunStep.objects.count(),
        WorkflowTrace.objects.count(),
        LlmUsageLog.objects.count(),
    ) == counts


def test_demo_data_is_varied(db):
    call_command("demo", runs=300, stdout=io.StringIO())
    runs = WorkflowRun.objects.all()
    assert runs.values("workflow_id").distinct().count() >= 4
    assert runs.values("user_id").distinct().count() >= 20
    assert runs.filter(status="failed").exists()
    steps = WorkflowRunStep.objects.all()
    assert steps.values("llm_provider").distinct().count() >= 4
    assert steps.filter(retry_count__gt=0).exists()
    assert steps.filter(cost_source="unknown_model").exists()
    assert steps.filter(cost_source="price_table").exists()
    assert steps.exclude(screenshots=[]).exists()
