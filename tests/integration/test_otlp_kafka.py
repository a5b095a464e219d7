"""An application instrumented with the OpenTelemetry SDK, exporting with ``opentelemetry-exporter-otlp-proto-http``
(configured by the standard OTEL_EXPORTER_OTLP_* variables), against the running service on Apache Kafka 4.x and
PostgreSQL with a stream worker and a job worker: LLM spans become events, then findings linked to their trace;
OTLP/JSON posts work too; malformed exports get OTLP errors and nothing crashes; every role serves /metrics."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from tests.support.kafka import KafkaBroker, free_port
from tests.support.otlp import GENAI, otlp_json, span
from tests.support.procs import poll, spawn, stop, wait_healthy, warden_env

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
KEY = "otlp-admin-key"
EMAIL = "marguerite.oyelaran@example.org"


@dataclass
class Stack:
    base: str
    worker_metrics: str
    jobs_metrics: str
    procs: dict[str, Any]

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", params=params, headers={"Authorization": f"Bearer {KEY}"}, timeout=10)

    def findings(self, tenant: str) -> list[dict[str, Any]]:
        return list(self.get("/v1/findings", tenant=tenant, limit=1000).json()["items"])


@pytest.fixture(scope="module")
def stack(kafka: KafkaBroker, postgres: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("otlp")
    port, worker_port, jobs_port = free_port(), free_port(), free_port()
    env = warden_env(kafka_bootstrap=kafka.bootstrap, database_url=postgres, admin_key=KEY, api_port=port,
                     consumer_group=f"w-{uuid.uuid4().hex[:6]}", governance_group=f"g-{uuid.uuid4().hex[:6]}",
                     worker_web_port=worker_port, jobs_metrics_port=jobs_port, jobs_group=f"j-{uuid.uuid4().hex[:6]}",
                     data_dir=str(logs / "data"), jobs_device="cpu", jobs_torch_threads=1)
    procs = {"api": spawn("api", env, logs / "api.log"), "worker": spawn("worker", env, logs / "worker.log"),
             "jobs": spawn("jobs", env, logs / "jobs.log")}
    s = Stack(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{worker_port}/metrics",
              f"http://127.0.0.1:{jobs_port}/metrics", procs)
    try:
        wait_healthy(s.base, procs["api"], logs / "api.log")
        yield s
    finally:
        for p in procs.values():
            stop(p)


def _producer_key(stack: Stack, tenant: str) -> str:
    r = httpx.post(f"{stack.base}/v1/keys", json={"role": "producer", "tenants": [tenant], "name": "otel-app"},
                   headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


def _instrumented_app(tenant: str) -> list[Any]:
    """What an agent instrumented with the SDK records: an agent span, two chat calls (one failing) and a tool call."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot", "service.version": "1.4.2"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("shop.agent")
    with tracer.start_as_current_span("invoke_agent shop", attributes={"gen_ai.operation.name": "invoke_agent"}):
        with tracer.start_as_current_span("chat gpt-4o", attributes=GENAI):
            pass
        with tracer.start_as_current_span("execute_tool crm", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "crm",
                "gen_ai.tool.call.result": f"customer email: {EMAIL}"}):
            pass
        with tracer.start_as_current_span("chat gpt-4o", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}) as failing:
            failing.set_attribute("error.type", "RateLimitError")
            failing.set_status(Status(StatusCode.ERROR, "429 from upstream"))
        with tracer.start_as_current_span("GET /inventory", attributes={"http.request.method": "GET"}):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


