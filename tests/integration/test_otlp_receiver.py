"""POST /v1/traces in-process (the API on a real SQLite store; what it publishes is recorded): encodings,
gzip, the OTLP answers (partial success, 400, 413, 415, 429, 503 with Retry-After) and the tenant scope.

The end-to-end path — the OpenTelemetry SDK's exporter against the running service and Apache Kafka, spans
becoming findings — is tests/integration/test_otlp_kafka.py."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from contracts.events import InferenceEvent
from tests.integration.test_governance_harness import Gov, make_gov
from tests.support.otlp import GENAI, otlp_json, sdk_spans, span

PB, JS = {"Content-Type": "application/x-protobuf"}, {"Content-Type": "application/json"}


@pytest.fixture
def gov(tmp_path: Path) -> Gov:
    return make_gov(f"sqlite:///{tmp_path / 'w.db'}", otlp_max_bytes=64 * 1024)


def _post(gov: Gov, body: bytes, headers: dict[str, str], key: tuple[str, str] = ("producer", "acme")) -> Any:
    return gov.client.post("/v1/traces", content=body, headers={**headers, **gov.as_(*key)})


def _status(r: Any) -> tuple[str, str | None]:
    """(ErrorInfo reason, BadRequest field) of an OTLP error answer, in either encoding."""
    if r.headers["content-type"].startswith("application/json"):
        details = r.json()["details"]
        reason = next(d["reason"] for d in details if d["@type"].endswith("ErrorInfo"))
        field = next((d["fieldViolations"][0]["field"] for d in details if d["@type"].endswith("BadRequest")), None)
        return reason, field
    st = status_pb2.Status.FromString(r.content)
    info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    field = None
    for d in st.details:
        if d.Is(info.DESCRIPTOR):
            d.Unpack(info)
        elif d.Is(bad.DESCRIPTOR):
            d.Unpack(bad)
            field = bad.field_violations[0].field
    return info.reason, field


def test_protobuf_from_the_sdk_encoder_is_published_and_answered_in_protobuf(gov: Gov) -> None:
    raw, _ = sdk_spans()
    r = _post(gov, raw, PB)
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-protobuf"
    assert not ExportTraceServiceResponse.FromString(r.content).HasField("partial_success")
    topics = [t for t, _, _ in gov.producer.sent]
    assert topics == ["warden.inference", "warden.inference"]  # the chat call and the tool step; the agent span is counted
    events = [InferenceEvent.model_validate_json(v) for _, v, _ in gov.producer.sent]
    assert sorted(e.inference.trace.kind for e in events if e.inference.trace) == ["llm", "tool"]
    assert {k for _, _, k in gov.producer.sent} == {b"acme/support-bot"}
    metrics = gov.client.get("/metrics").text
    assert 'warden_otlp_spans_total{kind="agent",outcome="not_stored"}' in metrics
    assert 'warden_http_request_duration_seconds_count{method="POST",route="/v1/traces",status="200"}' in metrics


def test_json_gzip_and_partial_success(gov: Gov) -> None:
    good = span("051581bf3cb55c13", GENAI)
    bad = {**span("051581bf3cb55c14", GENAI), "spanId": "zz"}
    body = gzip.compress(otlp_json([good, bad]))
    r = _post(gov, body, {**JS, "Content-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    partial = r.json()["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 1 and "invalid trace or span id" in partial["errorMessage"]
    assert len(gov.producer.sent) == 1
    again = _post(gov, body, {**JS, "Content-Encoding": "gzip"})  # a retried export: same event id, same key
    assert again.status_code == 200 and gov.producer.sent[1] == gov.producer.sent[0]


def test_malformed_payloads_get_400_with_a_status(gov: Gov) -> None:
    for body, headers, field in [(b"{nope", JS, "body"), (b'{"resourceSpans": 7}', JS, "request.resourceSpans"),
                                 (b"\x0a\xff\xff\xff\xff\x0f", PB, "body"),
                                 (b"not gzip", {**PB, "Content-Encoding": "gzip"}, "body")]:
        r = _post(gov, body, headers)
        assert r.status_code == 400, (body, r.text)
        assert r.headers["content-type"] == headers["Content-Type"]
        assert _status(r) == ("malformed", field)
    assert gov.producer.sent == []
    assert _post(gov, b"{}", {"Content-Type": "text/plain"}).status_code == 415
    assert _post(gov, b"{}", {**JS, "Content-Encoding": "br"}).status_code == 415
    assert _post(gov, b"{}", JS).status_code == 200  # an empty export is a success


def test_size_limit_applies_before_and_after_decompression(gov: Gov) -> None:
    big = otlp_json([span("051581bf3cb55c13", {**GENAI, "gen_ai.input.messages": json.dumps(
        [{"role": "user", "parts": [{"type": "text", "content": "x" * 70_000}]}])})])
    r = _post(gov, big, JS)
    assert r.status_code == 413 and _status(r)[0] == "payload_too_large"
    bomb = gzip.compress(b"{" + b" " * 200_000 + b"}")
    assert len(bomb) < 64 * 1024
    r = _post(gov, bomb, {**JS, "Content-Encoding": "gzip"})
    assert r.status_code == 413 and gov.producer.sent == []


def test_auth_and_tenant_scope_answer_with_otlp_status(gov: Gov) -> None:
    body = otlp_json([span("051581bf3cb55c13", GENAI)])
    r = gov.client.post("/v1/traces", content=body, headers=JS)
    assert r.status_code == 401 and _status(r)[0] == "unauthenticated"
    r = _post(gov, body, JS, ("producer", "globex"))
    assert r.status_code == 403 and _status(r)[0] == "tenant_forbidden"
    r = _post(gov, body, JS, ("auditor", "acme"))
    assert r.status_code == 403 and _status(r)[0] == "role_forbidden"
    # without warden.tenant, a key scoped to one tenant names it
    unnamed = otlp_json([span("051581bf3cb55c13", GENAI)], resource={"warden.tenant": None})
    assert _post(gov, unnamed, JS, ("producer", "globex")).status_code == 200
    assert gov.producer.sent[-1][2] == b"globex/support-bot"
    assert gov.producer.sent[-1][0] == "warden.inference"


def test_kafka_failure_is_503_with_retry_after(gov: Gov) -> None:
    gov.producer.fail = True
    r = _post(gov, otlp_json([span("051581bf3cb55c13", GENAI)]), JS)
    assert r.status_code == 503 and r.headers["retry-after"] == "5" and _status(r)[0] == "unavailable"
    assert 'warden_otlp_spans_total{kind="llm",outcome="failed"}' in gov.client.get("/metrics").text


class _SlowProducer:
    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = asyncio.Event()
        self.sent: list[bytes] = []

    async def send_and_wait(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        self.entered.set()
        await self.release.wait()
        self.sent.append(value)


async def test_too_many_exports_in_flight_get_429(tmp_path: Path) -> None:
    gov = make_gov(f"sqlite:///{tmp_path / 'w.db'}", otlp_max_inflight=1)
    slow = _SlowProducer()
    gov.client.app.state.producer = slow
    transport = httpx.ASGITransport(app=gov.client.app)
    headers = {**JS, **gov.as_("producer", "acme")}
    async with httpx.AsyncClient(transport=transport, base_url="http://warden") as client:
        first = asyncio.create_task(client.post("/v1/traces", content=otlp_json([span("051581bf3cb55c13", GENAI)]),
                                                headers=headers))
        await asyncio.wait_for(slow.entered.wait(), 10)
        second = await client.post("/v1/traces", content=otlp_json([span("051581bf3cb55c14", GENAI)]), headers=headers)
        assert second.status_code == 429 and second.headers["retry-after"] == "1"
        slow.release.set()
        assert (await first).status_code == 200
    assert len(slow.sent) == 1


def test_the_sdk_request_class_round_trips(gov: Gov) -> None:
    """A request built with the protobuf classes (as any OTLP exporter does) and one in OTLP/JSON give the same events."""
    raw, _ = sdk_spans()
    from google.protobuf.json_format import MessageToDict

    doc = MessageToDict(ExportTraceServiceRequest.FromString(raw), use_integers_for_enums=True)
    assert _post(gov, raw, PB).status_code == 200
    assert _post(gov, json.dumps(doc).encode(), JS).status_code == 200
    first, second = gov.producer.sent[:2], gov.producer.sent[2:]
    assert sorted(first) == sorted(second)
