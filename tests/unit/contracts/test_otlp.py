"""OTLP trace exports → spans → inference events, for each convention the mapping reads.

Spans are made three ways: OTLP/JSON written as the spec shows it, protobuf built with the
``opentelemetry-proto`` classes, and spans recorded by the OpenTelemetry SDK and encoded by the OTLP
exporter's own encoder (the bytes ``opentelemetry-exporter-otlp-proto-http`` sends)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict

from contracts.events import InferenceEvent
from contracts.otlp import OtlpDecodeError, decode_json, decode_protobuf, map_span, map_spans
from contracts.otlp.mapping import span_kind
from tests.support.otlp import EMAIL, GENAI, TRACE, otlp_json, sdk_spans, span


def _one(payload: bytes, key_tenants: tuple[str, ...] | None = None) -> dict[str, Any]:
    (out,) = map_spans(decode_json(payload), key_tenants)
    assert out.event is not None, out
    InferenceEvent.model_validate(out.event)  # every mapped event is a valid schema-1 event
    return out.event


def test_genai_chat_span_becomes_an_inference_event() -> None:
    ev = _one(otlp_json([span("051581bf3cb55c13", GENAI, parent="00f067aa0ba902b7")]))
    assert ev["event_id"] == f"otel-{TRACE}-051581bf3cb55c13"
    assert (ev["tenant"], ev["model"]) == ("acme", {"name": "support-bot", "version": "1.4.2"})
    assert ev["occurred_at"].startswith("2025-11-26T12:00:00")
    body = ev["inference"]
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "tool"]
    assert body["messages"][2]["content"] == 'get_weather({"location":"Paris"})'
    assert body["messages"][3]["content"] == "rainy, 57°F"  # the tool's answer is scanned like the prompt
    assert body["response"] == {"content": f"Rainy. Write to {EMAIL} for refunds.", "finish_reason": "stop"}
    assert body["usage"] == {"input_tokens": 97, "output_tokens": 52}
    assert body["latency_ms"] == pytest.approx(1250.0)
    assert (body["request_model"], body["response_model"]) == ("gpt-4o", "gpt-4o-2024-08-06")
    assert body["trace"] == {"trace_id": TRACE, "span_id": "051581bf3cb55c13", "parent_span_id": "00f067aa0ba902b7",
                             "kind": "llm"}
    assert body["attributes"]["gen_ai.provider.name"] == "openai" and "status" not in body
    # a re-sent export maps to the same event (ids derived from trace and span ids)
    assert _one(otlp_json([span("051581bf3cb55c13", GENAI)]))["event_id"] == ev["event_id"]


def test_structured_attributes_read_like_json_strings() -> None:
    structured = {**GENAI, "gen_ai.input.messages": json.loads(GENAI["gen_ai.input.messages"]),
                  "gen_ai.output.messages": json.loads(GENAI["gen_ai.output.messages"])}
    a = _one(otlp_json([span("051581bf3cb55c13", GENAI)]))["inference"]
    b = _one(otlp_json([span("051581bf3cb55c13", structured)]))["inference"]
    assert a["messages"][1:] == b["messages"][1:] and a["response"] == b["response"]


def test_event_based_genai_forms() -> None:
    base = {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4"}
    v136 = span("1111111111111111", base, events=[
        ("gen_ai.system.message", {"content": "Be brief."}),
        ("gen_ai.user.message", {"content": f"I am {EMAIL}"}),
        ("gen_ai.choice", {"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "Hi"}})])
    older = span("2222222222222222", base, events=[
        ("gen_ai.content.prompt", {"gen_ai.prompt": json.dumps([{"role": "user", "content": "Ping?"}])}),
        ("gen_ai.content.completion", {"gen_ai.completion": "Pong."})])
    kernel = span("3333333333333333", base, events=[
        ("gen_ai.user.message", {"gen_ai.event.content": json.dumps({"role": "user", "content": "SK prompt"})}),
        ("gen_ai.choice", {"gen_ai.event.content": json.dumps(
            {"index": 0, "message": {"role": "assistant", "content": "SK answer"}, "finish_reason": "stop"})})])
    outs = [o.event for o in map_spans(decode_json(otlp_json([v136, older, kernel])))]
    assert all(o is not None for o in outs)
    a, b, c = (o["inference"] for o in outs if o is not None)
    assert a["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"I am {EMAIL}"}]
    assert a["response"] == {"content": "Hi", "finish_reason": "length"}
    assert b["messages"] == [{"role": "user", "content": "Ping?"}] and b["response"]["content"] == "Pong."
    assert c["messages"] == [{"role": "user", "content": "SK prompt"}]
    assert c["response"] == {"content": "SK answer", "finish_reason": "stop"}


def test_openllmetry_flattened_attributes() -> None:
    attrs = {"llm.request.type": "chat", "gen_ai.system": "OpenAI", "gen_ai.request.model": "gpt-3.5-turbo",
             "gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": "Be nice.",
             "gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": "Tell me a joke",
             "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "Knock knock.",
             "gen_ai.completion.0.finish_reason": "stop", "gen_ai.usage.prompt_tokens": 15,
             "gen_ai.usage.completion_tokens": 4, "llm.usage.total_tokens": 19}
    body = _one(otlp_json([span("4444444444444444", attrs)]))["inference"]
    assert body["messages"] == [{"role": "system", "content": "Be nice."}, {"role": "user", "content": "Tell me a joke"}]
    assert body["response"] == {"content": "Knock knock.", "finish_reason": "stop"}
    assert body["usage"] == {"input_tokens": 15, "output_tokens": 4, "total_tokens": 19}


def test_openinference_llm_span() -> None:
    attrs = {"openinference.span.kind": "LLM", "llm.model_name": "claude-sonnet", "llm.provider": "anthropic",
             "llm.input_messages.0.message.role": "system", "llm.input_messages.0.message.content": "Be terse.",
             "llm.input_messages.1.message.role": "user",
             "llm.input_messages.1.message.contents.0.message_content.type": "text",
             "llm.input_messages.1.message.contents.0.message_content.text": f"Mail {EMAIL}",
             "llm.input_messages.1.message.contents.1.message_content.type": "image",
             "llm.output_messages.0.message.role": "assistant",
             "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "send_mail",
             "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"to": "x"}',
             "llm.token_count.prompt": 10, "llm.token_count.completion": 3, "llm.token_count.total": 13,
             "llm.finish_reason": "tool_calls", "llm.cost.total": 0.0021, "input.value": "ignored: messages win"}
    ev = _one(otlp_json([span("5555555555555555", attrs)], resource={"service.name": "unknown_service:python",
                                                                       "service.version": None}))
    body = ev["inference"]
    assert ev["model"]["name"] == "claude-sonnet"  # the SDK's placeholder service name names no application
    assert body["messages"] == [{"role": "system", "content": "Be terse."}, {"role": "user", "content": f"Mail {EMAIL}"}]
    assert body["response"] == {"content": 'send_mail({"to": "x"})', "finish_reason": "tool_calls"}
    assert body["usage"] == {"input_tokens": 10, "output_tokens": 3, "total_tokens": 13}
    assert body["cost_usd"] == pytest.approx(0.0021)
    plain = _one(otlp_json([span("6666666666666666", {"openinference.span.kind": "LLM", "input.value": "Hi there",
                                                       "output.value": "Hello!"})]))["inference"]
    assert plain["messages"] == [{"role": "user", "content": "Hi there"}] and plain["response"]["content"] == "Hello!"
    chat = _one(otlp_json([span("6666666666666667", {"openinference.span.kind": "LLM", "input.mime_type": "application/json",
                                                      "input.value": json.dumps({"messages": [{"role": "user", "content": "Q"}]})})]))
    assert chat["inference"]["messages"] == [{"role": "user", "content": "Q"}]


def test_tool_and_retrieval_steps_are_scanned_like_prompts() -> None:
    tool = span("7777777777777777", {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "crm_lookup",
                                     "gen_ai.tool.call.arguments": json.dumps({"customer": 42}),
                                     "gen_ai.tool.call.result": json.dumps({"email": EMAIL})},
                parent="051581bf3cb55c13", name="execute_tool crm_lookup")
    oi_tool = span("7777777777777778", {"openinference.span.kind": "TOOL", "tool.name": "search",
                                        "output.value": "Result: call 415-555-0134"})
    retriever = span("8888888888888888", {"openinference.span.kind": "RETRIEVER",
                                          "retrieval.documents.0.document.content": "doc one",
                                          "retrieval.documents.1.document.content": f"contact {EMAIL}"})
    silent = span("9999999999999999", {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "noop"})
    outs = map_spans(decode_json(otlp_json([tool, oi_tool, retriever, silent])))
    assert [o.kind for o in outs] == ["tool", "tool", "retrieval", "tool"]
    t, o, r = (x.event["inference"] for x in outs[:3] if x.event is not None)
    assert t["messages"] == [{"role": "assistant", "content": 'crm_lookup({"customer":42})'},
                             {"role": "tool", "content": json.dumps({"email": EMAIL}, separators=(",", ":"))}]
    assert t["trace"]["kind"] == "tool" and t["trace"]["parent_span_id"] == "051581bf3cb55c13"
    assert o["messages"] == [{"role": "tool", "content": "Result: call 415-555-0134"}]
    assert [m["content"] for m in r["messages"]] == ["doc one", f"contact {EMAIL}"]
    assert outs[3].event is None and outs[3].rejected is None  # no recorded output: counted only
    for x in outs[:3]:
        assert x.event is not None
        InferenceEvent.model_validate(x.event)


def test_spans_that_are_not_llm_calls_are_not_stored() -> None:
    kinds = {"GET /orders": ({"http.request.method": "GET"}, "other"),
             "invoke_agent": ({"gen_ai.operation.name": "invoke_agent"}, "agent"),
             "chain": ({"openinference.span.kind": "CHAIN"}, "agent"),
             "embeddings": ({"gen_ai.operation.name": "embeddings", "gen_ai.request.model": "e5"}, "embedding")}
    for name, (attrs, kind) in kinds.items():
        (out,) = map_spans(decode_json(otlp_json([span("aaaaaaaaaaaaaaaa", attrs, name=name)])))
        assert (out.kind, out.event, out.rejected) == (kind, None, None), name
    assert span_kind({"gen_ai.system": "openai"}) == "llm"  # GenAI spans before gen_ai.operation.name


def test_errors_come_from_span_status_error_type_or_exception() -> None:
    base = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}
    cases = [(span("b000000000000001", base, status={"code": 2, "message": "upstream timeout"}), "upstream timeout"),
             (span("b000000000000002", {**base, "error.type": "RateLimitError"}), "RateLimitError"),
             (span("b000000000000003", base, status={"code": 2},
                   events=[("exception", {"exception.type": "openai.APITimeoutError"})]), "openai.APITimeoutError"),
             (span("b000000000000004", base, status={"code": 1}), None)]
    for s, error in cases:
        body = _one(otlp_json([s]))["inference"]
        assert body.get("error") == error and body.get("status", "ok") == ("error" if error else "ok")


def test_a_call_without_recorded_content_still_counts() -> None:
    body = _one(otlp_json([span("c000000000000001", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
                                                      "gen_ai.usage.input_tokens": 5})]))["inference"]
    assert body["messages"] == [{"role": "user", "content": ""}] and body["usage"] == {"input_tokens": 5}
    assert "response" not in body


def test_tenant_and_model_resolution() -> None:
    s = span("d000000000000001", GENAI)
    no_tenant = otlp_json([s], resource={"warden.tenant": None})
    (out,) = map_spans(decode_json(no_tenant))
    assert out.event is None and out.rejected is not None and "warden.tenant" in out.rejected
    assert _one(no_tenant, ("globex",))["tenant"] == "globex"  # the key's only tenant
    assert _one(otlp_json([s], resource={"warden.tenant": None, "service.namespace": "shop"}), ("a", "b"))["tenant"] == "shop"
    per_span = span("d000000000000002", {**GENAI, "warden.tenant": "initech", "warden.model": "triage",
                                         "warden.model.version": "7"})
    ev = _one(otlp_json([per_span]))
    assert (ev["tenant"], ev["model"]) == ("initech", {"name": "triage", "version": "7"})
    bare = _one(otlp_json([s], resource={"service.name": None, "service.version": None}))
    assert bare["model"] == {"name": "gpt-4o", "version": "gpt-4o-2024-08-06"}
    user = _one(otlp_json([span("d000000000000003", {**GENAI, "enduser.id": "u-7", "warden.user.age_band": "65+"})]))
    assert user["inference"]["user"] == {"id": "u-7", "attributes": {"age_band": "65+"}}


def test_spans_with_bad_ids_or_times_are_rejected_alone() -> None:
    good = span("e000000000000001", GENAI)
    bad_id = {**span("e000000000000002", GENAI), "traceId": "00000000000000000000000000000000"}
    short = {**span("e000000000000003", GENAI), "spanId": "abcd"}
    no_start = {**span("e000000000000004", GENAI), "startTimeUnixNano": "0"}
    outs = map_spans(decode_json(otlp_json([good, bad_id, short, no_start])))
    assert outs[0].event is not None
    assert [o.rejected is not None for o in outs] == [False, True, True, True]


@pytest.mark.parametrize("payload", [
    b"{not json", b"[]", b'{"resourceSpans": {}}', b'{"resourceSpans": [{"scopeSpans": [{"spans": [1]}]}]}',
    b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}',
    b'{"resourceSpans": [{"resource": {"attributes": [{"value": {"stringValue": "x"}}]}}]}',
    b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": [{"key": "a", "value": {"doubleValue": "x"}}]}]}]}]}',
    b"\xff\xfe",
])
def test_malformed_json_raises_a_decode_error(payload: bytes) -> None:
    with pytest.raises(OtlpDecodeError):
        decode_json(payload)


def test_malformed_protobuf_raises_a_decode_error() -> None:
    with pytest.raises(OtlpDecodeError):
        decode_protobuf(b"\x0a\xff\xff\xff\xff\x0f garbage")
    assert decode_protobuf(b"") == [] and decode_json(b"{}") == []  # an empty export is a success


def test_sdk_spans_through_the_exporter_encoder() -> None:
    raw, finished = sdk_spans()
    outs = map_spans(decode_protobuf(raw))
    by_kind = {o.kind: o for o in outs}
    assert sorted(by_kind) == ["agent", "llm", "tool"]
    agent = next(s for s in finished if s.name == "invoke_agent helper")
    chat = next(s for s in finished if s.name == "chat gpt-4o")
    llm = by_kind["llm"].event
    assert llm is not None and llm["inference"]["status"] == "error" and llm["inference"]["error"] == "boom"
    assert llm["inference"]["trace"] == {"trace_id": f"{chat.context.trace_id:032x}",
                                         "span_id": f"{chat.context.span_id:016x}",
                                         "parent_span_id": f"{agent.context.span_id:016x}", "kind": "llm"}
    assert by_kind["tool"].event is not None and EMAIL in by_kind["tool"].event["inference"]["messages"][0]["content"]
    assert llm["inference"]["latency_ms"] == pytest.approx((chat.end_time - chat.start_time) / 1e6)


def test_protobuf_and_json_encodings_decode_to_the_same_spans() -> None:
    raw, _ = sdk_spans()
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    doc = MessageToDict(ExportTraceServiceRequest.FromString(raw), use_integers_for_enums=True)
    spec_json = json.loads(json.dumps(doc))  # the proto3 mapping writes ids in base64: OTLP/JSON wants hex
    for rs in spec_json["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                for k in ("traceId", "spanId", "parentSpanId"):
                    if k in s:
                        s[k] = base64.b64decode(s[k]).hex()
    from_pb = decode_protobuf(raw)
    assert decode_json(json.dumps(spec_json).encode()) == from_pb
    assert decode_json(json.dumps(doc).encode()) == from_pb  # base64 ids (plain proto3 JSON) are accepted too
    assert [map_span(s).event for s in from_pb] == [map_span(s).event for s in decode_json(json.dumps(spec_json).encode())]
