"""Repair brings every repairable fault back to zero, from the consolidated rows."""

import io
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import connection

from telemetry.consistency.checks import BY_NAME, CHECKS
from telemetry.consistency.runner import run_check, run_checks
from telemetry.models import WorkflowTrace
from tests.conftest import full_run
from tests.telemetry.helpers import snapshot
from tests.telemetry.test_consistency_checks import FAULTS

REPAIRABLE = sorted(c.name for c in CHECKS if c.repair)


@pytest.fixture
def runs(ingest):
    clean, broken = full_run(), full_run()
    assert ingest(clean, broken).status_code == 200
    return clean["run_id"], broken["run_id"]


def inject(name: str, run_id: str) -> None:
    with connection.cursor() as cur:
        for statement in FAULTS[name]:
            cur.execute(statement, {"run": run_id})


@pytest.mark.parametrize("name", REPAIRABLE)
def test_repair_brings_each_check_back_to_zero(runs, name):
    before = snapshot()
    inject(name, runs[1])
    assert not run_check(BY_NAME[name], None, None).passed
    out = io.StringIO()
    call_command("repair", "--check", name, "--yes", stdout=out, stderr=io.StringIO())
    assert f"then  {name}: clean" in out.getvalue()
    assert [r.check_name for r in run_checks() if r.severity == "error" and not r.passed] == []
    if name != "trace_without_run":  # that fault added rows; repair removed them
        assert snapshot() == before


def test_repair_is_idempotent(runs):
    inject("event_count_parity", runs[1])
    call_command("repair", "--yes", stdout=io.StringIO(), stderr=io.StringIO())
    after_first = snapshot()
    out = io.StringIO()
    call_command("repair", "--yes", stdout=out, stderr=io.StringIO())
    assert snapshot() == after_first
    assert "nothing to repair" in out.getvalue()


def test_orphans_are_shown_and_kept_unless_confirmed(runs):
    inject("trace_without_run", runs[1])
    out = io.StringIO()
    with mock.patch("builtins.input", return_value="n"):
        call_command("repair", "--check", "trace_without_run", stdout=out, stderr=io.StringIO())
    assert "00000000-0000-4000-8000-000000000001" in out.getvalue()
    assert "nothing was deleted" in out.getvalue()
    assert WorkflowTrace.objects.filter(run_id="00000000-0000-4000-8000-000000000001").exists()
    with mock.patch("builtins.input", return_value="y"):
        call_command(
            "repair", "--check", "trace_without_run", stdout=io.StringIO(), stderr=io.StringIO()
        )
    assert not WorkflowTrace.objects.filter(run_id="00000000-0000-4000-8000-000000000001").exists()


def test_repair_of_named_runs(runs):
    inject("step_count_parity", runs[1])
    call_command("repair", "--run", runs[1], stdout=io.StringIO(), stderr=io.StringIO())
    assert run_check(BY_NAME["step_count_parity"], None, None).passed


def test_data_quality_checks_are_not_repairable(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="data-quality"):
        call_command("repair", "--check", "unknown_model_cost", stdout=io.StringIO())
