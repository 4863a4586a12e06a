"""Glue: parse input, call selectors and services, build charts, render."""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from dashboard import charts, selectors
from telemetry.consistency.checks import BY_NAME
from telemetry.consistency.runner import offender_ids, run_checks
from telemetry.outbox import revive_dead_letters
from telemetry.tasks import drain_legacy_outbox, repair_consistency_check


def operators_only(view):
    """Checks read every organisation's rows: these pages are for operators (staff) only."""

    @login_required
    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not request.user.is_staff:
            raise PermissionDenied("The consistency pages are for operators (staff users).")
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
            "figure": figure.to_plotly_json() if figure else None,
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
