"""End to end on Apache Kafka 4.x and PostgreSQL: producers → worker → governance API.

The events are published with confluent-kafka (librdkafka), a different client from the one Warden
uses, as a producer in another language would.
"""

from __future__ import annotations

import base64
import json
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, Producer

from tests.events import BAD_INPUTS, MINIMAL, inference, raw
from tests.support.kafka import KafkaBroker, free_port
from tests.support.procs import poll, spawn, stop, wait_healthy, warden_env
from tests.support.stack import KEY, WorkerStack

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _produce(bootstrap: str, payloads: list[tuple[bytes, bytes]], topic: str = "warden.inference") -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    for key, value in payloads:
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0


@pytest.fixture(scope="module")
def stack(kafka: KafkaBroker, postgres: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerStack]:
    logs = tmp_path_factory.mktemp("spine")
    port = free_port()
    env = warden_env(kafka_bootstrap=kafka.bootstrap, database_url=postgres, admin_key=KEY, api_port=port,
                     latency_slo_ms=5000, consumer_group=f"w-{uuid.uuid4().hex[:6]}",
                     governance_group=f"g-{uuid.uuid4().hex[:6]}", worker_web_port=free_port())
    api = spawn("api", env, logs / "api.log")
    worker = spawn("worker", env, logs / "worker.log")
    s = WorkerStack(kafka, f"http://127.0.0.1:{port}", env, logs, worker, api)
    try:
        wait_healthy(s.base, api, logs / "api.log")
        yield s
    finally:
        stop(s.worker)
        stop(s.api)


