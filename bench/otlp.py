"""Overhead of the OTLP trace receiver: spans/s per core of POST /v1/traces' CPU path.

    python -m bench.otlp [--spans 512] [--requests 8] [--repeats 7]

The receiver's work per export — decode the ``ExportTraceServiceRequest`` (protobuf or OTLP/JSON), map every
span, validate each mapped event and serialise it for Kafka (``api.routes.otlp._prepare``) — is timed on
exports of ``--spans`` GenAI chat spans (the OTel SDK's default batch is 512), one thread, so the figure is per
core. The baseline, measured in the same run on the same content, is what ``POST /v1/events`` does per event:
``decode_event`` of the equivalent Warden envelope (JSON). The texts are the PII benchmark's chat texts
(bench/data/pii_labelled.jsonl, 100–1,000 characters). Kafka and HTTP are left out of both sides.
Rounds of the three paths are interleaved; medians of ``--repeats`` rounds, the ratios (medians of
per-round ratios) come last.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from api.routes.otlp import JSON, PROTOBUF, _prepare
from bench.throughput import chat_texts
from contracts.otlp import decode_protobuf, map_spans
from streams.codec import decode_event

MAX_EVENT_BYTES = 1024 * 1024


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def build_export(texts: list[str], n: int, offset: int) -> ExportTraceServiceRequest:
    """One export of ``n`` GenAI chat spans (prompt and answer from ``texts``), as an SDK with content capture sends."""
    spans = []
    for i in range(n):
        prompt, answer = texts[(offset + i) % len(texts)], texts[(offset + i + 1) % len(texts)]
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
                 "gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.usage.input_tokens": len(prompt) // 4,
                 "gen_ai.usage.output_tokens": len(answer) // 4, "gen_ai.response.finish_reasons": "stop",
                 "gen_ai.input.messages": json.dumps([
                     {"role": "system", "parts": [{"type": "text", "content": "You are a support agent."}]},
                     {"role": "user", "parts": [{"type": "text", "content": prompt}]}]),
                 "gen_ai.output.messages": json.dumps([{"role": "assistant", "finish_reason": "stop",
                                                        "parts": [{"type": "text", "content": answer}]}])}
        start = 1_764_158_400_000_000_000 + (offset + i) * 1_000_000
        spans.append(Span(trace_id=(offset + i + 1).to_bytes(16, "big"), span_id=(offset + i + 1).to_bytes(8, "big"),
                          parent_span_id=(7).to_bytes(8, "big"), name="chat gpt-4o", kind=Span.SPAN_KIND_CLIENT,
                          start_time_unix_nano=start, end_time_unix_nano=start + 850_000_000,
                          attributes=[_kv(k, v) for k, v in attrs.items()], status=Status(code=Status.STATUS_CODE_OK)))
    resource = {"service.name": "support-bot", "service.version": "1.4.2", "warden.tenant": "acme"}
    rs = ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])
    rs.resource.attributes.extend(_kv(k, v) for k, v in resource.items())
    return ExportTraceServiceRequest(resource_spans=[rs])


def otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """The OTLP/JSON encoding (lowerCamelCase keys, hex ids, integer enums, 64-bit integers as strings)."""
    def value(v: AnyValue) -> dict[str, object]:
        which = v.WhichOneof("value")
        return {"stringValue": v.string_value} if which == "string_value" else \
            {"intValue": str(v.int_value)} if which == "int_value" else {"boolValue": v.bool_value}

    def attrs(kvs: object) -> list[dict[str, object]]:
        return [{"key": kv.key, "value": value(kv.value)} for kv in kvs]  # type: ignore[attr-defined]

    doc = {"resourceSpans": [{
        "resource": {"attributes": attrs(rs.resource.attributes)},
        "scopeSpans": [{"spans": [{
            "traceId": s.trace_id.hex(), "spanId": s.span_id.hex(), "parentSpanId": s.parent_span_id.hex(),
            "name": s.name, "kind": s.kind, "startTimeUnixNano": str(s.start_time_unix_nano),
            "endTimeUnixNano": str(s.end_time_unix_nano), "attributes": attrs(s.attributes),
            "status": {"code": s.status.code}} for s in ss.spans]} for ss in rs.scope_spans]}
        for rs in request.resource_spans]}
    return json.dumps(doc).encode()


def _rate(fn: Callable[[], int]) -> float:
    started = time.perf_counter()
    n = fn()
    return n / (time.perf_counter() - started)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spans", type=int, default=512, help="spans per export")
    p.add_argument("--requests", type=int, default=8, help="exports per timed round")
    p.add_argument("--repeats", type=int, default=7)
    a = p.parse_args()
    texts = chat_texts()
    exports = [build_export(texts, a.spans, r * a.spans) for r in range(a.requests)]
    pb = [e.SerializeToString() for e in exports]
    js = [otlp_json(e) for e in exports]
    envelopes = [json.dumps(o.event).encode() for raw in pb for o in map_spans(decode_protobuf(raw), None) if o.event]
    total = a.spans * a.requests
    assert len(envelopes) == total
    for raw, media in ((pb[0], PROTOBUF), (js[0], JSON)):  # both encodings map every span
        outcomes, messages, rejected = _prepare(raw, media, None, MAX_EVENT_BYTES)
        assert len(messages) == a.spans and not rejected

    def receiver(bodies: list[bytes], media: str) -> Callable[[], int]:
        return lambda: sum(len(_prepare(b, media, None, MAX_EVENT_BYTES)[1]) for b in bodies)

    def baseline() -> int:
        return sum(1 for e in envelopes if not hasattr(decode_event(e, MAX_EVENT_BYTES), "code"))

    for fn in (receiver(pb, PROTOBUF), receiver(js, JSON), baseline):  # warm-up
        fn()
    paths = {"baseline": baseline, "protobuf": receiver(pb, PROTOBUF), "json": receiver(js, JSON)}
    rounds: dict[str, list[float]] = {k: [] for k in paths}
    for _ in range(a.repeats):  # interleaved, so a noisy neighbour hits all three alike; ratios taken per round
        for name, fn in paths.items():
            rounds[name].append(_rate(fn))
    rates = {k: statistics.median(v) for k, v in rounds.items()}
    ratio = {k: statistics.median(r / b for r, b in zip(rounds[k], rounds["baseline"])) for k in ("protobuf", "json")}
    mean_pb = statistics.mean(len(b) for b in pb) / a.spans
    mean_js = statistics.mean(len(b) for b in js) / a.spans
    mean_env = statistics.mean(len(e) for e in envelopes)
    print(f"exports: {a.requests} x {a.spans} GenAI chat spans; bytes/span protobuf {mean_pb:.0f}, "
          f"OTLP/JSON {mean_js:.0f}, Warden envelope {mean_env:.0f}; median of {a.repeats} rounds, one thread")
    print(f"baseline  POST /v1/events decode_event per envelope: {rates['baseline']:9.0f} events/s per core")
    print(f"receiver  OTLP protobuf decode+map+validate+serialise: {rates['protobuf']:9.0f} spans/s per core")
    print(f"receiver  OTLP/JSON     decode+map+validate+serialise: {rates['json']:9.0f} spans/s per core")
    print(f"ratio protobuf/baseline {ratio['protobuf']:.2f}   ratio json/baseline {ratio['json']:.2f}"
          "   (medians of per-round ratios)")


if __name__ == "__main__":
    main()
