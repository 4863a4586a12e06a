"""The HTTP API: thin views over `telemetry.ingest` and `telemetry.selectors`."""

import orjson
from django.conf import settings
from django.http import Http404, HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, pagination, status
from rest_framework.response import Response
from rest_framework.views import APIView

from telemetry import otlp, selectors
from telemetry.api.auth import ApiKeyAuthentication, ApiKeyOnly, IngestRateThrottle, request_org
from telemetry.api.serializers import (
    RunFiltersSerializer,
    RunSerializer,
    RunSummarySerializer,
    StepSerializer,
    legacy_serializer,
)
from telemetry.ingest.contract import IngestBatch
from telemetry.ingest.writer import ingest_runs


def _error(http_status: int, message: str) -> Response:
    return Response({"error": message}, status=http_status)


class IngestView(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [ApiKeyOnly]
    throttle_classes = [IngestRateThrottle]

    @extend_schema(
        request=IngestBatch,
        responses={
            200: OpenApiResponse(description="Every run was accepted."),
            207: OpenApiResponse(description="Some runs were rejected; see their errors."),
            400: OpenApiResponse(description="The body is not a batch of runs."),
            401: OpenApiResponse(description="Missing or unknown API key."),
            413: OpenApiResponse(description="The body is over the size limit."),
            429: OpenApiResponse(description="Too many requests for this key."),
            503: OpenApiResponse(description="The database failed; nothing was stored."),
        },
        summary="Ingest a batch of runs (full or partial), dual-written in one transaction",
    )
    def post(self, request):
        try:
            batch = orjson.loads(request.body)
        except orjson.JSONDecodeError as exc:
            return _error(status.HTTP_400_BAD_REQUEST, f"Body is not valid JSON: {exc}.")
        runs = batch.get("runs") if isinstance(batch, dict) else None
        if not isinstance(runs, list):
            return _error(
                status.HTTP_400_BAD_REQUEST,
                'Body must be a JSON object {"runs": [RunDoc, ...]}; see /api/docs/.',
            )
        extra = set(batch) - {"runs"}
        if extra:
            return _error(
                status.HTTP_400_BAD_REQUEST,
                f"Unknown top-level field(s) {', '.join(sorted(extra))}; only 'runs' is allowed.",
            )
        if not runs:
            return _error(status.HTTP_400_BAD_REQUEST, "'runs' is empty; send at least one run.")
        limit = settings.LOCKSTEP_MAX_RUNS_PER_BATCH
        if len(runs) > limit:
            return _error(
                status.HTTP_400_BAD_REQUEST,
                f"{len(runs):,} runs in one request; send at most {limit:,} per request.",
            )
        results = ingest_runs(request.org, request.auth, runs)
        rejected = sum(1 for r in results if r.status == "rejected")
        return Response(
            {
                "accepted": len(results) - rejected,
                "rejected": rejected,
                "results": [r.as_dict() for r in results],
            },
            status=status.HTTP_207_MULTI_STATUS if rejected else status.HTTP_200_OK,
        )


class RunPagination(pagination.CursorPagination):
    ordering = ("-created_at", "-run_id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class RunListView(generics.ListAPIView):
    serializer_class = RunSummarySerializer
    pagination_class = RunPagination

    @extend_schema(parameters=[RunFiltersSerializer], summary="List runs, newest first")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = RunFiltersSerializer(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.filter_runs(request_org(self.request), filters.to_filters())


class RunDetailView(APIView):
    @extend_schema(
        summary="One run: its steps and the legacy rows written for it",
        responses={200: OpenApiResponse(description="run, steps and legacy rows")},
    )
    def get(self, request, run_id):
        run = selectors.get_run(request_org(request), run_id)
        if run is None:
            raise Http404("No run with this run_id in your organisation.")
        legacy = {
            table: legacy_serializer(rows.model)(rows, many=True).data
            for table, rows in selectors.legacy_rows(run).items()
        }
        return Response(
            {
                "run": RunSerializer(run).data,
                "steps": StepSerializer(run.steps.order_by("step_number"), many=True).data,
                "legacy": legacy,
            }
        )


class OtlpTracesView(APIView):
    """OTLP/HTTP trace export (protobuf or JSON, optionally gzip), with the same API key."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [ApiKeyOnly]
    throttle_classes = [IngestRateThrottle]

    @extend_schema(
        summary="OpenTelemetry OTLP/HTTP traces: spans with GenAI attributes become runs",
        request={"application/x-protobuf": bytes, "application/json": dict},
        responses={200: OpenApiResponse(description="ExportTraceServiceResponse")},
    )
    def post(self, request):
        content_type = request.content_type.split(";")[0].strip()
        try:
            export = otlp.parse_request(
                request.body,
                content_type,
                request.headers.get("Content-Encoding", "").lower(),
                settings.LOCKSTEP_MAX_BODY_BYTES,
            )
        except otlp.OtlpError as exc:
            return _error(status.HTTP_400_BAD_REQUEST, f"OTLP: {exc}.")
        response = otlp.export_traces(request.org, request.auth, export).response()
        if content_type == "application/json":
            from google.protobuf.json_format import MessageToDict

            return HttpResponse(
                orjson.dumps(MessageToDict(response)), content_type="application/json"
            )
        return HttpResponse(response.SerializeToString(), content_type="application/x-protobuf")