def test_events_from_another_client_become_findings_alerts_and_dead_letters(stack: WorkerStack) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    events = [inference(f"{tenant}-{i}", tenant=tenant, status="error" if i % 5 == 0 else "ok",
                        latency_ms=12_000 if i % 7 == 0 else 400) for i in range(40)]
    bad = {name: payload for name, (payload, _) in BAD_INPUTS.items() if name != "oversized"}
    _produce(stack.kafka.bootstrap, [(b"support-bot", raw(e)) for e in events] + [(b"bad", p) for p in bad.values()])
    errors = {e["event_id"] for e in events if e["inference"]["status"] == "error"}
    slow = {e["event_id"] for e in events if e["inference"]["latency_ms"] > 5000}
    expected = len(errors) + len(slow)
    findings = poll(lambda: (f := stack.all("/v1/findings", tenant=tenant)) and len(f) >= expected and f, 60,
                    what=f"{expected} findings")
    assert len(findings) == expected
    assert {f["event_id"] for f in findings if f["kind"] == "error_status"} == errors
    assert {f["event_id"] for f in findings if f["kind"] == "latency_slo"} == slow
    assert all(f["detector"] == "rule" and f["tenant"] == tenant for f in findings)
    one = stack.get("/v1/findings", event_id=f"{tenant}-0").json()["items"]
    assert {f["kind"] for f in one} == {"error_status", "latency_slo"}

    alerts = poll(lambda: [a for a in stack.get("/v1/alerts", tenant=tenant).json()["items"]], 30, what="alerts")
    by_key = {a["dedup_key"]: a for a in alerts}
    assert by_key["rule:" + tenant + ":support-bot:error_status"]["count"] == len(errors)

    def dead_letters() -> dict[str, Any]:
        items = stack.get("/v1/dlq", limit=1000).json()["items"]
        return {d["code"]: d for d in items}

    codes = {BAD_INPUTS[n][1] for n in bad}
    got = poll(lambda: (d := dead_letters()) and codes <= set(d) and d, 60, what="dead letters")
    assert got["malformed_json"]["source_topic"] == "warden.inference"
    assert got["malformed_json"]["offset"] is not None
    # the original bytes and the reason are on the DLQ topic
    consumer = Consumer({"bootstrap.servers": stack.kafka.bootstrap, "group.id": uuid.uuid4().hex,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe(["warden.dlq"])
    originals: set[bytes] = set()
    deadline = time.monotonic() + 60  # read by time and in batches: the topic may hold other tests' dead letters
    while time.monotonic() < deadline and not set(bad.values()) <= originals:
        for msg in consumer.consume(num_messages=500, timeout=1.0):
            if not msg.error():
                originals.add(base64.b64decode(json.loads(msg.value())["original_b64"]))
    consumer.close()
    assert set(bad.values()) <= originals
    assert stack.worker.poll() is None, "the worker must survive bad input"


def test_http_ingest_validates_publishes_and_refuses_clearly(stack: WorkerStack) -> None:
    url = f"{stack.base}/v1/events"
    auth = {"Authorization": f"Bearer {KEY}"}
    assert httpx.post(url, content=raw(MINIMAL)).status_code == 401
    assert httpx.post(url, content=raw(MINIMAL), headers={"Authorization": "Bearer nope"}).status_code == 401
    tenant = f"h-{uuid.uuid4().hex[:8]}"
    ev = inference(f"{tenant}-1", tenant=tenant, status="error")
    r = httpx.post(url, content=raw(ev), headers=auth)
    assert r.status_code == 202 and r.json() == {"event_id": ev["event_id"], "topic": "warden.inference",
                                                   "status": "accepted"}
    for name, (payload, code) in BAD_INPUTS.items():
        r = httpx.post(url, content=payload, headers=auth, timeout=30)
        assert 400 <= r.status_code < 500, name
        assert r.json()["detail"]["error"] == code, name
        assert r.json()["detail"]["detail"], name
    assert httpx.post(url, content=BAD_INPUTS["oversized"][0], headers=auth).status_code == 413
    found = poll(lambda: stack.get("/v1/findings", event_id=ev["event_id"]).json()["items"], 60, what="finding")
    assert found[0]["kind"] == "error_status"


def test_health_metrics_schema_and_auth(stack: WorkerStack) -> None:
    health = httpx.get(f"{stack.base}/healthz").json()
    assert health["status"] == "ok" and health["broker"]["ok"] and health["database"]["ok"]
    assert health["database"]["dialect"] == "postgresql"
    metrics = httpx.get(f"{stack.base}/metrics").text
    assert "warden_persisted_total" in metrics
    for path in ("/v1/findings", "/v1/alerts", "/v1/dlq", "/v1/schema"):
        assert httpx.get(f"{stack.base}{path}").status_code == 401, path
    assert stack.get("/v1/schema").json()["discriminator"]["propertyName"] == "type"
    assert stack.get("/v1/findings", cursor="garbage").status_code == 400


def test_sigkill_mid_stream_loses_nothing_and_duplicates_nothing(stack: WorkerStack) -> None:
    tenant = f"k-{uuid.uuid4().hex[:8]}"
    n = 10_000
    events = [inference(f"{tenant}-{i}", tenant=tenant, model=f"m{i % 4}", status="error" if i % 10 == 3 else "ok")
              for i in range(n)]
    errors = {e["event_id"] for e in events if e["inference"]["status"] == "error"}
    _produce(stack.kafka.bootstrap, [(e["model"]["name"].encode(), raw(e)) for e in events[: n // 2]])

    def count() -> int:
        return len(stack.all("/v1/findings", tenant=tenant))

    poll(lambda: count() >= 50, 90, interval=0.2, what="first findings")
    assert stop(stack.worker, signal.SIGKILL) == -signal.SIGKILL
    _produce(stack.kafka.bootstrap, [(e["model"]["name"].encode(), raw(e)) for e in events[n // 2:]])
    stack.worker = spawn("worker", stack.env, stack.logs / "worker.log")
    findings = poll(lambda: (f := stack.all("/v1/findings", tenant=tenant)) and len(f) >= len(errors) and f, 180,
                    interval=1.0, what=f"{len(errors)} findings after restart")
    per_event = Counter(f["event_id"] for f in findings)
    assert set(per_event) == errors
    assert set(per_event.values()) == {1}


PLANTED = ["marguerite.oyelaran@example.org", "+1 415 555 0134", "4111 1111 1111 1111", "536-22-8014",
           "Marguerite Oyelaran", "sk-proj-Zx81Qa7Lm2Wc9Rt4Yu6Io0PpAs3Df5Gh", "10.31.7.122"]


def _sample_count(postgres: str, tenant: str) -> int:
    import psycopg

    with psycopg.connect(postgres) as conn:
        return int(conn.execute("SELECT count(*) FROM samples WHERE tenant = %s", (tenant,)).fetchone()[0])


def test_planted_pii_reaches_no_store_log_alert_finding_or_later_topic(stack: WorkerStack, postgres: str) -> None:
    tenant = f"p-{uuid.uuid4().hex[:8]}"
    prompt = (f"Hi, I'm {PLANTED[4]}. Reach me at {PLANTED[0]} or {PLANTED[1]}; card {PLANTED[2]}, SSN "
              f"{PLANTED[3]}. My key is {PLANTED[5]} and the server is {PLANTED[6]}.")
    events = [inference(f"{tenant}-{i}", tenant=tenant, status="error" if i % 2 else "ok",
                        messages=[{"role": "user", "content": prompt}],
                        response={"content": f"Thanks {PLANTED[4]}, I emailed {PLANTED[0]}.", "finish_reason": "stop"})
              for i in range(6)]
    _produce(stack.kafka.bootstrap, [(b"support-bot", raw(e)) for e in events])
    findings = poll(lambda: [f for f in stack.all("/v1/findings", tenant=tenant) if f["detector"] == "pii"], 90,
                    what="pii findings")
    poll(lambda: len([f for f in stack.all("/v1/findings", tenant=tenant) if f["detector"] == "pii"]) == 6, 60,
         what="all pii findings")
    assert {"EMAIL_ADDRESS", "CREDIT_CARD", "US_SSN", "PHONE_NUMBER"} <= set(findings[0]["evidence"]["entity_types"])
    alerts = poll(lambda: stack.get("/v1/alerts", tenant=tenant).json()["items"], 30, what="alerts")
    # every place a value could land: API answers, database tables, logs, and the stream's output topics
    places = {"api": json.dumps([stack.all("/v1/findings", tenant=tenant), alerts,
                                  stack.get("/v1/dlq", limit=1000).json()])}
    import psycopg

    poll(lambda: _sample_count(postgres, tenant) == 6, 60, what="the redacted training samples")
    with psycopg.connect(postgres) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").fetchall()]
        assert {"findings", "decisions", "alerts", "dead_letters", "samples", "alert_events"} <= set(tables)
        for table in tables:
            rows = conn.execute(f'SELECT t::text FROM "{table}" t').fetchall()
            places[f"db.{table}"] = "\n".join(r[0] for r in rows)
    for log in stack.logs.glob("*.log"):
        places[f"log.{log.name}"] = log.read_text(errors="replace")
    consumer = Consumer({"bootstrap.servers": stack.kafka.bootstrap, "group.id": uuid.uuid4().hex,
                         "auto.offset.reset": "earliest", "enable.partition.eof": True})
    consumer.subscribe(["warden.findings", "warden.decisions", "warden.samples"])
    chunks: list[bytes] = []
    idle = 0
    while idle < 5:
        msg = consumer.poll(1.0)
        if msg is None:
            idle += 1
        elif not msg.error():
            chunks.append(msg.value())
    consumer.close()
    places["topics"] = b"\n".join(chunks).decode()
    assert tenant in places["topics"] and tenant in places["db.findings"] and tenant in places["db.samples"]
    assert "<EMAIL_ADDRESS>" in places["db.samples"]  # the samples hold the redacted texts
    for where, text in places.items():
        for value in PLANTED:
            assert value not in text, f"{value!r} leaked into {where}"
