"""OpenTelemetry traces in: OTLP/HTTP export requests become run documents for the same
ingest path as the native API, so their tokens and cost are priced, rolled up, dual-written
and checked like any other run.

One trace is one run (`run_id` is the 16-byte trace id read as a UUID); each span is a step,
its parent kept in the step's metadata; span events are step events; an ERROR status or an
exception event is the step's error. GenAI attributes (current semantic conventions, the older
OpenLLMetry/OpenLIT names, and OpenInference's) become the step's LLM call. A span keeps the
step number it was first given, whatever order later exports arrive in.
"""

import base64
import gzip
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from telemetry import locks
from telemetry.ingest.writer import ingest_runs
from telemetry.models import ApiKey, Organization

# First name present wins.
MODEL = ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name")
PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
INPUT_TOKENS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
    "llm.usage.prompt_tokens",
)
OUTPUT_TOKENS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
    "llm.usage.completion_tokens",
)
CACHED_TOKENS = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "llm.token_count.prompt_details.cache_read",
)
REASONING_TOKENS = (
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.reasoning_tokens",
    "llm.token_count.completion_details.reasoning",
)
TOTAL_TOKENS = ("llm.usage.total_tokens", "llm.token_count.total")
TEMPERATURE = ("gen_ai.request.temperature", "llm.request.temperature")
CONVERSATION = ("gen_ai.conversation.id", "session.id")
USER = ("enduser.id", "user.id")
RESOURCE_CONTEXT = (
    "service.name",
    "service.version",
    "deployment.environment",
    "deployment.environment.name",
    "service.namespace",
)


class OtlpError(ValueError):
    """The body is not an OTLP export request."""


def _first(attrs: dict, names: tuple[str, ...]) -> Any:
    for name in names:
        if attrs.get(name) is not None:
            return attrs[name]
    return None


def _value(any_value) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(any_value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(any_value.bytes_value).decode()
    return getattr(any_value, kind) if kind else None


def _attributes(key_values) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in key_values}


def _time(nanos: int) -> str | None:
    if not nanos:
        return None
    return datetime.fromtimestamp(nanos / 1e9, UTC).isoformat().replace("+00:00", "Z")


def _hex_ids_to_base64(document: Any) -> Any:
    """OTLP/JSON writes trace and span ids in hex; protobuf's JSON mapping expects base64."""
    if isinstance(document, dict):
        out = {}
        for key, value in document.items():
            if key in ("traceId", "spanId", "parentSpanId") and isinstance(value, str) and value:
                try:
                    value = base64.b64encode(bytes.fromhex(value)).decode()
                except ValueError:
                    raise OtlpError(f"{key} {value[:40]!r} is not hex") from None
            out[key] = _hex_ids_to_base64(value)
        return out
    if isinstance(document, list):
        return [_hex_ids_to_base64(v) for v in document]
    return document


def parse_request(body: bytes, content_type: str, encoding: str, limit: int):
    if encoding == "gzip":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError):
            raise OtlpError("Content-Encoding is gzip but the body is not gzip data") from None
        if len(body) > limit:
            raise OtlpError(f"the decompressed body is over {limit:,} bytes")
    elif encoding not in ("", "identity"):
        raise OtlpError(f"Content-Encoding {encoding!r} is not supported; use gzip or none")
    request = ExportTraceServiceRequest()
    try:
        if content_type == "application/json":
            import orjson

            json_format.ParseDict(_hex_ids_to_base64(orjson.loads(body)), request)
        elif content_type == "application/x-protobuf":
            request.ParseFromString(body)
        else:
            raise OtlpError(
                f"Content-Type {content_type!r}: send application/x-protobuf or application/json"
            )
    except (DecodeError, json_format.ParseError, ValueError) as exc:
        if isinstance(exc, OtlpError):
            raise
        raise OtlpError(f"not an OTLP ExportTraceServiceRequest: {exc}") from None
    return request


@dataclass
class ExportResult:
    accepted_spans: int = 0
    rejected_spans: int = 0
    errors: list[str] = field(default_factory=list)

    def response(self) -> ExportTraceServiceResponse:
        response = ExportTraceServiceResponse()
        if self.rejected_spans:
            response.partial_success.rejected_spans = self.rejected_spans
            response.partial_success.error_message = "; ".join(self.errors[:5])
        return response


def _llm(attrs: dict) -> dict | None:
    model = _first(attrs, MODEL)
    if not model:
        return None
    llm: dict[str, Any] = {
        "provider": str(_first(attrs, PROVIDER) or "unknown"),
        "model": str(model),
    }
    prompt, completion = _first(attrs, INPUT_TOKENS), _first(attrs, OUTPUT_TOKENS)
    total = _first(attrs, TOTAL_TOKENS)
    if prompt is not None or completion is not None or total is not None:
        prompt = int(prompt or 0)
        completion = int(completion if completion is not None else max(int(total or 0) - prompt, 0))
        llm["usage"] = {
            "input_tokens": prompt,
            "output_tokens": completion,
            "input_tokens_details": {"cached_tokens": int(_first(attrs, CACHED_TOKENS) or 0)},
            "output_tokens_details": {
                "reasoning_tokens": int(_first(attrs, REASONING_TOKENS) or 0)
            },
        }
    temperature = _first(attrs, TEMPERATURE)
    if isinstance(temperature, int | float):
        llm["temperature"] = float(temperature)
    return llm


