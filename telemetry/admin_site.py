"""The Django admin is for operators, and they look across organisations."""

from functools import wraps

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig

from telemetry.scope import all_orgs, render_now


class OperatorsAdminSite(admin.AdminSite):
    site_header = "Lockstep operations"
    site_title = "Lockstep"
    index_title = "Runs, their legacy rows, organisations and keys"

    def admin_view(self, view, cacheable=False):
        """Each page of a staff user reads (and renders) across organisations (`all_orgs`)."""
        guarded = super().admin_view(view, cacheable)

        @wraps(guarded)
        def across_orgs(request, *args, **kwargs):
            if not self.has_permission(request):
                return guarded(request, *args, **kwargs)  # the login redirect
            with all_orgs():
                return render_now(guarded(request, *args, **kwargs))

        return across_orgs


class OperatorsAdminConfig(AdminConfig):
    default_site = "telemetry.admin_site.OperatorsAdminSite"
