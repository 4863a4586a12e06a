"""Which organisation a page shows: the member's own; a superuser may switch to any."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect

from telemetry.models import Organization
from telemetry.scope import activate_org

SESSION_KEY = "lockstep_org"


def organisations_of(user) -> list[Organization]:
    if user.is_superuser:
        return list(Organization.objects.order_by("name"))
    return list(Organization.objects.filter(memberships__user=user).order_by("name"))


def org_required(view):
    """Log in, then set `request.org` (and `request.orgs`, the ones the user may switch to).
    `?org=<slug>` switches among them and is remembered for the session."""

    @login_required
    @wraps(view)
    def scoped(request, *args, **kwargs):
        orgs = organisations_of(request.user)
        if not orgs and request.user.is_staff:
            return redirect("consistency")  # an operator of no organisation
        if not orgs:
            raise PermissionDenied(
                "Your login belongs to no organisation yet; ask an operator to add you."
            )
        by_slug = {o.slug: o for o in orgs}
        wanted = request.GET.get("org") or request.session.get(SESSION_KEY)
        request.org = by_slug.get(wanted, orgs[0])
        request.orgs = orgs
        request.session[SESSION_KEY] = request.org.slug
        activate_org(request.org.id)  # the only organisation the database shows this request
        return view(request, *args, **kwargs)

    return scoped
