"""Plotly figure builders: data in, figure out, no queries."""

from collections import defaultdict

import plotly.graph_objects as go

from telemetry.models import CheckResult

LAYOUT = {
    "margin": {"l": 50, "r": 20, "t": 10, "b": 40},
    "height": 320,
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "font": {"family": "system-ui, sans-serif", "size": 12},
    "legend": {"orientation": "h", "y": -0.2},
    "xaxis": {"gridcolor": "#e6e9ee"},
    "yaxis": {"gridcolor": "#e6e9ee", "rangemode": "tozero"},
}


def offenders_over_time(history: list[CheckResult]) -> go.Figure:
    """One line per check: offenders found by each run of it."""
    series: dict[str, list[CheckResult]] = defaultdict(list)
    for result in history:
        series[result.check_name].append(result)
    figure = go.Figure(layout=LAYOUT)
    for name, results in sorted(series.items()):
        figure.add_trace(
            go.Scatter(
                x=[r.checked_at for r in results],
                y=[r.offenders for r in results],
                mode="lines+markers",
                name=name,
                hovertemplate="%{x|%Y-%m-%d %H:%M}<br>%{y:,} offenders<extra>" + name + "</extra>",
            )
        )
    figure.update_yaxes(title_text="offenders")
    return figure
