"""Glue: parse input, call selectors and services, build charts, render."""

import json
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from dashboard import charts, metrics, selectors
from dashboard.filters import DIMENSIONS, parse_filters
from dashboard.forms import WebhookForm
from dashboard.scoping import org_required
from dashboard.templatetags.lockstep import change
from telemetry import cutover
from telemetry import selectors as telemetry_selectors
from telemetry.consistency.checks import BY_NAME
from telemetry.consistency.runner import offender_ids, run_checks
from telemetry.models import WebhookSubscription
from telemetry.outbox import revive_dead_letters
from telemetry.scope import all_orgs
from telemetry.tasks import (
    check_all_consistency,
    drain_legacy_outbox,
    repair_consistency_check,
)


def operators_only(view):
    """Checks read every organisation's rows: these pages are for operators (staff) only, and
    read across organisations (`all_orgs`)."""

    @login_required
    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not request.user.is_staff:
            raise PermissionDenied("The consistency pages are for operators (staff users).")
        with all_orgs():
            return view(request, *args, **kwargs)

    return guarded


@operators_only
def consistency(request):
    statuses = selectors.check_statuses()
    history = selectors.check_history()
    figure = charts.offenders_over_time(history) if history else None
    return render(
        request,
        "dashboard/consistency.html",
        {
            "nav": "consistency",
            "statuses": statuses,
            "failing": sum(s.state == "bad" for s in statuses),
            "warnings": sum(s.state == "warn" for s in statuses),
            "never_run": sum(s.state == "none" for s in statuses),
            "figures": {"offenders": figure.to_plotly_json()} if figure else {},
            "outbox": selectors.outbox_status(),
        },
    )


@operators_only
@require_POST
def run_checks_now(request):
    now = timezone.now()
    results = run_checks(now - timezone.timedelta(hours=1), now)
    failed = [r.check_name for r in results if not r.passed]
    if failed:
        messages.error(request, f"Checked the last hour: {len(failed)} check(s) found offenders.")
    else:
        messages.success(request, f"Checked the last hour: all {len(results)} checks clean.")
    return redirect("consistency")


@operators_only
def repair_confirm(request, name):
    check = BY_NAME.get(name)
    if check is None or check.repair is None:
        raise Http404("No repairable check by that name.")
    ids = offender_ids(check, None, None)
    return render(
        request,
        "dashboard/repair_confirm.html",
        {
            "nav": "consistency",
            "check": check,
            "count": len(ids),
            "sample": ids[:50],
            "deletes": name == "trace_without_run",
        },
    )


@operators_only
@require_POST
def repair(request, name):
    check = BY_NAME.get(name)
    if check is None or check.repair is None:
        raise Http404("No repairable check by that name.")
    repair_consistency_check.delay(name)
    messages.success(request, f"Repair of {name} started; the check runs again when it is done.")
    return redirect("consistency")


@operators_only
@require_POST
def revive_outbox(request):
    revived = revive_dead_letters()
    drain_legacy_outbox.delay()
    messages.success(request, f"{revived} dead letter(s) queued again for the legacy tables.")
    return redirect("consistency")


@operators_only
def cutover_readiness(request):
    state = cutover.readiness(check_now=False)
    return render(
        request,
        "dashboard/cutover.html",
        {
            "nav": "cutover",
            "state": state,
            "reads": [(t, state.reads.get(t, 0)) for t in cutover.LEGACY_TABLES],
        },
    )


@operators_only
@require_POST
def cutover_check(request):
    check_all_consistency.delay()
    messages.success(
        request,
        "Checking the whole history; this page shows the result when it is done "
        "(with a worker, reload in a minute).",
    )
    return redirect("cutover")


