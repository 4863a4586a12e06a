"""Figures for the pages, from the hourly rollups or, where they cannot answer (5-minute
buckets, channel or user filters), from the base tables.

Every figure is one query over a relation with the rollups' columns: `runs_r` (per bucket,
workflow, status and model) and `steps_r` (per bucket, workflow, kind, provider, model and
cost source). `source="rollup"` reads it from the rollup tables, `source="base"` computes it
from `user_workflow_run` and `user_workflow_run_step`, so both paths give the same numbers
(sums exactly; percentiles from the same histogram buckets).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

from django.conf import settings
from django.db import connection

from dashboard.filters import PageFilters
from telemetry.models import Organization
from telemetry.rollups import BUCKET_SQL, percentile

Source = Literal["rollup", "base"]
ORIGIN = "2000-01-03T00:00:00Z"  # a Monday, so weekly and daily buckets line up

RUNS_FROM_ROLLUP = """
SELECT date_bin(%(bucket)s::interval, hour, %(origin)s::timestamptz) AS bucket, workflow_id,
       status, model, runs, duration_hist, input_tokens, output_tokens, cached_input_tokens,
       reasoning_tokens, total_tokens, cost_usd
FROM rollup_run_hourly
WHERE org_id = %(org)s AND hour >= date_trunc('hour', %(start)s::timestamptz)
  AND hour < %(end)s {filters}
"""
RUNS_FROM_BASE = f"""
SELECT date_bin(%(bucket)s::interval, coalesce(r.started_at, r.created_at),
                %(origin)s::timestamptz) AS bucket,
       r.workflow_id, r.status, r.llm_model AS model, count(*) AS runs,
       jsonb_build_object({BUCKET_SQL.format("r.duration_ms")}, count(r.duration_ms))
         AS duration_hist,
       sum(r.input_tokens) AS input_tokens, sum(r.output_tokens) AS output_tokens,
       sum(r.cached_input_tokens) AS cached_input_tokens,
       sum(r.reasoning_tokens) AS reasoning_tokens, sum(r.llm_tokens_used) AS total_tokens,
       sum(r.cost_usd) AS cost_usd
FROM user_workflow_run r
WHERE r.org_id = %(org)s AND coalesce(r.started_at, r.created_at) >= %(start)s
  AND coalesce(r.started_at, r.created_at) < %(end)s {{filters}}
GROUP BY 1, 2, 3, 4, {BUCKET_SQL.format("r.duration_ms")}
"""
STEPS_FROM_ROLLUP = """
SELECT date_bin(%(bucket)s::interval, hour, %(origin)s::timestamptz) AS bucket, workflow_id,
       kind, provider, model, cost_source, steps, errors, input_tokens, output_tokens,
       cached_input_tokens, reasoning_tokens, total_tokens, cost_usd, latency_hist, ttft_hist
FROM rollup_step_hourly
WHERE org_id = %(org)s AND hour >= date_trunc('hour', %(start)s::timestamptz)
  AND hour < %(end)s {filters}
"""
STEPS_FROM_BASE = f"""
SELECT date_bin(%(bucket)s::interval, coalesce(r.started_at, r.created_at),
                %(origin)s::timestamptz) AS bucket,
       r.workflow_id, s.kind, s.llm_provider AS provider, s.llm_model AS model, s.cost_source,
       count(*) AS steps, count(*) FILTER (WHERE s.status = 'failed') AS errors,
       coalesce(sum(s.input_tokens), 0) AS input_tokens,
       coalesce(sum(s.output_tokens), 0) AS output_tokens,
       coalesce(sum(s.cached_input_tokens), 0) AS cached_input_tokens,
       coalesce(sum(s.reasoning_tokens), 0) AS reasoning_tokens,
       coalesce(sum(s.total_tokens), 0) AS total_tokens,
       coalesce(sum(s.cost_usd), 0) AS cost_usd,
       jsonb_build_object({BUCKET_SQL.format("s.duration_ms")}, count(s.duration_ms))
         AS latency_hist,
       jsonb_build_object({BUCKET_SQL.format("s.time_to_first_token_ms")},
                          count(s.time_to_first_token_ms)) AS ttft_hist
FROM user_workflow_run r JOIN user_workflow_run_step s ON s.run_id = r.run_id
WHERE r.org_id = %(org)s AND coalesce(r.started_at, r.created_at) >= %(start)s
  AND coalesce(r.started_at, r.created_at) < %(end)s {{filters}}
