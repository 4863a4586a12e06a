"""Backfill: consolidated runs built from legacy rows that older code paths wrote (and that
so have no `run_id`), in chunks of traces, each chunk one transaction.

A trace gets a deterministic run id (from its trace id), its steps, events, screenshots,
context and endpoints become the run and its steps, the legacy rows are linked to the run,
and the projection then makes them exactly what the run says. A chunk either lands whole or
not at all, and finished traces carry a run id, so an interrupted backfill resumes where it
stopped and a second one finds nothing to do.
"""

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass

from django.db import connection, transaction

from telemetry import locks, rollups
from telemetry.projection import project_runs, recompute_token_analytics
from telemetry.scope import all_orgs

BACKFILL_NAMESPACE = uuid.UUID("0b9f3c52-7d41-4a2e-9a55-3f1b6c8d2e77")
STATUS_MAP = """CASE lower(t.status)
    WHEN 'success' THEN 'completed' WHEN 'succeeded' THEN 'completed' WHEN 'done' THEN 'completed'
    WHEN 'error' THEN 'failed' WHEN 'errored' THEN 'failed' WHEN 'canceled' THEN 'cancelled'
    WHEN 'pending' THEN 'pending' WHEN 'running' THEN 'running' WHEN 'completed' THEN 'completed'
    WHEN 'failed' THEN 'failed' WHEN 'cancelled' THEN 'cancelled'
    ELSE CASE WHEN t.ended_at IS NOT NULL THEN 'completed' ELSE 'running' END END"""


@dataclass
class BackfillReport:
    traces: int = 0
    steps: int = 0
    events: int = 0
    traces_without_start: int = 0
    steps_without_events: int = 0
    usage_rows_without_trace: int = 0

    def add(self, other: "BackfillReport") -> None:
        for name, value in asdict(other).items():
            if name != "usage_rows_without_trace":
                setattr(self, name, getattr(self, name) + value)


def run_id_for(trace_id: int) -> uuid.UUID:
    return uuid.uuid5(BACKFILL_NAMESPACE, f"trace:{trace_id}")


@all_orgs()
def pending_traces() -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM workflow_trace WHERE run_id IS NULL")
        return cur.fetchone()[0]


def _chunk(size: int) -> list[int]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT trace_id FROM workflow_trace WHERE run_id IS NULL ORDER BY trace_id "
            "LIMIT %s FOR UPDATE SKIP LOCKED",
            [size],
        )
        return [r[0] for r in cur.fetchall()]


BUILD = f"""
WITH ids AS (SELECT * FROM unnest(%(traces)s::bigint[], %(runs)s::uuid[]) AS k(trace_id, run_id)),
runs AS (
  INSERT INTO user_workflow_run (run_id, org_id, workflow_id, status, channel, external_id,
      user_id, started_at, ended_at, duration_ms, context, endpoints_used, error_message,
      created_at, updated_at, step_count)
  SELECT ids.run_id, t.org_id, t.workflow_id,
      {STATUS_MAP}, t.channel, t.external_id, t.user_id, t.started_at, t.ended_at,
      CASE WHEN t.ended_at >= t.started_at
           THEN round(extract(epoch FROM t.ended_at - t.started_at) * 1000) END,
      coalesce((SELECT jsonb_object_agg(c.context_key, coalesce(c.context_value, 'null'))
                FROM workflow_trace_context c WHERE c.trace_id = t.trace_id), '{{}}'),
      coalesce((SELECT jsonb_agg(e.endpoint ORDER BY e.position)
                FROM workflow_trace_endpoint e WHERE e.trace_id = t.trace_id), '[]'),
      t.error_message, t.created_at, now(),
      (SELECT count(*) FROM workflow_steps s WHERE s.trace_id = t.trace_id)
  FROM workflow_trace t JOIN ids USING (trace_id)
  ON CONFLICT (run_id) DO NOTHING
  RETURNING run_id
),
numbered AS (
  -- Steps are numbered 1..n in their recorded order: old rows may lack numbers or repeat them.
  SELECT s.*, ids.run_id AS new_run_id,
         row_number() OVER (PARTITION BY s.trace_id ORDER BY s.step_number NULLS LAST,
                            s.started_at NULLS LAST, s.step_id) AS number
  FROM workflow_steps s JOIN ids USING (trace_id)
),
steps AS (
  INSERT INTO user_workflow_run_step (run_id, org_id, step_number, node_id, name, kind,
      status, retry_count, started_at, ended_at, duration_ms, input_data, output_data,
      error_message, events, screenshots, metadata)
  SELECT n.new_run_id, t.org_id, n.number, n.node_id, n.name,
      CASE WHEN n.step_type IN ('llm', 'tool', 'retrieval', 'browser', 'code')
           THEN n.step_type ELSE 'other' END,
      CASE WHEN n.status IN ('pending', 'running', 'completed', 'failed', 'cancelled')
           THEN n.status ELSE 'completed' END,
      n.retry_count, n.started_at, n.ended_at,
      CASE WHEN n.ended_at >= n.started_at
           THEN round(extract(epoch FROM n.ended_at - n.started_at) * 1000) END,
      n.input_data, n.output_data, n.error_message,
      coalesce((SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                  'type', e.event_type, 'timestamp', e.event_timestamp, 'data', e.event_data))
                  ORDER BY e.position, e.event_id)
                FROM workflow_events e WHERE e.step_id = n.step_id), '[]'),
      coalesce((SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                  'url', x.url, 'thumbnail_url', x.thumbnail_url, 'timestamp', x.taken_at,
                  'action', x.action, 'selector', x.selector,
                  'element_found', x.element_found, 'confidence', x.confidence))
                  ORDER BY x.position, x.screenshot_id)
                FROM workflow_trace_screenshot x WHERE x.step_id = n.step_id), '[]'),
      jsonb_build_object('backfilled_from_step_id', n.step_id)
  FROM numbered n JOIN workflow_trace t ON t.trace_id = n.trace_id
  ON CONFLICT (run_id, step_number) DO NOTHING
  RETURNING events
)
SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM steps),
       (SELECT coalesce(sum(jsonb_array_length(events)), 0) FROM steps),
       (SELECT count(*) FROM steps WHERE events = '[]'::jsonb),
       (SELECT count(*) FROM workflow_trace t JOIN ids USING (trace_id)
         WHERE t.started_at IS NULL)
"""

