"""POST /v1/traces: OpenTelemetry spans, sent by the real OTLP/HTTP exporter or as OTLP/JSON,
become runs with steps, tokens, cost and legacy rows."""

import gzip
import uuid

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from telemetry.models import LlmUsageLog, WorkflowRun, WorkflowRunStep

TRACE_HEX = "5b8efff798038103d269b633813fc60c"


def exporter_provider(url: str, key: str):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(
        resource=Resource.create(
            {
                "service.name": "support-bot",
                "service.version": "1.4.2",
                "deployment.environment": "prod",
            }
        )
    )
    exporter = OTLPSpanExporter(
        endpoint=f"{url}/v1/traces", headers={"Authorization": f"Bearer {key}"}
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # one export per span
    return provider


@pytest.mark.django_db(transaction=True)
def test_the_otlp_exporter_reports_a_traced_workflow(live_server, api_key):
    from opentelemetry.trace import Status, StatusCode

    provider = exporter_provider(live_server.url, api_key)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("support-triage") as root:
        root.set_attribute("enduser.id", "user-7")
        with tracer.start_as_current_span("chat gpt-4o") as chat:
            chat.set_attributes(
                {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.response.model": "gpt-4o-2024-08-06",
                    "gen_ai.usage.input_tokens": 1200,
                    "gen_ai.usage.output_tokens": 300,
                    "gen_ai.conversation.id": "conv-42",
                    "gen_ai.request.temperature": 0.2,
                }
            )
            chat.add_event("gen_ai.choice", {"index": 0})
        with tracer.start_as_current_span("lookup_invoice") as tool:
            tool.set_attribute("gen_ai.operation.name", "execute_tool")
            tool.record_exception(ValueError("invoice 7 not found"))
            tool.set_status(Status(StatusCode.ERROR, "tool failed"))
    trace_id = root.get_span_context().trace_id
    provider.shutdown()

    import httpx

    detail = httpx.get(
        f"{live_server.url}/api/v1/runs/{uuid.UUID(int=trace_id)}",
        headers={"Authorization": f"Bearer {api_key}"},
    ).json()
    assert detail["run"]["llm_tokens_used"] == 1500 and float(detail["run"]["cost_usd"]) > 0
    assert len(detail["steps"]) == 3
    assert len(detail["legacy"]["llm_usage_logs"]) == 1
    assert len(detail["legacy"]["workflow_steps"]) == 3

    run = WorkflowRun.objects.get(run_id=uuid.UUID(int=trace_id))
    assert (run.workflow_id, run.status, run.channel, run.user_id, run.conversation_id) == (
        "support-triage",
        "completed",
        "otel",
        "user-7",
        "conv-42",
    )
    assert run.context["service.name"] == "support-bot"
    steps = {s.name: s for s in WorkflowRunStep.objects.filter(run=run)}
    assert sorted(s.step_number for s in steps.values()) == [1, 2, 3]
    chat = steps["chat gpt-4o"]
    assert (chat.kind, chat.llm_provider, chat.llm_model) == ("llm", "openai", "gpt-4o-2024-08-06")
    assert (chat.input_tokens, chat.output_tokens, chat.total_tokens) == (1200, 300, 1500)
    assert chat.cost_source == "price_table" and chat.cost_usd > 0 and chat.temperature == 0.2
    assert chat.events[0]["type"] == "gen_ai.choice"
    root_step = steps["support-triage"]
    assert chat.metadata["otel"]["parent_span_id"] == root_step.metadata["otel"]["span_id"]
    tool = steps["lookup_invoice"]
    assert (tool.kind, tool.status, tool.error_message) == ("tool", "failed", "invoice 7 not found")
    assert run.llm_tokens_used == 1500 and run.cost_usd == chat.cost_usd
    log = LlmUsageLog.objects.get(run_id=run.run_id)
    assert (log.total_tokens, log.cost) == (1500, chat.cost_usd)


def json_export(*spans: dict, service: str = "rag-api") -> dict:
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": service}}]
                },
                "scopeSpans": [{"scope": {"name": "openllmetry"}, "spans": list(spans)}],
            }
        ]
    }


