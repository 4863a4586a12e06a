"""Celery tasks: a few lines each, calling services."""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from telemetry.consistency.checks import BY_NAME
from telemetry.consistency.repair import repair_check
from telemetry.consistency.runner import run_checks
from telemetry.outbox import drain_outbox
from telemetry.rollups import refresh_dirty
from telemetry.webhooks import deliver_due


@shared_task(acks_late=True, ignore_result=True)
def drain_legacy_outbox() -> dict:
    return drain_outbox().as_dict()


@shared_task(ignore_result=True)
def check_recent_consistency(minutes: int = 15) -> int:
    now = timezone.now()
    return sum(not r.passed for r in run_checks(now - timedelta(minutes=minutes), now))


@shared_task(ignore_result=True)
def check_all_consistency() -> int:
    return sum(not r.passed for r in run_checks())


@shared_task(ignore_result=True)
def repair_consistency_check(name: str) -> int:
    return repair_check(BY_NAME[name]).offenders


@shared_task(ignore_result=True)
def refresh_rollups() -> int:
    return refresh_dirty()


@shared_task(ignore_result=True)
def deliver_webhooks() -> dict:
    return deliver_due()
