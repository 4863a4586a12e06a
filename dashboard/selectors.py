"""Queries the pages need."""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q, Sum
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from dashboard.filters import PageFilters
from telemetry.consistency.checks import CHECKS, Check
from telemetry.models import (
    CheckResult,
    LegacyOutbox,
    Organization,
    PeopleRollup,
    WebhookAttempt,
    WebhookSubscription,
    WorkflowRun,
    WorkflowRunStep,
)
from telemetry.rollups import percentile
from telemetry.selectors import RunFilters, filter_runs


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


# --- pages of one organisation ---------------------------------------------------------

QUANTILES = (50, 90, 95, 99)


def quantiles(histogram: dict[int, int]) -> dict[str, float | None]:
    return {f"p{q}": percentile(histogram, q) for q in QUANTILES}


def quantile_table(histograms: dict[str, dict[int, int]]) -> list[dict]:
    rows = [{"key": k, "count": sum(h.values()), **quantiles(h)} for k, h in histograms.items()]
    return sorted(rows, key=lambda r: -(r["p95"] or 0))


def _runs_in_range(org: Organization, f: PageFilters):
    runs = WorkflowRun.objects.filter(org=org, started_at__gte=f.start, started_at__lt=f.end)
    for column, value in (
        ("workflow_id", f.workflow),
        ("llm_model", f.model),
        ("channel", f.channel),
        ("user_id", f.user),
    ):
        if value:
            runs = runs.filter(**{column: value})
    if f.provider:
        runs = runs.filter(steps__llm_provider=f.provider).distinct()
    return runs


def most_expensive_runs(org: Organization, f: PageFilters, limit: int = 10):
    return list(_runs_in_range(org, f).order_by("-cost_usd")[:limit])


def slowest_runs(org: Organization, f: PageFilters, limit: int = 10):
    runs = _runs_in_range(org, f).filter(duration_ms__isnull=False)
    return list(runs.order_by("-duration_ms")[:limit])


def slowest_steps(org: Organization, f: PageFilters, limit: int = 10):
    steps = WorkflowRunStep.objects.filter(
        org=org, started_at__gte=f.start, started_at__lt=f.end, duration_ms__isnull=False
    )
    if f.workflow:
        steps = steps.filter(run__workflow_id=f.workflow)
    if f.model:
        steps = steps.filter(llm_model=f.model)
    if f.provider:
        steps = steps.filter(llm_provider=f.provider)
    return list(steps.select_related("run").order_by("-duration_ms")[:limit])


def cost_by_people(
    org: Organization, f: PageFilters, source: str, limit: int = 10
) -> dict[str, list[dict]]:
    """Top users and conversations by cost in the range: from the hourly people rollup, or
    from the runs when a filter the rollup does not have is set."""
    out = {}
    for column in ("user_id", "conversation_id"):
        if source == "rollup" and not (f.workflow or f.model or f.provider):
            first_hour = f.start.replace(minute=0, second=0, microsecond=0)
            rows = (
                PeopleRollup.objects.filter(
                    org_id=org.id, dimension=column, hour__gte=first_hour, hour__lt=f.end
                )
                .values("key")
                .annotate(runs=Sum("runs"), tokens=Sum("total_tokens"), cost=Sum("cost_usd"))
                .order_by("-cost")[:limit]
            )
            out[column] = [{column: r.pop("key"), **r} for r in rows]
        else:
            runs = _runs_in_range(org, f).exclude(**{column: None})
            out[column] = list(
                runs.values(column)
                .annotate(runs=Count("run_id"), tokens=Sum("llm_tokens_used"), cost=Sum("cost_usd"))
                .order_by("-cost")[:limit]
            )
    return out


EXPLORER_FIELDS = ("status", "conversation", "external_id", "context")


def explorer_filters(f: PageFilters, params) -> tuple[RunFilters, list[str]]:
    errors, context = [], None
    raw_context = params.get("context", "").strip()
    if raw_context:
        try:
            context = json.loads(raw_context)
        except ValueError:
            context = None
        if not isinstance(context, dict):
            errors.append('Context must be a JSON object, e.g. {"correlation_id": "xyz789"}.')
            context = None
    status = params.get("status", "")
    if status and status not in ("pending", "running", "completed", "failed", "cancelled"):
        errors.append(f"Unknown status {status!r}.")
        status = ""
    return RunFilters(
        since=f.start,
        until=f.end,
        status=status or None,
        workflow_id=f.workflow or None,
        model=f.model or None,
        user_id=f.user or None,
        conversation_id=params.get("conversation") or None,
        external_id=params.get("external_id") or None,
        context=context,
    ), errors


@dataclass
class RunsPage:
    runs: list
    next_before: str | None


def runs_page(org: Organization, filters: RunFilters, before: str | None, size: int = 50):
    """Newest first, keyset-paginated on (started_at, run_id): no OFFSET, no count(*)."""
    runs = filter_runs(org, filters).exclude(started_at=None)
    if before:
        stamp, _, run_id = before.partition("|")
        moment = parse_datetime(stamp)
        if moment is not None and run_id:
            runs = runs.filter(Q(started_at__lt=moment) | Q(started_at=moment, run_id__lt=run_id))
    rows = list(runs.order_by("-started_at", "-run_id")[: size + 1])
    following = None
    if len(rows) > size:
        last = rows[size - 1]
        following = f"{last.started_at.isoformat()}|{last.run_id}"
    return RunsPage(rows[:size], following)


def webhook_overview(org: Organization) -> list[dict]:
    """Each subscription with its delivery counts and its latest failure, failing ones first."""
    subscriptions = WebhookSubscription.objects.filter(org=org).annotate(
        delivered=Count("deliveries", filter=Q(deliveries__state="delivered")),
        pending=Count("deliveries", filter=Q(deliveries__state="pending")),
        dead=Count("deliveries", filter=Q(deliveries__state="dead")),
    )
    out = []
    for s in subscriptions:
        last = (
            WebhookAttempt.objects.filter(delivery__subscription=s)
            .order_by("-attempted_at")
            .first()
        )
        failing = bool(last and last.error)
        out.append({"subscription": s, "last": last, "failing": failing})
    return sorted(out, key=lambda row: not row["failing"])
