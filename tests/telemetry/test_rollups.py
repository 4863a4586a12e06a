"""Hourly rollups equal the base tables: sums exactly, percentiles within the stated bound,
also after replays, updates and runs moving between hours."""

import copy
import math

import pytest
from django.db import connection

from telemetry.demo import demo_runs
from telemetry.ingest.writer import ingest_runs
from telemetry.rollups import PERCENTILE_ERROR, merge_histograms, percentile, recompute_rollups
from tests.conftest import full_run
from tests.telemetry.helpers import snapshot


def rows(sql: str) -> list[tuple]:
    with connection.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


RUN_SUMS_FROM_BASE = """
SELECT date_trunc('hour', coalesce(started_at, created_at)), workflow_id, status, llm_model,
       count(*), sum(llm_tokens_used), sum(cost_usd), sum(input_tokens), sum(cached_input_tokens)
FROM user_workflow_run GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"""
RUN_SUMS_FROM_ROLLUP = """
SELECT hour, workflow_id, status, model, sum(runs), sum(total_tokens), sum(cost_usd),
       sum(input_tokens), sum(cached_input_tokens)
FROM rollup_run_hourly GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"""
STEP_SUMS_FROM_BASE = """
SELECT date_trunc('hour', coalesce(r.started_at, r.created_at)), s.kind, s.llm_model,
       s.cost_source, count(*), coalesce(sum(s.total_tokens), 0), coalesce(sum(s.cost_usd), 0)
FROM user_workflow_run_step s JOIN user_workflow_run r USING (run_id)
GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"""
STEP_SUMS_FROM_ROLLUP = """
SELECT hour, kind, model, cost_source, sum(steps), sum(total_tokens), sum(cost_usd)
FROM rollup_step_hourly GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"""


def assert_rollups_equal_base_tables() -> None:
    assert rows(RUN_SUMS_FROM_ROLLUP) == rows(RUN_SUMS_FROM_BASE)
    assert rows(STEP_SUMS_FROM_ROLLUP) == rows(STEP_SUMS_FROM_BASE)


@pytest.fixture
def demo(org):
    ingest_runs(org, None, list(demo_runs(400, days=2)))
    return org


def test_rollup_sums_equal_the_base_tables(demo):
    assert rows("SELECT count(*) FROM rollup_run_hourly")[0][0] > 20
    assert_rollups_equal_base_tables()


def test_rollup_percentiles_are_within_the_stated_bound(demo):
    exact = dict(
        rows("""
        SELECT llm_model, percentile_disc(ARRAY[0.5, 0.9, 0.95, 0.99])
               WITHIN GROUP (ORDER BY duration_ms)
        FROM user_workflow_run_step WHERE llm_model IS NOT NULL GROUP BY 1""")
    )
    histograms = {}
    for model, hist in rows(
        "SELECT model, latency_hist FROM rollup_step_hourly WHERE model IS NOT NULL"
    ):
        histograms.setdefault(model, []).append(
            hist if isinstance(hist, dict) else __import__("json").loads(hist)
        )
    assert set(histograms) == set(exact)
    for model, hists in histograms.items():
        merged = merge_histograms(hists)
        for q, true in zip((50, 90, 95, 99), exact[model], strict=True):
            estimate = percentile(merged, q)
            assert abs(estimate - true) <= PERCENTILE_ERROR * true + 1e-9, (model, q)


def test_replays_and_updates_keep_rollups_exact(demo, org):
    runs = list(demo_runs(400, days=2))
    ingest_runs(org, None, runs[:100])  # replay
    moved = copy.deepcopy(runs[5])
    moved["started_at"] = "2025-01-14T10:30:00Z"  # to another hour entirely
    moved["status"] = "failed"
    grown = copy.deepcopy(runs[6])
    grown["steps"][0]["retry_count"] = 3
    grown["steps"].append(
        {
            "step_number": 99,
            "kind": "llm",
            "llm": {
                "provider": "openai",
                "model": "gpt-4o",
                "usage": {"prompt_tokens": 5, "completion_tokens": 5},
            },
        }
    )
    results = ingest_runs(org, None, [moved, grown])
    assert [r.status for r in results] == ["updated", "updated"]
    assert_rollups_equal_base_tables()
    # and equal to rebuilding every hour from scratch
    before = {t: v for t, v in snapshot().items() if t.startswith("rollup")}
    keys = rows("SELECT DISTINCT org_id, hour FROM rollup_run_hourly")
    with connection.cursor() as cur:
        cur.execute("DELETE FROM rollup_run_hourly; DELETE FROM rollup_step_hourly")
    recompute_rollups(keys)
    assert {t: v for t, v in snapshot().items() if t.startswith("rollup")} == before


def test_a_run_sent_in_pieces_rolls_up_like_a_whole_run(ingest):
    run = full_run()
    ingest({"run_id": run["run_id"], "steps": run["steps"][:1]})  # no start time yet
    ingest(run)
    assert_rollups_equal_base_tables()
    assert rows("SELECT sum(runs) FROM rollup_run_hourly")[0][0] == 1


@pytest.mark.parametrize(
    ("values", "q"),
    [
        ([1], 50),
        ([5, 5, 5], 99),
        (list(range(1, 1001)), 50),
        (list(range(1, 1001)), 99),
        ([250, 300, 90_000], 95),
        ([12, 13_000, 13_000, 13_001], 50),
    ],
)
def test_percentile_estimate_is_within_the_bound(values, q):
    from telemetry.rollups import BUCKETS_PER_DOUBLING

    histogram: dict[int, int] = {}
    for v in values:
        bucket = min(99, math.floor(BUCKETS_PER_DOUBLING * math.log2(max(v, 1))))
        histogram[bucket] = histogram.get(bucket, 0) + 1
    true = sorted(values)[math.ceil(q / 100 * len(values)) - 1]
    assert abs(percentile(histogram, q) - true) <= PERCENTILE_ERROR * true


def test_percentile_of_nothing_is_none():
    assert percentile({}, 50) is None


def test_deferred_refresh_queues_the_hours_and_recomputes_them_after_commit(
    org, settings, django_capture_on_commit_callbacks
):
    from telemetry.consistency.checks import BY_NAME
    from telemetry.consistency.runner import run_check
    from telemetry.models import RollupDirtyHour, RunRollup

    settings.LOCKSTEP_ROLLUP_REFRESH = "deferred"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ingest_runs(org, None, list(demo_runs(60, days=1)))
    assert not RunRollup.objects.exists()
    queued = RollupDirtyHour.objects.count()
    assert queued > 10
    assert run_check(BY_NAME["rollup_parity"], None, None).passed  # pending, not wrong
    callbacks[0]()  # the scheduled refresh (in-process without a broker)
    assert not RollupDirtyHour.objects.exists()
    assert_rollups_equal_base_tables()
    # a replay queues nothing; an update queues its hours again
    ingest_runs(org, None, list(demo_runs(60, days=1)))
    assert not RollupDirtyHour.objects.exists()
    run = list(demo_runs(60, days=1))[0]
    run["status"] = "cancelled"
    ingest_runs(org, None, [run])
    assert RollupDirtyHour.objects.count() == 1
    from telemetry.rollups import refresh_dirty

    assert refresh_dirty() == 1
    assert_rollups_equal_base_tables()
