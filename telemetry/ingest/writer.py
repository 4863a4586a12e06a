"""Write a batch of run documents to the consolidated tables, and in sync mode to the legacy
tables through the projection, in one transaction.

The batch is written with a fixed number of set-based statements whatever its size: stored
rows are read once, merged in Python (`documents.merge`), and only rows that changed are
written back with `INSERT ... SELECT FROM jsonb_to_recordset(...) ON CONFLICT`.
"""

import logging
import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import orjson
from django.conf import settings
from django.db import OperationalError, connection, transaction

from telemetry import locks, outbox, rollups, scope, tasks, webhooks
from telemetry.ingest.documents import (
    RUN_COLUMNS,
    RUN_DEFAULTS,
    STEP_COLUMNS,
    STEP_DEFAULTS,
    PreparedRun,
    Rejected,
    merge,
    prepare,
)
from telemetry.models import ApiKey, CutoverState, Organization
from telemetry.projection import project_runs

log = logging.getLogger(__name__)

JSONB_COLUMNS = {name for name, kind in {**RUN_COLUMNS, **STEP_COLUMNS}.items() if kind == "jsonb"}
RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock, serialization failure
ROLLUP_REFRESH_DELAY_S = 2


@dataclass
class RunResult:
    index: int
    run_id: str | None
    status: str  # created, updated, unchanged, rejected
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "run_id": self.run_id, "status": self.status}
        if self.errors:
            out["errors"] = self.errors
        return out


def ingest_runs(org: Organization, api_key: ApiKey | None, raw_runs: list[Any]) -> list[RunResult]:
    """Validate and write a batch of run documents; one result per document, in order."""
    results: list[RunResult | None] = [None] * len(raw_runs)
    prepared: list[PreparedRun] = []
    for index, raw in enumerate(raw_runs):
        try:
            prepared.append(prepare(index, raw))
        except Rejected as exc:
            run_id = exc.run_id if isinstance(exc.run_id, str) else None
            results[index] = RunResult(index, run_id, "rejected", exc.errors)
    if prepared:
        for attempt in range(3):
            try:
                with scope.org_scope(org.id):  # one organisation's rows, whoever calls
                    written = _write(org, api_key, prepared)
                break
            except OperationalError as exc:
                sqlstate = getattr(exc.__cause__, "sqlstate", None)
                if sqlstate not in RETRYABLE_SQLSTATES or attempt == 2:
                    raise
                log.warning("ingest retried after %s", sqlstate)
                time.sleep(0.05 * (attempt + 1))
        for result in written:
            results[result.index] = result
    return results  # type: ignore[return-value]


def _write(
    org: Organization, api_key: ApiKey | None, prepared: list[PreparedRun]
) -> list[RunResult]:
    run_ids = sorted({p.run_id for p in prepared})
    locks.lock_keys(locks.RUNS, run_ids)
    stored_runs, foreign = _stored_runs(org, run_ids)
    # A run that is not stored has no steps stored either (they reference it).
    stored_steps = _stored_steps(
        [(p.run_id, n) for p in prepared if p.run_id in stored_runs for n in p.steps]
    )

    results: list[RunResult] = []
    touched: set[UUID] = set()
    new_steps: dict[tuple[UUID, int], dict] = {}
    for p in prepared:
        if p.run_id in foreign:
            message = "this run_id belongs to another organisation; generate a new UUID"
            results.append(
                RunResult(
                    p.index, str(p.run_id), "rejected", [{"field": "run_id", "message": message}]
                )
            )
            continue
        before = stored_runs.get(p.run_id)
        row = merge(before, p.values, RUN_DEFAULTS)
        changed = row != before
        if changed:
            stored_runs[p.run_id] = row
            touched.add(p.run_id)
        for number, values in p.steps.items():
            key = (p.run_id, number)
            step_before = stored_steps.get(key)
            step_row = merge(step_before, values, STEP_DEFAULTS)
            if step_row != step_before:
                stored_steps[key] = new_steps[key] = step_row
                changed = True
                touched.add(p.run_id)
        status = "created" if before is None else ("updated" if changed else "unchanged")
        results.append(RunResult(p.index, str(p.run_id), status))

    if touched:
        changed_runs = sorted(touched)
        hours_before = rollups.hours_of(changed_runs)
        # Steps first (their foreign key to the run is checked at commit), so the run upsert
        # can derive the run's totals from all its steps in the same statement.
        _upsert_steps(org, new_steps)
        _upsert_runs(org, api_key, {run_id: stored_runs[run_id] for run_id in touched})
        _follow_up(org, changed_runs, hours_before)
    return results


