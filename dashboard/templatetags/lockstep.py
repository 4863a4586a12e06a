"""Numbers formatted for people: dollars, durations, percentages, changes."""

from decimal import Decimal

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma

register = template.Library()


@register.filter
def usd(value) -> str:
    if value is None:
        return "—"
    value = Decimal(value)
    if value == 0:
        return "$0"
    if abs(value) < Decimal("0.01"):
        return f"${value:.4f}"
    return f"${intcomma(f'{value:.2f}')}"


@register.filter
def ms(value) -> str:
    if value is None:
        return "—"
    value = float(value)
    if value < 1000:
        return f"{value:,.0f} ms"
    if value < 60_000:
        return f"{value / 1000:,.1f} s"
    return f"{value / 60_000:,.1f} min"


@register.filter
def pct(value, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def change(current, previous) -> str:
    """'+12% vs previous period'; empty when there is nothing to compare with."""
    if current is None or not previous:
        return ""
    delta = (float(current) - float(previous)) / float(previous)
    return f"{delta:+.0%} vs previous period"


@register.simple_tag(takes_context=True)
def filtered(context, **changes) -> str:
    """The current page's URL with some filters changed: {% filtered model=name %}."""
    return "?" + context["filters"].query(**{k: str(v or "") for k, v in changes.items()})