def span(span_id: str, name: str, parent: str = "", start: int = 1, end: int = 2, **attrs) -> dict:
    values = []
    for key, value in attrs.items():
        key = key.replace("__", ".")
        kind = "intValue" if isinstance(value, int) else "stringValue"
        values.append({"key": key, "value": {kind: str(value) if kind == "intValue" else value}})
    return {
        "traceId": TRACE_HEX,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "startTimeUnixNano": str(1736850600_000_000_000 + start * 1_000_000_000),
        "endTimeUnixNano": str(1736850600_000_000_000 + end * 1_000_000_000),
        "attributes": values,
        "status": {},
    }


def post_json(client, key, document, **headers):
    return client.post(
        "/v1/traces",
        orjson.dumps(document),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}", **headers},
    )


RUN_ID = uuid.UUID(TRACE_HEX)


def test_otlp_json_with_older_attribute_names(client, api_key):
    doc = json_export(
        span("eee19b7ec3c1b174", "rag", start=0, end=5),
        span(
            "eee19b7ec3c1b175",
            "openai.chat",
            parent="eee19b7ec3c1b174",
            start=1,
            end=3,
            gen_ai__system="openai",
            gen_ai__request__model="gpt-4o-mini",
            gen_ai__usage__prompt_tokens=400,
            gen_ai__usage__completion_tokens=50,
        ),
        span(
            "eee19b7ec3c1b176",
            "llm",
            parent="eee19b7ec3c1b174",
            start=3,
            end=4,
            llm__model_name="claude-sonnet-4-5",
            llm__provider="anthropic",
            llm__token_count__prompt=70,
            llm__token_count__completion=7,
        ),
    )
    response = post_json(client, api_key, doc)
    assert response.status_code == 200 and response.json() == {}
    run = WorkflowRun.objects.get(run_id=RUN_ID)
    assert run.workflow_id == "rag" and run.context == {"service.name": "rag-api"}
    assert run.duration_ms == 5000 and run.llm_tokens_used == 450 + 77
    models = set(run.steps.values_list("llm_model", flat=True))
    assert models == {None, "gpt-4o-mini", "claude-sonnet-4-5"}


def test_spans_across_exports_keep_their_step_numbers_and_replays_change_nothing(client, api_key):
    late_child = span("0000000000000002", "second", parent="0000000000000001", start=2, end=3)
    first_child = span("0000000000000003", "first", parent="0000000000000001", start=1, end=2)
    root = span("0000000000000001", "root", start=0, end=4)
    assert post_json(client, api_key, json_export(late_child)).status_code == 200
    numbers = dict(WorkflowRunStep.objects.values_list("name", "step_number"))
    assert numbers == {"second": 1}
    post_json(client, api_key, json_export(first_child, root))
    post_json(client, api_key, json_export(late_child, first_child, root))  # re-export
    numbers = dict(WorkflowRunStep.objects.values_list("name", "step_number"))
    assert numbers == {"second": 1, "root": 2, "first": 3}
    assert WorkflowRun.objects.get().status == "completed"


def test_protobuf_and_gzip_and_partial_success(client, api_key):
    from google.protobuf.json_format import ParseDict
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from telemetry.otlp import _hex_ids_to_base64

    good = span("00000000000000aa", "ok")
    request = ParseDict(_hex_ids_to_base64(json_export(good)), ExportTraceServiceRequest())
    bad = request.resource_spans[0].scope_spans[0].spans.add()
    bad.trace_id, bad.span_id, bad.name = b"short", b"12345678", "broken"
    response = client.post(
        "/v1/traces",
        gzip.compress(request.SerializeToString()),
        content_type="application/x-protobuf",
        headers={"Authorization": f"Bearer {api_key}", "Content-Encoding": "gzip"},
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-protobuf"
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert "trace_id must be 16 bytes" in answer.partial_success.error_message
    assert WorkflowRunStep.objects.get().name == "ok"


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"not protobuf", "application/x-protobuf", "not an OTLP"),
        (b"{", "application/json", "not an OTLP"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
            "application/json",
            "traceId 'zz' is not hex",
        ),
        (b"{}", "text/plain", "send application/x-protobuf or application/json"),
    ],
)
def test_bad_bodies_get_400(client, api_key, body, content_type, message):
    response = client.post(
        "/v1/traces",
        body,
        content_type=content_type,
        headers={"Authorization": f"Bearer {api_key}"},
    )
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_a_bad_key_gets_401(client, db):
    response = post_json(client, "lsk_x_y", json_export(span("0000000000000001", "a")))
    assert response.status_code == 401