RANGE_CHOICES = [
    ("1h", "Last hour"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("custom", "Custom"),
]


def _page(request, template: str, nav: str, **context):
    """Render a page with what every page shows: the organisation, filters and their errors."""
    filters = context.setdefault("filters", parse_filters(request.GET))
    for error in filters.errors:
        messages.error(request, error)
    figures = {name: fig.to_plotly_json() for name, fig in context.pop("charts", {}).items()}
    return render(
        request,
        template,
        {
            "nav": nav,
            "org": request.org,
            "orgs": request.orgs,
            "figures": figures,
            "range_choices": RANGE_CHOICES,
            "dimension_names": DIMENSIONS,
            **context,
        },
    )


@org_required
def overview(request):
    f = parse_filters(request.GET)
    figures = metrics.Figures(request.org, f)
    now = metrics.totals(figures)
    before = metrics.totals(metrics.Figures(request.org, f.previous()))
    charts_ = {}
    if now.runs:
        series = metrics.run_series(figures)
        charts_ = {
            "cost": charts.cost_over_time(metrics.cost_by_model_series(figures)),
            "tokens": charts.tokens_over_time(series),
            "latency": charts.latency_over_time(metrics.latency_series(figures)),
            "errors": charts.error_rate_over_time(series),
        }
    return _page(
        request,
        "dashboard/overview.html",
        "overview",
        filters=f,
        now=now,
        before=before,
        p50=now.p(50),
        p95=now.p(95),
        runs_change=change(now.runs, before.runs),
        cost_change=change(now.cost, before.cost),
        p95_change=change(now.p(95), before.p(95)),
        source=figures.source,
        charts=charts_,
    )


@org_required
def cost(request):
    f = parse_filters(request.GET)
    figures = metrics.Figures(request.org, f)
    by = {name: metrics.breakdown(figures, name) for name in ("model", "provider", "workflow")}
    sources = metrics.breakdown(figures, "cost_source")
    people = selectors.cost_by_people(request.org, f, figures.source)
    charts_ = {}
    if by["model"]:
        charts_ = {
            "by_model": charts.breakdown_bars(by["model"], "model"),
            "by_workflow": charts.breakdown_bars(by["workflow"], "workflow"),
        }
    return _page(
        request,
        "dashboard/cost.html",
        "cost",
        filters=f,
        by=by,
        sources=sources,
        people=people,
        expensive=selectors.most_expensive_runs(request.org, f),
        source=figures.source,
        charts=charts_,
    )


@org_required
def latency(request):
    f = parse_filters(request.GET)
    figures = metrics.Figures(request.org, f)
    run_latency = metrics.totals(figures).latency
    by_model = metrics.latency_by(figures, "model", llm_only=True)
    by_kind = metrics.latency_by(figures, "kind")
    ttft = metrics.latency_by(figures, "model", "ttft_hist", llm_only=True)
    charts_ = {}
    if run_latency:
        charts_ = {
            "histogram": charts.latency_histogram(run_latency),
            "over_time": charts.latency_over_time(metrics.latency_series(figures)),
        }
    return _page(
        request,
        "dashboard/latency.html",
        "latency",
        filters=f,
        run_p=selectors.quantiles(run_latency),
        by_model=selectors.quantile_table(by_model),
        by_kind=selectors.quantile_table(by_kind),
        ttft=selectors.quantile_table(ttft),
        slowest_runs=selectors.slowest_runs(request.org, f),
        slowest_steps=selectors.slowest_steps(request.org, f),
        source=figures.source,
        charts=charts_,
    )


@org_required
def runs(request):
    f = parse_filters(request.GET)
    run_filters, errors = selectors.explorer_filters(f, request.GET)
    for error in errors:
        messages.error(request, error)
    page = selectors.runs_page(request.org, run_filters, request.GET.get("before"))
    return _page(
        request,
        "dashboard/runs.html",
        "runs",
        filters=f,
        page=page,
        extra={k: request.GET.get(k, "") for k in selectors.EXPLORER_FIELDS},
        statuses=["pending", "running", "completed", "failed", "cancelled"],
    )


@org_required
def run_detail(request, run_id):
    run = telemetry_selectors.get_run(request.org, run_id)
    if run is None:
        raise Http404("No run with this id in your organisation.")
    steps = list(run.steps.order_by("step_number"))
    start = run.started_at or min((s.started_at for s in steps if s.started_at), default=None)
    charts_ = (
        {"timeline": charts.step_timeline(steps, start)}
        if start and any(s.started_at for s in steps)
        else {}
    )
    legacy = {table: list(rows) for table, rows in telemetry_selectors.legacy_rows(run).items()}
    context_json = json.dumps(run.context, indent=2, ensure_ascii=False, sort_keys=True)
    return _page(
        request,
        "dashboard/run.html",
        "runs",
        run=run,
        steps=steps,
        legacy=legacy,
        context_json=context_json,
        events=telemetry_selectors.run_events(run),
        charts=charts_,
    )


def org_admins_only(view):
    """The organisation's admins (and operators) only; after `org_required`."""

    @org_required
    @wraps(view)
    def guarded(request, *args, **kwargs):
        admin = request.org.memberships.filter(user=request.user, role="admin").exists()
        if not (admin or request.user.is_staff):
            raise PermissionDenied("Webhooks are managed by the organisation's admins.")
        return view(request, *args, **kwargs)

    return guarded


@org_admins_only
def webhooks(request):
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        subscription = form.save(commit=False)
        subscription.org = request.org
        subscription.save()
        messages.success(request, f"Webhook added. Its signing secret: {subscription.secret}")
        return redirect("webhooks")
    return _page(
        request,
        "dashboard/webhooks.html",
        "webhooks",
        form=form,
        subscriptions=selectors.webhook_overview(request.org),
    )


@org_admins_only
@require_POST
def webhook_toggle(request, pk):
    subscription = WebhookSubscription.objects.filter(org=request.org, pk=pk).first()
    if subscription is None:
        raise Http404("No such webhook in your organisation.")
    subscription.active = not subscription.active
    subscription.save(update_fields=["active"])
    return redirect("webhooks")
