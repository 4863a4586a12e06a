"""Every API error is one JSON object: `{"error": "<what is wrong and how to fix it>"}`."""

from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(exc, exceptions.NotAuthenticated):
        response.data = {
            "error": "This endpoint needs an API key: send 'Authorization: Bearer <api key>' "
            "(create one with `python manage.py create_api_key <org-slug>`)."
        }
    elif isinstance(exc, exceptions.Throttled):
        message = f"Too many requests for this API key; retry in {exc.wait:.0f} s."
        response.data = {"error": message}
    elif isinstance(data, dict) and set(data) == {"detail"}:
        response.data = {"error": str(data["detail"])}
    elif isinstance(exc, exceptions.ValidationError):
        response.data = {"error": "Invalid query parameters.", "fields": data}
    return response