GROUP BY 1, 2, 3, 4, 5, 6, {BUCKET_SQL.format("s.duration_ms")},
         {BUCKET_SQL.format("s.time_to_first_token_ms")}
"""


def choose_source(f: PageFilters) -> Source:
    """The rollups are hourly and have no channel or user: anything finer reads base tables."""
    if f.bucket == "5 minutes" or f.channel or f.user:
        return "base"
    return "rollup"


class Figures:
    """Runs figure queries for one organisation and set of filters."""

    def __init__(self, org: Organization, f: PageFilters, source: Source | None = None):
        self.org, self.f = org, f
        self.source = source or settings.LOCKSTEP_DASHBOARD_SOURCE or choose_source(f)
        if self.source == "rollup" and f.provider:
            self.run_source: Source = "base"  # runs are not rolled up by provider
        else:
            self.run_source = self.source

    def _params(self) -> dict:
        f = self.f
        return {
            "org": self.org.id,
            "start": f.start,
            "end": f.end,
            "bucket": f.bucket,
            "origin": ORIGIN,
            "workflow": f.workflow,
            "model": f.model,
            "provider": f.provider,
            "channel": f.channel,
            "user": f.user,
        }

    def _runs_relation(self) -> str:
        f = self.f
        if self.run_source == "rollup":
            filters = "".join(
                [
                    " AND workflow_id = %(workflow)s" if f.workflow else "",
                    " AND model = %(model)s" if f.model else "",
                ]
            )
            return RUNS_FROM_ROLLUP.format(filters=filters)
        filters = "".join(
            [
                " AND r.workflow_id = %(workflow)s" if f.workflow else "",
                " AND r.llm_model = %(model)s" if f.model else "",
                " AND r.channel = %(channel)s" if f.channel else "",
                " AND r.user_id = %(user)s" if f.user else "",
                " AND EXISTS (SELECT 1 FROM user_workflow_run_step p WHERE p.run_id = r.run_id"
                " AND p.llm_provider = %(provider)s)"
                if f.provider
                else "",
            ]
        )
        return RUNS_FROM_BASE.format(filters=filters)

    def _steps_relation(self) -> str:
        f = self.f
        if self.source == "rollup":
            filters = "".join(
                [
                    " AND workflow_id = %(workflow)s" if f.workflow else "",
                    " AND model = %(model)s" if f.model else "",
                    " AND provider = %(provider)s" if f.provider else "",
                ]
            )
            return STEPS_FROM_ROLLUP.format(filters=filters)
        filters = "".join(
            [
                " AND r.workflow_id = %(workflow)s" if f.workflow else "",
                " AND s.llm_model = %(model)s" if f.model else "",
                " AND s.llm_provider = %(provider)s" if f.provider else "",
                " AND r.channel = %(channel)s" if f.channel else "",
                " AND r.user_id = %(user)s" if f.user else "",
            ]
        )
        return STEPS_FROM_BASE.format(filters=filters)

    def query(self, sql: str) -> list[tuple]:
        """Run `sql`, which reads `runs_r` and/or `steps_r`."""
        relations = []
        if "runs_r" in sql:
            relations.append(f"runs_r AS ({self._runs_relation()})")
        if "steps_r" in sql:
            relations.append(f"steps_r AS ({self._steps_relation()})")
        with connection.cursor() as cur:
            cur.execute(f"WITH {', '.join(relations)} {sql}", self._params())
            return cur.fetchall()


@dataclass
class Totals:
    runs: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    total_tokens: int = 0
    cost: Decimal = Decimal(0)
    latency: dict[int, int] = field(default_factory=dict)

    @property
    def success_rate(self) -> float | None:
        return None if not self.runs else 1 - self.failed / self.runs

    def p(self, q: float) -> float | None:
        return percentile(self.latency, q)


RUN_TOTALS = """
SELECT coalesce(sum(runs), 0)::bigint,
       coalesce(sum(runs) FILTER (WHERE status = 'failed'), 0)::bigint,
       coalesce(sum(input_tokens), 0)::bigint, coalesce(sum(output_tokens), 0)::bigint,
       coalesce(sum(cached_input_tokens), 0)::bigint, coalesce(sum(total_tokens), 0)::bigint,
       coalesce(sum(cost_usd), 0)
