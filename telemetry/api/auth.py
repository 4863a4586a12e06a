"""Who is calling: an API key (bearer) or a logged-in member, and for which organisation. That
organisation is also the only one whose rows the request's transaction can see."""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling

from telemetry.models import ApiKey, Organization
from telemetry.scope import activate_org


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <api key>`. The key decides the organisation."""

    def authenticate(self, request):
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, raw_key = header.partition(" ")
        if scheme.lower() != "bearer" or not raw_key.strip():
            raise exceptions.AuthenticationFailed(
                "Authorization header must be 'Bearer <api key>'."
            )
        key = ApiKey.objects.find(raw_key.strip())
        if key is None:
            raise exceptions.AuthenticationFailed(
                "API key not recognised or revoked; create one with "
                "`python manage.py create_api_key <org-slug>`."
            )
        key.touch()
        request.org = key.org
        activate_org(key.org_id)
        return (None, key)

    def authenticate_header(self, request):
        return 'Bearer realm="lockstep"'


def request_org(request) -> Organization | None:
    """The organisation a request acts for: its API key's, or the logged-in member's."""
    org = getattr(request, "org", None)
    if org is not None:
        return org
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        membership = user.memberships.select_related("org").order_by("created_at").first()
        if membership is not None:
            request.org = membership.org
            activate_org(membership.org_id)
            return membership.org
    return None


class HasOrganization(permissions.BasePermission):
    message = "This endpoint needs an API key (Authorization: Bearer <api key>) or a login."

    def has_permission(self, request, view):
        return request_org(request) is not None


class ApiKeyOnly(permissions.BasePermission):
    message = "Ingest needs an API key: send 'Authorization: Bearer <api key>'."

    def has_permission(self, request, view):
        return isinstance(request.auth, ApiKey)


class IngestRateThrottle(throttling.SimpleRateThrottle):
    """Requests per API key, at the rate in LOCKSTEP_INGEST_RATE (read on every request)."""

    scope = "ingest"

    def get_rate(self):
        return settings.LOCKSTEP_INGEST_RATE

    def get_cache_key(self, request, view):
        if not isinstance(request.auth, ApiKey):
            return None
        return f"throttle_ingest_{request.auth.pk}"


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Shows the bearer API key in the OpenAPI schema, so the docs page can send it."""

    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from `python manage.py create_api_key <org-slug>`.",
        }