# Link the legacy rows to their runs; the projection then rewrites them from the run.
LINK = """
WITH ids AS (SELECT * FROM unnest(%(traces)s::bigint[], %(runs)s::uuid[]) AS k(trace_id, run_id)),
  ev AS (DELETE FROM workflow_events WHERE trace_id IN (SELECT trace_id FROM ids)),
  sc AS (DELETE FROM workflow_trace_screenshot WHERE trace_id IN (SELECT trace_id FROM ids)),
  cx AS (DELETE FROM workflow_trace_context WHERE trace_id IN (SELECT trace_id FROM ids)),
  ep AS (DELETE FROM workflow_trace_endpoint WHERE trace_id IN (SELECT trace_id FROM ids)),
  st AS (
    UPDATE workflow_steps s SET run_id = ids.run_id, step_number = r.step_number
    FROM ids, user_workflow_run_step r
    WHERE s.trace_id = ids.trace_id AND r.run_id = ids.run_id
      AND (r.metadata->>'backfilled_from_step_id')::bigint = s.step_id
  )
UPDATE workflow_trace t SET run_id = ids.run_id FROM ids
WHERE t.trace_id = ids.trace_id
RETURNING t.run_id
"""


@all_orgs()
def backfill(
    chunk_size: int = 1000, dry_run: bool = False, progress: Callable[[int], None] = lambda n: None
) -> BackfillReport:
    report = BackfillReport()
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM llm_usage_logs WHERE run_id IS NULL")
        report.usage_rows_without_trace = cur.fetchone()[0]
    while True:
        with transaction.atomic():
            traces = _chunk(chunk_size)
            if not traces:
                if not dry_run:
                    _recompute_legacy_analytics(chunk_size)
                return report
            part = _backfill_chunk(traces)
            report.add(part)
            progress(len(traces))
            if dry_run:
                transaction.set_rollback(True)
        if dry_run:  # the first chunk shows what would happen; nothing was written
            report.traces = pending_traces()
            return report


def _recompute_legacy_analytics(chunk_size: int) -> None:
    """Usage rows of older code that belong to no trace stay legacy-only, but their daily
    analytics are recomputed like any other, so the analytics check holds over all history."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT org_id, user_id, (created_at AT TIME ZONE 'UTC')::date, "
            "request_type, model FROM llm_usage_logs WHERE run_id IS NULL"
        )
        names = ("org_id", "user_id", "date", "request_type", "model")
        keys = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    for start in range(0, len(keys), chunk_size):
        with transaction.atomic():
            recompute_token_analytics(keys[start : start + chunk_size])


def _backfill_chunk(traces: list[int]) -> BackfillReport:
    params = {"traces": traces, "runs": [run_id_for(t) for t in traces]}
    with connection.cursor() as cur:
        cur.execute(BUILD, params)
        runs, steps, events, bare_steps, no_start = cur.fetchone()
        cur.execute(LINK, params)
        run_ids = [r[0] for r in cur.fetchall()]
    locks.lock_keys(locks.RUNS, run_ids)
    project_runs(run_ids)
    rollups.recompute_rollups(rollups.hours_of(run_ids))
    return BackfillReport(
        traces=runs,
        steps=steps,
        events=events,
        traces_without_start=no_start,
        steps_without_events=bare_steps,
    )