def _follow_up(org: Organization, changed_runs: list[UUID], hours_before: set) -> None:
    """What a write to runs sets off, in the same transaction: dashboard rollups, lifecycle
    events (and their webhook deliveries), and the legacy rows or their outbox records."""
    hours = hours_before | rollups.hours_of(changed_runs)
    if settings.LOCKSTEP_ROLLUP_REFRESH == "inline":
        rollups.recompute_rollups(hours)
    else:
        rollups.mark_dirty(hours)
        # A short delay lets the writes of the next seconds to the same hour share a refresh.
        _after_commit(tasks.refresh_rollups, countdown=ROLLUP_REFRESH_DELAY_S)
    if webhooks.record_events(changed_runs) and not settings.CELERY_TASK_ALWAYS_EAGER:
        _after_commit(tasks.deliver_webhooks)  # with a worker; never inside the request
    if CutoverState.objects.exists():
        return  # the legacy tables are views over the consolidated ones now
    if settings.LOCKSTEP_WRITE_MODE == "async":
        outbox.enqueue(org.id, changed_runs)
        _after_commit(tasks.drain_legacy_outbox)
    else:
        project_runs(changed_runs)


def _after_commit(task, countdown: int = 0) -> None:
    """Queue a Celery task once the transaction commits. The rows are safe by then, so a
    broker failure is logged (beat runs the task anyway), never raised into the request."""

    def send() -> None:
        try:
            task.apply_async(countdown=countdown)
        except Exception:
            log.exception("could not queue %s; beat will run it", task.name)

    transaction.on_commit(send)


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    # Django's psycopg backend hands JSONB back as text; JSONField decodes it, raw SQL must.
    for name in JSONB_COLUMNS.intersection(row):
        if isinstance(row[name], str):
            row[name] = orjson.loads(row[name])
    return row


