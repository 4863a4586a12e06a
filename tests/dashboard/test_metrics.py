"""The pages' figures are the same whether read from the rollups or the base tables."""

from datetime import timedelta

import pytest
from django.utils import timezone

from dashboard import metrics
from dashboard.filters import PageFilters, parse_filters
from telemetry.demo import demo_runs
from telemetry.ingest.writer import ingest_runs


@pytest.fixture
def demo(org):
    ingest_runs(org, None, list(demo_runs(300, days=3)))
    return org


def both(org, f):
    return metrics.Figures(org, f, "rollup"), metrics.Figures(org, f, "base")


@pytest.mark.parametrize(
    "params",
    [
        {"range": "7d"},
        {"range": "30d"},
        {"range": "7d", "model": "gpt-4o-mini"},
        {"range": "7d", "workflow": "support-triage"},
        {"range": "7d", "provider": "anthropic"},
    ],
)
def test_rollups_and_base_tables_give_the_same_figures(demo, params):
    rollup, base = both(demo, parse_filters(params))
    assert metrics.totals(rollup) == metrics.totals(base)
    assert metrics.totals(rollup).runs > 0
    assert metrics.run_series(rollup) == metrics.run_series(base)
    assert metrics.latency_series(rollup) == metrics.latency_series(base)
    assert metrics.cost_by_model_series(rollup) == metrics.cost_by_model_series(base)
    for by in ("model", "provider", "workflow", "cost_source"):
        assert metrics.breakdown(rollup, by) == metrics.breakdown(base, by)
    assert metrics.latency_by(rollup, "kind") == metrics.latency_by(base, "kind")
    assert metrics.latency_by(rollup, "model", "ttft_hist", llm_only=True) == metrics.latency_by(
        base, "model", "ttft_hist", llm_only=True
    )


def test_totals_match_the_runs_they_count(demo):
    from django.db.models import Count, Sum

    from telemetry.models import WorkflowRun

    t = metrics.totals(metrics.Figures(demo, parse_filters({"range": "30d"})))
    expected = WorkflowRun.objects.filter(org=demo).aggregate(
        n=Count("run_id"), tokens=Sum("llm_tokens_used"), cost=Sum("cost_usd")
    )
    assert (t.runs, t.total_tokens, t.cost) == (expected["n"], expected["tokens"], expected["cost"])
    assert 0 < t.success_rate < 1 and t.p(50) < t.p(95)


def test_channel_and_user_filters_and_short_ranges_read_the_base_tables(demo):
    assert metrics.choose_source(parse_filters({"range": "1h"})) == "base"
    assert metrics.choose_source(parse_filters({"range": "7d", "user": "user-001"})) == "base"
    assert metrics.choose_source(parse_filters({"range": "7d"})) == "rollup"
    f = parse_filters({"range": "30d", "user": "user-001"})
    assert 0 < metrics.totals(metrics.Figures(demo, f)).runs < 300


def test_another_organisations_data_is_never_counted(demo, other_org):
    f = PageFilters("30d", timezone.now() - timedelta(days=30), timezone.now())
    for source in ("rollup", "base"):
        assert metrics.totals(metrics.Figures(other_org, f, source)).runs == 0


def test_top_users_and_conversations_are_the_same_from_the_people_rollup(demo):
    from dashboard.selectors import cost_by_people

    f = parse_filters({"range": "30d"})
    from_rollup = cost_by_people(demo, f, "rollup")
    assert from_rollup == cost_by_people(demo, f, "base")
    assert len(from_rollup["user_id"]) == 10 and from_rollup["conversation_id"]
