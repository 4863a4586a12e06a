"""The asynchronous write mode: the outbox of runs whose legacy rows are still to be written,
and its drain.

Ingest commits the consolidated rows with one outbox record per run it changed. The drain
claims due records (FOR UPDATE SKIP LOCKED, so drains never wait for each other), projects
their runs under the runs' locks and removes every record of those runs: the projection reads
the run as it is now, so one projection settles all the records written before it. A failure
is retried with exponential backoff; past the limit the record is kept as a dead letter,
visible on the consistency page and repaired by `manage.py repair`.
"""

import logging
from dataclasses import asdict, dataclass
from datetime import timedelta
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from telemetry import locks
from telemetry.models import LegacyOutbox
from telemetry.projection import project_runs
from telemetry.scope import all_orgs

log = logging.getLogger(__name__)

BACKOFF_CAP = timedelta(hours=1)


@dataclass
class DrainResult:
    projected: int = 0
    failed: int = 0
    dead: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def enqueue(org_id: UUID, run_ids: list[UUID]) -> None:
    """Record runs to project; call in the transaction that wrote their consolidated rows."""
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO legacy_outbox (run_id, org_id) SELECT unnest(%s::uuid[]), %s",
            [run_ids, org_id],
        )


def project_and_settle(run_ids: list[UUID]) -> None:
    """Project runs and remove their outbox records. The caller holds a transaction."""
    locks.lock_keys(locks.RUNS, run_ids)
    project_runs(run_ids)
    LegacyOutbox.objects.filter(run_id__in=run_ids).delete()


def backoff(attempts: int) -> timedelta:
    return min(timedelta(seconds=2**attempts), BACKOFF_CAP)


@all_orgs()
def drain_outbox(batch_size: int = 200, max_batches: int | None = None) -> DrainResult:
    """Drain due outbox records until none are left (or max_batches)."""
    result = DrainResult()
    batches = 0
    while max_batches is None or batches < max_batches:
        batches += 1
        with transaction.atomic():
            claimed = list(
                LegacyOutbox.objects.select_for_update(skip_locked=True)
                .filter(dead_at__isnull=True, next_attempt_at__lte=timezone.now())
                .order_by("id")
                .values_list("id", "run_id")[:batch_size]
            )
            if not claimed:
                break
            run_ids = sorted({run_id for _, run_id in claimed})
            try:
                with transaction.atomic():
                    project_and_settle(run_ids)
                result.projected += len(run_ids)
                continue
            except Exception:
                log.warning("outbox batch of %d runs failed; retrying run by run", len(run_ids))
            for run_id in run_ids:
                _drain_one(run_id, [i for i, r in claimed if r == run_id], result)
    return result


def _drain_one(run_id: UUID, record_ids: list[int], result: DrainResult) -> None:
    try:
        with transaction.atomic():
            project_and_settle([run_id])
        result.projected += 1
    except Exception as exc:
        log.exception("legacy projection of run %s failed", run_id)
        limit = settings.LOCKSTEP_OUTBOX_MAX_ATTEMPTS
        records = LegacyOutbox.objects.filter(id__in=record_ids)
        for record in records:
            record.attempts += 1
            record.last_error = f"{type(exc).__name__}: {exc}"[:2000]
            record.next_attempt_at = timezone.now() + backoff(record.attempts)
            if record.attempts >= limit:
                record.dead_at = timezone.now()
                result.dead += 1
            record.save(update_fields=["attempts", "last_error", "next_attempt_at", "dead_at"])
        result.failed += 1


@all_orgs()
def revive_dead_letters() -> int:
    """Make dead letters due again (after the cause is fixed)."""
    return LegacyOutbox.objects.filter(dead_at__isnull=False).update(
        dead_at=None, attempts=0, next_attempt_at=timezone.now()
    )