def _stored_runs(org: Organization, run_ids: list[UUID]) -> tuple[dict[UUID, dict], set[UUID]]:
    """This organisation's stored rows of these runs, and the run ids another one uses."""
    columns = ", ".join(RUN_COLUMNS)
    with connection.cursor() as cur:
        cur.execute(
            f"SELECT run_id, {columns} FROM user_workflow_run WHERE run_id = ANY(%s)", [run_ids]
        )
        names = [c.name for c in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    stored = {r.pop("run_id"): _decode(r) for r in rows}
    return stored, _taken_elsewhere(org, [r for r in run_ids if r not in stored])


def _taken_elsewhere(org: Organization, run_ids: list[UUID]) -> set[UUID]:
    """Which of these run ids another organisation uses. Row-level security hides other
    organisations' rows from this transaction, so this one question is asked across them."""
    if not run_ids:
        return set()
    with scope.all_orgs(), connection.cursor() as cur:
        cur.execute(
            "SELECT run_id FROM user_workflow_run WHERE run_id = ANY(%s) AND org_id <> %s",
            [run_ids, org.id],
        )
        return {r[0] for r in cur.fetchall()}


def _stored_steps(keys: list[tuple[UUID, int]]) -> dict[tuple[UUID, int], dict]:
    if not keys:
        return {}
    columns = ", ".join(STEP_COLUMNS)
    with connection.cursor() as cur:
        cur.execute(
            f"""SELECT s.run_id, s.step_number, {columns} FROM user_workflow_run_step s
                JOIN unnest(%s::uuid[], %s::int[]) AS k(run_id, step_number)
                  USING (run_id, step_number)""",
            [[k[0] for k in keys], [k[1] for k in keys]],
        )
        names = [c.name for c in cur.description]
        stored = {}
        for values in cur.fetchall():
            row = dict(zip(names, values, strict=True))
            stored[(row.pop("run_id"), row.pop("step_number"))] = _decode(row)
    return stored


def _recordset(columns: dict[str, str]) -> str:
    return ", ".join(f"{name} {kind}" for name, kind in columns.items())


def _json(rows: list[dict[str, Any]]) -> str:
    return orjson.dumps(rows, default=str).decode()


# Run totals are derived from the steps, here and nowhere else.
RUN_TOTALS = {
    "step_count": "count(*)",
    "input_tokens": "coalesce(sum(input_tokens), 0)",
    "output_tokens": "coalesce(sum(output_tokens), 0)",
    "cached_input_tokens": "coalesce(sum(cached_input_tokens), 0)",
    "reasoning_tokens": "coalesce(sum(reasoning_tokens), 0)",
    "llm_tokens_used": "coalesce(sum(total_tokens), 0)",
    "cost_usd": "coalesce(sum(cost_usd), 0)",
    "llm_model": "(array_agg(llm_model ORDER BY step_number DESC)"
    " FILTER (WHERE llm_model IS NOT NULL))[1]",
    "llm_prompt": "(array_agg(llm_prompt ORDER BY step_number)"
    " FILTER (WHERE llm_prompt IS NOT NULL))[1]",
    "llm_response": "(array_agg(llm_response ORDER BY step_number DESC)"
    " FILTER (WHERE llm_response IS NOT NULL))[1]",
}


def _upsert_runs(org: Organization, api_key: ApiKey | None, rows: dict[UUID, dict]) -> None:
    columns = [*RUN_COLUMNS, *RUN_TOTALS]
    names = ", ".join(columns)
    totals = ", ".join(f"{expression} AS {name}" for name, expression in RUN_TOTALS.items())
    payload = [{"run_id": run_id, **row} for run_id, row in sorted(rows.items())]
    with connection.cursor() as cur:
        cur.execute(
            f"""INSERT INTO user_workflow_run AS r (run_id, org_id, created_by, {names})
                SELECT d.run_id, %s, %s, {", ".join(f"d.{n}" for n in RUN_COLUMNS)},
                       {", ".join(f"t.{n}" for n in RUN_TOTALS)}
                FROM jsonb_to_recordset(%s::jsonb) AS d(run_id uuid, {_recordset(RUN_COLUMNS)})
                CROSS JOIN LATERAL (
                    SELECT {totals} FROM user_workflow_run_step s WHERE s.run_id = d.run_id
                ) t
                ON CONFLICT (run_id) DO UPDATE
                SET {", ".join(f"{n} = EXCLUDED.{n}" for n in columns)}, updated_at = now()
                WHERE r.org_id = EXCLUDED.org_id""",
            [org.id, api_key.pk if api_key else None, _json(payload)],
        )


def _upsert_steps(org: Organization, rows: dict[tuple[UUID, int], dict]) -> None:
    if not rows:
        return
    names = ", ".join(STEP_COLUMNS)
    updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in STEP_COLUMNS)
    payload = [
        {"run_id": run_id, "step_number": number, **row}
        for (run_id, number), row in sorted(rows.items())
    ]
    with connection.cursor() as cur:
        cur.execute(
            f"""INSERT INTO user_workflow_run_step AS s (run_id, step_number, org_id, {names})
                SELECT d.run_id, d.step_number, %s, {", ".join(f"d.{n}" for n in STEP_COLUMNS)}
                FROM jsonb_to_recordset(%s::jsonb)
                  AS d(run_id uuid, step_number integer, {_recordset(STEP_COLUMNS)})
                ON CONFLICT (run_id, step_number) DO UPDATE SET {updates}""",
            [org.id, _json(payload)],
        )
