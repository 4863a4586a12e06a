"""Hourly rollups: recomputed from the base tables for the (organisation, hour) pairs a write
touched, and percentile estimates from their latency histograms.

Histogram bucket i holds latencies in [2^(i/4), 2^((i+1)/4)) ms (bucket 0 also holds 0 ms).
A percentile is reported as the geometric middle of its bucket, so the estimate is within
a factor 2^(1/8) of the true value: at most 9.1 % off (`PERCENTILE_ERROR`).
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from uuid import UUID

import orjson
from django.db import connection, transaction

from telemetry import locks
from telemetry.scope import all_orgs

BUCKETS_PER_DOUBLING = 4
PERCENTILE_ERROR = 2 ** (1 / (2 * BUCKETS_PER_DOUBLING)) - 1  # 0.0905
BUCKET_SQL = "least(99, floor(4 * log(2, greatest({0}, 1)::numeric)))::int"

RUN_TIME = "coalesce(r.started_at, r.created_at)"
IN_KEYS = f"""r.org_id = k.org_id AND {RUN_TIME} >= k.hour
              AND {RUN_TIME} < k.hour + interval '1 hour'"""
KEYS = """keys AS (SELECT DISTINCT * FROM jsonb_to_recordset(%(keys)s::jsonb)
                   AS k(org_id uuid, hour timestamptz))"""

RECOMPUTE_RUNS = f"""
WITH {KEYS},
gone AS (DELETE FROM rollup_run_hourly x USING keys k
         WHERE x.org_id = k.org_id AND x.hour = k.hour),
per_bucket AS (
  SELECT r.org_id, k.hour, r.workflow_id, r.status, r.llm_model AS model,
         {BUCKET_SQL.format("r.duration_ms")} AS bucket,
         count(*) AS runs, count(r.duration_ms) AS duration_count,
         coalesce(sum(r.duration_ms), 0) AS duration_sum_ms,
         sum(r.input_tokens) AS input_tokens, sum(r.output_tokens) AS output_tokens,
         sum(r.cached_input_tokens) AS cached_input_tokens,
         sum(r.reasoning_tokens) AS reasoning_tokens, sum(r.llm_tokens_used) AS total_tokens,
         sum(r.cost_usd) AS cost_usd
  FROM keys k JOIN user_workflow_run r ON {IN_KEYS}
  GROUP BY 1, 2, 3, 4, 5, 6
)
INSERT INTO rollup_run_hourly (org_id, hour, workflow_id, status, model, runs, duration_count,
    duration_sum_ms, duration_hist, input_tokens, output_tokens, cached_input_tokens,
    reasoning_tokens, total_tokens, cost_usd)
SELECT org_id, hour, workflow_id, status, model, sum(runs), sum(duration_count),
    sum(duration_sum_ms),
    coalesce(jsonb_object_agg(bucket, duration_count) FILTER (WHERE duration_count > 0), '{{}}'),
    sum(input_tokens), sum(output_tokens), sum(cached_input_tokens), sum(reasoning_tokens),
    sum(total_tokens), sum(cost_usd)
FROM per_bucket GROUP BY 1, 2, 3, 4, 5
"""

STEP_KEY = "s.org_id, k.hour, r.workflow_id, s.kind, s.llm_provider, s.llm_model, s.cost_source"
STEP_JOIN = f"""keys k JOIN user_workflow_run r ON {IN_KEYS}
                JOIN user_workflow_run_step s ON s.run_id = r.run_id"""
RECOMPUTE_STEPS = f"""
WITH {KEYS},
gone AS (DELETE FROM rollup_step_hourly x USING keys k
         WHERE x.org_id = k.org_id AND x.hour = k.hour),
per_bucket AS (
  SELECT {STEP_KEY}, {BUCKET_SQL.format("s.duration_ms")} AS bucket,
         count(*) AS steps, count(s.duration_ms) AS timed,
         count(*) FILTER (WHERE s.status = 'failed') AS errors,
         coalesce(sum(s.input_tokens), 0) AS input_tokens,
         coalesce(sum(s.output_tokens), 0) AS output_tokens,
         coalesce(sum(s.cached_input_tokens), 0) AS cached_input_tokens,
         coalesce(sum(s.reasoning_tokens), 0) AS reasoning_tokens,
         coalesce(sum(s.total_tokens), 0) AS total_tokens,
         coalesce(sum(s.cost_usd), 0) AS cost_usd
  FROM {STEP_JOIN}
  GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
),
ttft AS (
  SELECT key, jsonb_object_agg(bucket, n) AS hist FROM (
    SELECT row({STEP_KEY})::text AS key,
           {BUCKET_SQL.format("s.time_to_first_token_ms")} AS bucket, count(*) AS n
    FROM {STEP_JOIN}
    WHERE s.time_to_first_token_ms IS NOT NULL
    GROUP BY 1, 2) t
  GROUP BY key
)
INSERT INTO rollup_step_hourly (org_id, hour, workflow_id, kind, provider, model, cost_source,
    steps, errors, input_tokens, output_tokens, cached_input_tokens, reasoning_tokens,
    total_tokens, cost_usd, latency_hist, ttft_hist)