def test_sdk_exporter_spans_become_findings_linked_to_their_trace(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = f"o-{uuid.uuid4().hex[:8]}"
    key = _producer_key(stack, tenant)
    # the README's three lines: endpoint, the producer key as a header, and (optionally) gzip
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", stack.base)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization=Bearer%20{key}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    spans = _instrumented_app(tenant)
    exporter = OTLPSpanExporter()
    assert exporter.export(spans) == SpanExportResult.SUCCESS  # the key's single tenant names the tenant
    exporter.shutdown()
    chat, failing = sorted((s for s in spans if s.name == "chat gpt-4o"), key=lambda s: s.status.status_code == StatusCode.ERROR)
    tool = next(s for s in spans if s.name == "execute_tool crm")
    trace_id = f"{chat.context.trace_id:032x}"

    def ids(s: Any) -> str:
        return f"otel-{trace_id}-{s.context.span_id:016x}"

    found = poll(lambda: (f := stack.findings(tenant)) and {x["event_id"] for x in f} >= {ids(chat), ids(tool), ids(failing)}
                 and f, 90, what="findings of the exported spans")
    by_event: dict[str, list[dict[str, Any]]] = {}
    for f in found:
        by_event.setdefault(f["event_id"], []).append(f)
    assert {(f["detector"], f["kind"]) for f in by_event[ids(chat)]} == {("pii", "pii_detected")}
    assert "EMAIL_ADDRESS" in by_event[ids(chat)][0]["evidence"]["entity_types"]
    assert {(f["detector"], f["kind"]) for f in by_event[ids(tool)]} == {("pii", "pii_detected")}
    assert {(f["detector"], f["kind"]) for f in by_event[ids(failing)]} == {("rule", "error_status")}
    assert by_event[ids(failing)][0]["evidence"]["error_type"] == "RateLimitError"
    for event_id, fs in by_event.items():
        assert all(f["evidence"]["trace"]["trace_id"] == trace_id for f in fs), event_id
        assert all(f["model"] == "support-bot" and f["version"] == "1.4.2" for f in fs)
    assert EMAIL not in str(found)  # findings carry entity types, never the value
    # re-sending the same export changes nothing (event ids come from trace and span ids)
    exporter = OTLPSpanExporter()
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()
    text = httpx.get(f"{stack.base}/metrics", timeout=10).text
    assert 'warden_otlp_spans_total{kind="llm",outcome="accepted"}' in text
    assert 'warden_otlp_spans_total{kind="other",outcome="not_stored"}' in text
    poll(lambda: len(stack.findings(tenant)) >= len(found), 10, what="findings after the re-send")
    assert sorted(f["finding_id"] for f in stack.findings(tenant)) == sorted(f["finding_id"] for f in found)


def test_otlp_json_post_and_malformed_exports(stack: Stack) -> None:
    tenant = f"j-{uuid.uuid4().hex[:8]}"
    key = _producer_key(stack, tenant)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    body = otlp_json([span("0af7651916cd43dd", {**GENAI, "gen_ai.output.messages": "[]"},
                           status={"code": 2, "message": "boom"})], resource={"warden.tenant": tenant})
    r = httpx.post(f"{stack.base}/v1/traces", content=body, headers=headers, timeout=30)
    assert r.status_code == 200 and r.json() == {}
    for bad, content_type in ((b"\x0a\xff\xff\xff\xff\x0f", "application/x-protobuf"), (b'{"resourceSpans": 3}',
                                                                                         "application/json")):
        r = httpx.post(f"{stack.base}/v1/traces", content=bad, headers={**headers, "Content-Type": content_type})
        assert r.status_code == 400 and r.headers["content-type"] == content_type
    r = httpx.post(f"{stack.base}/v1/traces", content=otlp_json([span("0af7651916cd43de", GENAI)],
                                                               resource={"warden.tenant": "someone-else"}), headers=headers)
    assert r.status_code == 403
    found = poll(lambda: [f for f in stack.findings(tenant) if f["kind"] == "error_status"], 60,
                 what="the JSON span's error finding")
    assert [(f["event_id"], f["evidence"]["error_type"]) for f in found] == [
        ("otel-5b8efff798038103d269b633813fc60c-0af7651916cd43dd", "boom")]
    assert all(p.poll() is None for p in stack.procs.values()), "no role may crash on bad exports"


def test_every_role_serves_its_metrics(stack: Stack) -> None:
    def worker_ready() -> str | None:
        try:
            text = httpx.get(stack.worker_metrics, timeout=5).text
        except httpx.HTTPError:
            return None
        return text if "warden_worker_consumer_lag{" in text and 'type="inference"' in text else None

    httpx.post(f"{stack.base}/v1/events", headers={"Authorization": f"Bearer {KEY}"}, timeout=10, content=(
        b'{"schema_version": "1", "event_id": "m-1", "type": "inference", "occurred_at": "2026-01-01T00:00:00Z",'
        b' "tenant": "metrics", "model": {"name": "m"}, "inference": {"messages": [{"role": "user", "content": "hi"}]}}'))
    worker = poll(worker_ready, 90, what="worker metrics with lag and events")
    for family in ('warden_worker_events_total{outcome="processed",type="inference"}', "warden_worker_stage_seconds_bucket",
                   'warden_worker_detector_seconds_count{detector="pii"}', "warden_worker_batch_size_count",
                   "warden_worker_checkpoint_age_seconds", "warden_worker_last_batch_timestamp_seconds"):
        assert family in worker, family
    jobs = poll(lambda: _text(stack.jobs_metrics), 120, what="job worker metrics")
    assert 'warden_jobs{state="queued"}' in jobs and "process_cpu_seconds_total" in jobs
    api = httpx.get(f"{stack.base}/metrics", timeout=10).text
    for family in ("warden_http_request_duration_seconds_bucket", "warden_persist_batch_seconds_count",
                   "warden_governance_consumer_connected 1.0", "warden_audit_chain_valid 1.0"):
        assert family in api, family


def _text(url: str) -> str | None:
    try:
        r = httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return None
    return r.text if r.status_code == 200 and "warden_jobs{" in r.text else None

