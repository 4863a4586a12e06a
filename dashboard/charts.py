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


def _figure(**layout) -> go.Figure:
    return go.Figure(layout={**LAYOUT, **layout})


def cost_over_time(by_model: dict, filter_name: str = "model") -> go.Figure:
    """Cost per time bucket, stacked by model; clicking a model filters by it."""
    figure = _figure(barmode="stack", meta={"filter": filter_name})
    for model, series in sorted(by_model.items()):
        figure.add_trace(
            go.Bar(
                x=series.buckets,
                y=[float(c) for c in series.values["cost"]],
                name=model,
                customdata=[model] * len(series.buckets),
                hovertemplate="%{x}<br>$%{y:,.4f}<extra>" + model + "</extra>",
            )
        )
    figure.update_yaxes(title_text="cost (USD)", tickprefix="$")
    return figure


def tokens_over_time(series) -> go.Figure:
    figure = _figure()
    fresh = [i - c for i, c in zip(series.values["input"], series.values["cached"], strict=True)]
    for name, values in (
        ("input (fresh)", fresh),
        ("input (cached)", series.values["cached"]),
        ("output", series.values["output"]),
    ):
        figure.add_trace(
            go.Scatter(
                x=series.buckets,
                y=values,
                name=name,
                stackgroup="tokens",
                mode="lines",
                hovertemplate="%{y:,} tokens",
            )
        )
    figure.update_yaxes(title_text="tokens")
    return figure


def latency_over_time(series) -> go.Figure:
    figure = _figure()
    for name, values in series.values.items():
        figure.add_trace(
            go.Scatter(
                x=series.buckets,
                y=values,
                name=name,
                mode="lines",
                hovertemplate="%{y:,.0f} ms<extra>" + name + "</extra>",
            )
        )
    figure.update_yaxes(title_text="run duration (ms, ±9%)", type="log")
    return figure


def error_rate_over_time(series) -> go.Figure:
    rates = [
        f / r * 100 if r else None
        for f, r in zip(series.values["failed"], series.values["runs"], strict=True)
    ]
    figure = _figure()
    figure.add_trace(
        go.Scatter(
            x=series.buckets,
            y=rates,
            name="error rate",
            mode="lines",
            line={"color": "#c62828"},
            hovertemplate="%{y:.1f}%",
        )
    )
    figure.update_yaxes(title_text="failed runs (%)", ticksuffix="%", rangemode="tozero")
    return figure


def breakdown_bars(slices, filter_name: str, value: str = "cost") -> go.Figure:
    """Horizontal bars, largest on top; clicking a bar filters the pages by it."""
    slices = [s for s in slices if s.key is not None][:15][::-1]
    figure = _figure(
        height=max(220, 28 * len(slices) + 80),
        meta={"filter": filter_name},
        showlegend=False,
        margin={"l": 180, "r": 20, "t": 10, "b": 40},
    )
    xs = [float(getattr(s, value)) for s in slices]
    figure.add_trace(
        go.Bar(
            x=xs,
            y=[s.key for s in slices],
            orientation="h",
            customdata=[s.key for s in slices],
            marker={"color": "#1f4e79"},
            hovertemplate="%{y}: %{x:,.4f}<extra></extra>",
        )
    )
    if value == "cost":
        figure.update_xaxes(tickprefix="$")
    return figure


def latency_histogram(histogram: dict[int, int]) -> go.Figure:
    from telemetry.rollups import BUCKETS_PER_DOUBLING

    buckets = sorted(histogram)
    figure = _figure(showlegend=False, bargap=0.05)
    figure.add_trace(
        go.Bar(
            x=[2 ** ((b + 0.5) / BUCKETS_PER_DOUBLING) for b in buckets],
            y=[histogram[b] for b in buckets],
            width=[
                2 ** ((b + 1) / BUCKETS_PER_DOUBLING) - 2 ** (b / BUCKETS_PER_DOUBLING)
                for b in buckets
            ],
            marker={"color": "#1f4e79"},
            hovertemplate="~%{x:,.0f} ms: %{y:,} runs<extra></extra>",
        )
    )
    figure.update_xaxes(title_text="run duration (ms)", type="log", dtick=1, tickformat=",.0f")
    figure.update_yaxes(title_text="runs")
    return figure


def step_timeline(steps, run_start) -> go.Figure:
    """A Gantt-like bar per step from its start to its end."""
    rows = [s for s in steps if s.started_at][::-1]
    figure = _figure(
        height=max(200, 34 * len(rows) + 80),
        showlegend=False,
        margin={"l": 200, "r": 20, "t": 10, "b": 40},
    )
    colours = {"completed": "#1f4e79", "failed": "#c62828", "running": "#b26a00"}
    figure.add_trace(
        go.Bar(
            y=[f"{s.step_number}. {s.name or s.node_id or s.kind}" for s in rows],
            x=[(s.duration_ms or 1) for s in rows],
            base=[(s.started_at - run_start).total_seconds() * 1000 for s in rows],
            orientation="h",
            marker={"color": [colours.get(s.status, "#5b6776") for s in rows]},
            hovertemplate="%{y}<br>starts at %{base:,.0f} ms, takes %{x:,.0f} ms<extra></extra>",
        )
    )
    figure.update_xaxes(title_text="ms since the run started")
    return figure