def _step(span, number: int, scope: str) -> dict:
    attrs = _attributes(span.attributes)
    events, error = [], None
    for event in span.events:
        data = _attributes(event.attributes)
        events.append(
            {"type": event.name or "event", "timestamp": _time(event.time_unix_nano), "data": data}
        )
        if event.name == "exception":
            error = {
                "message": str(data.get("exception.message") or data.get("exception.type")),
                "details": data,
            }
    failed = span.status.code == Status.STATUS_CODE_ERROR
    if failed and error is None:
        error = {"message": span.status.message or "span status ERROR"}
    llm = _llm(attrs)
    operation = attrs.get("gen_ai.operation.name")
    kind = "llm" if llm else ("tool" if operation == "execute_tool" else "other")
    step = {
        "step_number": number,
        "node_id": span.name[:200] or None,
        "name": span.name[:200] or None,
        "kind": kind,
        "status": "failed" if failed else "completed",
        "started_at": _time(span.start_time_unix_nano),
        "ended_at": _time(span.end_time_unix_nano),
        "events": [{k: v for k, v in e.items() if v is not None} for e in events],
        "metadata": {
            "otel": {
                "span_id": span.span_id.hex(),
                "parent_span_id": span.parent_span_id.hex() or None,
                "scope": scope,
            },
            "attributes": attrs,
        },
    }
    if error and (failed or llm is None):
        step["error"] = error
    if llm:
        step["llm"] = llm
    return {k: v for k, v in step.items() if v is not None}


def _assigned_numbers(run_ids: list[str]) -> dict[tuple[str, str], int]:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT run_id::text, metadata->'otel'->>'span_id', step_number "
            "FROM user_workflow_run_step WHERE run_id = ANY(%s::uuid[])",
            [run_ids],
        )
        return {(run, span): number for run, span, number in cur.fetchall() if span}


def export_traces(org: Organization, api_key: ApiKey | None, request) -> ExportResult:
    """Map an export request to runs and ingest them."""
    result = ExportResult()
    spans_by_run: dict[str, list] = {}
    resources: dict[str, dict] = {}
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                if len(span.trace_id) != 16 or len(span.span_id) != 8:
                    result.rejected_spans += 1
                    result.errors.append(
                        f"span {span.name!r}: trace_id must be 16 bytes and span_id 8 bytes"
                    )
                    continue
                run_id = str(uuid.UUID(bytes=span.trace_id))
                spans_by_run.setdefault(run_id, []).append((span, scope))
                resources.setdefault(run_id, resource)
    if not spans_by_run:
        return result
    run_ids = sorted(spans_by_run)
    with transaction.atomic():
        # Hold the runs while numbers are given out, so two exports of one trace agree.
        locks.lock_keys(locks.RUNS, (uuid.UUID(r) for r in run_ids))
        assigned = _assigned_numbers(run_ids)
        documents, span_counts = [], []
        for run_id in run_ids:
            spans = sorted(
                spans_by_run[run_id], key=lambda s: (s[0].start_time_unix_nano, s[0].span_id)
            )
            taken = [n for (run, _), n in assigned.items() if run == run_id]
            following = max(taken, default=0) + 1
            steps: list[dict] = []
            run: dict[str, Any] = {"run_id": run_id, "channel": "otel"}
            context = {k: resources[run_id][k] for k in RESOURCE_CONTEXT if k in resources[run_id]}
            if context:
                run["context"] = context
            for span, scope in spans:
                number = assigned.get((run_id, span.span_id.hex()))
                if number is None:
                    number = assigned[(run_id, span.span_id.hex())] = following
                    following += 1
                steps.append(_step(span, number, scope))
                attrs = _attributes(span.attributes)
                if _first(attrs, CONVERSATION):
                    run["conversation_id"] = str(_first(attrs, CONVERSATION))[:200]
                if _first(attrs, USER):
                    run["user_id"] = str(_first(attrs, USER))[:200]
                if not span.parent_span_id:  # the root span describes the whole run
                    run["workflow_id"] = span.name[:200]
                    run["started_at"] = _time(span.start_time_unix_nano)
                    run["ended_at"] = _time(span.end_time_unix_nano)
                    failed = span.status.code == Status.STATUS_CODE_ERROR
                    run["status"] = "failed" if failed else "completed"
                    if failed:
                        run["error"] = {"message": span.status.message or "root span failed"}
            run["steps"] = steps
            documents.append({k: v for k, v in run.items() if v is not None})
            span_counts.append(len(steps))
        for outcome, count in zip(ingest_runs(org, api_key, documents), span_counts, strict=True):
            if outcome.status == "rejected":
                result.rejected_spans += count
                first = outcome.errors[0] if outcome.errors else {}
                result.errors.append(
                    f"trace {outcome.run_id}: {first.get('field')}: {first.get('message')}"
                )
            else:
                result.accepted_spans += count
    return result
