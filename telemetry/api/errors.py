"""Every API error is one JSON object: `{"error": "<what is wrong and how to fix it>"}`."""

import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

log = logging.getLogger(__name__)


def exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        limit = settings.LOCKSTEP_MAX_BODY_BYTES
        return Response(
            {"error": f"Body is over {limit:,} bytes; send less per request."},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    if isinstance(exc, DatabaseError):
        # Writes run in one transaction, so a failed one has stored nothing.
        log.exception("request failed in the database; its transaction was rolled back")
        return Response(
            {
                "error": "The database did not take this request; nothing from it was stored. "
                "Retry it."
            },
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
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
