"""Queries the pages need."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q
from django.utils import timezone

from telemetry.consistency.checks import CHECKS, Check
from telemetry.models import CheckResult, LegacyOutbox


@dataclass
class CheckStatus:
    check: Check
    latest: CheckResult | None

    @property
    def state(self) -> str:
        if self.latest is None:
            return "none"
        if self.latest.passed:
            return "ok"
        return "bad" if self.check.severity == "error" else "warn"


def check_statuses() -> list[CheckStatus]:
    """Every registered check with its latest stored result (DISTINCT ON check_name)."""
    latest = {
        r.check_name: r
        for r in CheckResult.objects.order_by("check_name", "-checked_at").distinct("check_name")
    }
    return [CheckStatus(check, latest.get(check.name)) for check in CHECKS]


def check_history(days: int = 7) -> list[CheckResult]:
    since = timezone.now() - timedelta(days=days)
    return list(
        CheckResult.objects.filter(checked_at__gte=since)
        .only("check_name", "checked_at", "offenders")
        .order_by("checked_at")
    )


@dataclass
class OutboxStatus:
    pending: int
    dead: int
    oldest_pending: datetime | None
    dead_letters: list[LegacyOutbox]

    @property
    def oldest_age(self) -> timedelta | None:
        return timezone.now() - self.oldest_pending if self.oldest_pending else None


def outbox_status() -> OutboxStatus:
    totals = LegacyOutbox.objects.aggregate(
        pending=Count("id", filter=Q(dead_at__isnull=True)),
        dead=Count("id", filter=Q(dead_at__isnull=False)),
        oldest=Min("created_at", filter=Q(dead_at__isnull=True)),
    )
    dead = list(LegacyOutbox.objects.filter(dead_at__isnull=False).order_by("-dead_at")[:20])
    return OutboxStatus(totals["pending"], totals["dead"], totals["oldest"], dead)
