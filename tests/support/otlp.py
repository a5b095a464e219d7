"""OTLP payloads for the tests: OTLP/JSON written as the spec shows it, and spans recorded by the
OpenTelemetry SDK and encoded by the OTLP exporter's own encoder (the bytes
``opentelemetry-exporter-otlp-proto-http`` sends)."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

TRACE = "5b8efff798038103d269b633813fc60c"
EMAIL = "marguerite.oyelaran@example.org"


def _value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [_value(x) for x in v]}}
    if isinstance(v, dict):
        return {"kvlistValue": {"values": [{"key": k, "value": _value(x)} for k, x in v.items()]}}
    return {"stringValue": v}


def _attrs(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in d.items()]


def otlp_json(spans: list[dict[str, Any]], resource: dict[str, Any] | None = None) -> bytes:
    """An OTLP/JSON ExportTraceServiceRequest with one resource and scope."""
    res = {"service.name": "support-bot", "service.version": "1.4.2", "warden.tenant": "acme", **(resource or {})}
    res = {k: v for k, v in res.items() if v is not None}
    return json.dumps({"resourceSpans": [{"resource": {"attributes": _attrs(res)},
                                          "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}]}]}).encode()


def span(span_id: str, attrs: dict[str, Any], *, events: list[tuple[str, dict[str, Any]]] = (),  # type: ignore[assignment]
         status: dict[str, Any] | None = None, parent: str = "", name: str = "chat gpt-4o") -> dict[str, Any]:
    return {"traceId": TRACE.upper(), "spanId": span_id, "parentSpanId": parent, "name": name, "kind": 3,
            "startTimeUnixNano": "1764158400000000000", "endTimeUnixNano": 1764158401250000000,
            "attributes": _attrs(attrs), "events": [{"timeUnixNano": "1764158400500000000", "name": n,
                                                     "attributes": _attrs(a)} for n, a in events],
            "status": status or {}}


GENAI = {
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.usage.input_tokens": 97, "gen_ai.usage.output_tokens": 52,
    "gen_ai.response.finish_reasons": ["stop"],
    "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "You are a support agent."}]),
    "gen_ai.input.messages": json.dumps([
        {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
        {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_1", "name": "get_weather",
                                         "arguments": {"location": "Paris"}}]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "result": "rainy, 57°F"}]}]),
    "gen_ai.output.messages": json.dumps([{"role": "assistant", "finish_reason": "stop", "parts": [
        {"type": "text", "content": f"Rainy. Write to {EMAIL} for refunds."}]}]),
}


def sdk_spans() -> tuple[bytes, list[Any]]:
    """Spans recorded by the OpenTelemetry SDK, encoded by the OTLP exporter's encoder."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot", "service.version": "2",
                                                        "warden.tenant": "acme"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("warden-test")
    with tracer.start_as_current_span("invoke_agent helper", attributes={"gen_ai.operation.name": "invoke_agent"}):
        with tracer.start_as_current_span("chat gpt-4o", attributes=GENAI) as s:
            s.set_status(Status(StatusCode.ERROR, "boom"))
        with tracer.start_as_current_span("execute_tool crm", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "crm",
                "gen_ai.tool.call.result": f"owner: {EMAIL}"}):
            pass
    provider.shutdown()
    finished = list(exporter.get_finished_spans())
    return encode_spans(finished).SerializeToString(), finished