SELECT p.org_id, p.hour, p.workflow_id, p.kind, p.llm_provider, p.llm_model, p.cost_source,
    sum(p.steps), sum(p.errors), sum(p.input_tokens), sum(p.output_tokens),
    sum(p.cached_input_tokens), sum(p.reasoning_tokens), sum(p.total_tokens), sum(p.cost_usd),
    coalesce(jsonb_object_agg(p.bucket, p.timed) FILTER (WHERE p.timed > 0), '{{}}'),
    coalesce(min(t.hist::text)::jsonb, '{{}}')
FROM per_bucket p
LEFT JOIN ttft t ON t.key = row(p.org_id, p.hour, p.workflow_id, p.kind, p.llm_provider,
                                p.llm_model, p.cost_source)::text
GROUP BY 1, 2, 3, 4, 5, 6, 7
"""

RECOMPUTE_PEOPLE = f"""
WITH {KEYS},
gone AS (DELETE FROM rollup_people_hourly x USING keys k
         WHERE x.org_id = k.org_id AND x.hour = k.hour)
INSERT INTO rollup_people_hourly (org_id, hour, dimension, key, runs, total_tokens, cost_usd)
SELECT r.org_id, k.hour, d.dimension, d.key, count(*), sum(r.llm_tokens_used), sum(r.cost_usd)
FROM keys k JOIN user_workflow_run r ON {IN_KEYS}
CROSS JOIN LATERAL (VALUES ('user_id', r.user_id), ('conversation_id', r.conversation_id))
  AS d(dimension, key)
WHERE d.key IS NOT NULL
GROUP BY 1, 2, 3, 4
"""

HOURS_OF_RUNS = f"""
SELECT DISTINCT r.org_id, date_trunc('hour', {RUN_TIME}) FROM user_workflow_run r
WHERE r.run_id = ANY(%s)
"""


def hours_of(run_ids: Sequence[UUID]) -> set[tuple[UUID, datetime]]:
    """The (organisation, hour) rollup keys these runs fall in now."""
    if not run_ids:
        return set()
    with connection.cursor() as cur:
        cur.execute(HOURS_OF_RUNS, [list(run_ids)])
        return set(cur.fetchall())


def recompute_rollups(keys: Iterable[tuple[UUID, datetime]]) -> None:
    """Recompute both rollups for these (organisation, hour) pairs from the base tables."""
    keys = sorted(set(keys))
    if not keys:
        return
    locks.lock_keys(locks.ROLLUP_HOURS, (f"{org}|{hour.isoformat()}" for org, hour in keys))
    payload = orjson.dumps([{"org_id": org, "hour": hour} for org, hour in keys]).decode()
    with connection.cursor() as cur:
        cur.execute(RECOMPUTE_RUNS, {"keys": payload})
        cur.execute(RECOMPUTE_STEPS, {"keys": payload})
        cur.execute(RECOMPUTE_PEOPLE, {"keys": payload})


def mark_dirty(keys: Iterable[tuple[UUID, datetime]]) -> None:
    """Queue (organisation, hour) pairs for `refresh_dirty`; call inside the writing
    transaction, so no hour a committed write changed is ever missed."""
    keys = sorted(set(keys))
    if not keys:
        return
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO rollup_dirty_hour (org_id, hour, marked_at) "
            "SELECT org_id, hour, now() "
            "FROM unnest(%s::uuid[], %s::timestamptz[]) AS k(org_id, hour) "
            "ON CONFLICT (org_id, hour) DO NOTHING",
            [[k[0] for k in keys], [k[1] for k in keys]],
        )


@all_orgs()
def refresh_dirty(batch: int = 100) -> int:
    """Recompute the queued hours, a batch per transaction; returns how many were refreshed.
    A write that marks an hour again while it is being refreshed queues it once more."""
    refreshed = 0
    while True:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute(
                "DELETE FROM rollup_dirty_hour WHERE id IN (SELECT id FROM rollup_dirty_hour "
                "ORDER BY hour FOR UPDATE SKIP LOCKED LIMIT %s) RETURNING org_id, hour",
                [batch],
            )
            keys = cur.fetchall()
            if not keys:
                return refreshed
            recompute_rollups(keys)
        refreshed += len(keys)


def merge_histograms(histograms: Iterable[Mapping[str, int]]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for histogram in histograms:
        for bucket, count in histogram.items():
            merged[int(bucket)] = merged.get(int(bucket), 0) + count
    return merged


def percentile(histogram: Mapping[int, int], q: float) -> float | None:
    """The q-th percentile (0 < q <= 100) of a latency histogram, in ms, within
    PERCENTILE_ERROR of the exact value; None for an empty histogram."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = math.ceil(q / 100 * total)
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return 2 ** ((bucket + 0.5) / BUCKETS_PER_DOUBLING)
    raise AssertionError("unreachable: rank is at most the total")
