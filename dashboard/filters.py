"""The filters every page takes from its query string: time range and dimensions."""

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.utils import timezone
from django.utils.dateparse import parse_datetime

RANGES = {
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}
DIMENSIONS = ("workflow", "model", "provider", "channel", "user")


@dataclass(frozen=True)
class PageFilters:
    range: str = "24h"
    start: datetime = field(default_factory=timezone.now)
    end: datetime = field(default_factory=timezone.now)
    workflow: str = ""
    model: str = ""
    provider: str = ""
    channel: str = ""
    user: str = ""
    errors: tuple[str, ...] = ()

    @property
    def bucket(self) -> str:
        """The chart bucket: 5 minutes up to 2 hours, hours up to 8 days, days beyond."""
        span = self.end - self.start
        if span <= timedelta(hours=2):
            return "5 minutes"
        return "1 hour" if span <= timedelta(days=8) else "1 day"

    def previous(self) -> "PageFilters":
        span = self.end - self.start
        return replace(self, start=self.start - span, end=self.start)

    def active(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in DIMENSIONS if getattr(self, name)}

    def query(self, **changes: str) -> str:
        """The query string for these filters with some changed (empty value removes one)."""
        params = {"range": self.range, **self.active()}
        if self.range == "custom":
            params.update(since=self.start.isoformat(), until=self.end.isoformat())
        params.update(changes)
        return urlencode({k: v for k, v in params.items() if v})


def parse_filters(params) -> PageFilters:
    now = timezone.now()
    errors = []
    chosen = params.get("range", "24h")
    dimensions = {name: params.get(name, "").strip()[:200] for name in DIMENSIONS}
    if chosen == "custom":
        since = _aware(parse_datetime(params.get("since", "") or ""))
        until = _aware(parse_datetime(params.get("until", "") or "")) or now
        if since is None:
            errors.append("Custom range: give 'since' as a date and time, e.g. 2025-01-14T10:00.")
            chosen, since, until = "24h", now - RANGES["24h"], now
        elif since >= until:
            errors.append("Custom range: 'since' must be before 'until'.")
            since, until = until - RANGES["24h"], until
        return PageFilters("custom", since, until, errors=tuple(errors), **dimensions)
    if chosen not in RANGES:
        errors.append(f"Unknown range {chosen!r}; showing the last 24 hours.")
        chosen = "24h"
    return PageFilters(chosen, now - RANGES[chosen], now, errors=tuple(errors), **dimensions)


def _aware(moment: datetime | None) -> datetime | None:
    """A date and time typed without a zone is UTC, the zone every page shows."""
    if moment is None or moment.tzinfo:
        return moment
    return timezone.make_aware(moment)