FROM runs_r"""
RUN_LATENCY = """
SELECT key::int, sum(value::bigint)::bigint
FROM runs_r, jsonb_each_text(duration_hist) GROUP BY 1"""


def totals(figures: Figures) -> Totals:
    (row,) = figures.query(RUN_TOTALS)
    result = Totals(*row)
    result.latency = {bucket: n for bucket, n in figures.query(RUN_LATENCY) if n}
    return result


@dataclass
class Series:
    buckets: list[datetime]
    values: dict[str, list]


def _series(rows: list[tuple], names: list[str]) -> Series:
    buckets = [r[0] for r in rows]
    return Series(buckets, {n: [r[i + 1] for r in rows] for i, n in enumerate(names)})


def run_series(figures: Figures) -> Series:
    rows = figures.query("""
        SELECT bucket, sum(runs)::bigint,
               coalesce(sum(runs) FILTER (WHERE status = 'failed'), 0)::bigint,
               sum(input_tokens)::bigint, sum(output_tokens)::bigint,
               sum(cached_input_tokens)::bigint, sum(cost_usd)
        FROM runs_r GROUP BY 1 ORDER BY 1""")
    return _series(rows, ["runs", "failed", "input", "output", "cached", "cost"])


def latency_series(figures: Figures, quantiles=(50, 90, 95, 99)) -> Series:
    rows = figures.query("""
        SELECT bucket, key::int, sum(value::bigint)::bigint
        FROM runs_r, jsonb_each_text(duration_hist) GROUP BY 1, 2 ORDER BY 1""")
    per_bucket: dict[datetime, dict[int, int]] = defaultdict(dict)
    for bucket, key, n in rows:
        if n:
            per_bucket[bucket][key] = n
    buckets = sorted(per_bucket)
    return Series(
        buckets, {f"p{q}": [percentile(per_bucket[b], q) for b in buckets] for q in quantiles}
    )


def cost_by_model_series(figures: Figures) -> dict[str, Series]:
    rows = figures.query("""
        SELECT model, bucket, sum(cost_usd) FROM steps_r WHERE model IS NOT NULL
        GROUP BY 1, 2 ORDER BY 1, 2""")
    out: dict[str, list] = defaultdict(list)
    for model, bucket, cost in rows:
        out[model].append((bucket, cost))
    return {m: Series([b for b, _ in v], {"cost": [c for _, c in v]}) for m, v in out.items()}


BREAKDOWN_COLUMNS = {
    "model": "model",
    "provider": "provider",
    "workflow": "workflow_id",
    "kind": "kind",
    "cost_source": "cost_source",
}


@dataclass
class Slice:
    key: str | None
    calls: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost: Decimal
    unpriced_calls: int = 0  # calls whose model is not in the price table, or without usage

    @property
    def priced(self) -> str:
        """'all', 'some' or 'none' of the calls have a known cost."""
        if not self.unpriced_calls:
            return "all"
        return "none" if self.unpriced_calls >= self.calls else "some"


def breakdown(figures: Figures, by: str, llm_only: bool = True) -> list[Slice]:
    column = BREAKDOWN_COLUMNS[by]
    where = "WHERE model IS NOT NULL" if llm_only else ""
    rows = figures.query(f"""
        SELECT {column}, sum(steps)::bigint, sum(input_tokens)::bigint,
               sum(output_tokens)::bigint, sum(total_tokens)::bigint, sum(cost_usd),
               coalesce(sum(steps) FILTER (
                 WHERE cost_source IN ('unknown_model', 'no_usage')), 0)::bigint
        FROM steps_r {where} GROUP BY 1 ORDER BY 6 DESC, 5 DESC""")
    return [Slice(*row) for row in rows]


def latency_by(
    figures: Figures, by: str, histogram: str = "latency_hist", llm_only: bool = False
) -> dict[str, dict[int, int]]:
    column = BREAKDOWN_COLUMNS[by]
    where = "WHERE model IS NOT NULL" if llm_only else ""
    rows = figures.query(f"""
        SELECT {column}, key::int, sum(value::bigint)::bigint
        FROM steps_r, jsonb_each_text({histogram}) {where} GROUP BY 1, 2""")
    out: dict[str, dict[int, int]] = defaultdict(dict)
    for name, key, n in rows:
        if n:
            out[name][key] = n
    return dict(out)
