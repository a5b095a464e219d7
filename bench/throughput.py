"""Throughput and latency of the spine on Apache Kafka (produced → findings persisted).

    python -m bench.throughput [--events 20000] [--rate 1000] [--seconds 10]

Starts Apache Kafka 4.x (KRaft) and PostgreSQL (as the test suite does), the governance API and 1 then 2
stream workers as real processes, and prints:
  * the pure pipeline (decode → detectors → policy) in-process, events/s — the ceiling a worker could reach;
  * events/s through the spine with 1 and 2 workers: a burst of N events published with confluent-kafka,
    timed from the first publish to the last finding persisted (10 % of events fail and yield a finding);
  * p50/p99 produce → decision latency at a fixed offered rate (every event yields a decision).
On this 2-core machine the broker, the database, the API and the workers share the same two cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, Producer

from streams.pipeline import Pipeline, PipelineConfig, RawItem
from tests.events import inference, raw
from tests.support.kafka import free_port, start_kafka
from tests.support.postgres import start_postgres
from tests.support.procs import poll, spawn, stop, wait_healthy, warden_env

KEY = "bench-key"
CORPUS = Path(__file__).resolve().parent / "data" / "pii_labelled.jsonl"


def chat_texts() -> list[str]:
    """Realistic chat texts (100–1,000 chars, ~20 % with PII) from the PII benchmark's labelled set."""
    return [json.loads(line)["text"] for line in CORPUS.read_text().splitlines() if line.strip()]


def event(event_id: str, i: int, texts: list[str], **kw: Any) -> dict:
    """An inference event whose prompt and response are two different corpus texts."""
    return inference(event_id, messages=[{"role": "user", "content": texts[(2 * i) % len(texts)]}],
                     response={"content": texts[(2 * i + 1) % len(texts)], "finish_reason": "stop"}, **kw)


def pipeline_ceiling(texts: list[str], embeddings: bool, n: int = 1000) -> dict[str, float]:
    """events/s of the pipeline alone (in-process, one core), with and without the PII stage.

    ``n`` distinct events (every text seen once), so neither the PII nor the embedding cache helps.
    """
    from detectors.features.embeddings import EmbedderConfig

    payloads = [raw(event(f"p-{i}", i, texts, status="error" if i % 10 == 0 else "ok")) for i in range(n)]
    emb = EmbedderConfig.fast_cpu() if embeddings else None
    out = {}
    for name, config in (("no PII", PipelineConfig(pii=None, embeddings=emb)),
                         ("all detectors", PipelineConfig(embeddings=emb))):
        pipe = Pipeline(config)
        pipe.warm_up()
        items = [RawItem(p, "warden.inference", 0, i) for i, p in enumerate(payloads)]
        started = time.perf_counter()
        for k in range(0, n, 500):
            pipe.process_batch(items[k:k + 500])
        out[name] = n / (time.perf_counter() - started)
    return out


def produce(bootstrap: str, payloads: list[tuple[bytes, bytes]], rate: float | None = None) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 2, "acks": "all"})
    started = time.monotonic()
    for i, (key, value) in enumerate(payloads):
        while True:
            try:
                producer.produce("warden.inference", value=value, key=key)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        if rate:
            delay = started + (i + 1) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    producer.flush(60)


def count_findings(base: str, tenant: str) -> int:
    total, cursor = 0, None
    while True:
        params: dict[str, Any] = {"tenant": tenant, "limit": 1000, **({"cursor": cursor} if cursor else {})}
        body = httpx.get(f"{base}/v1/findings", params=params, headers={"Authorization": f"Bearer {KEY}"},
                         timeout=30).json()
        total += len(body["items"])
        cursor = body["next_cursor"]
        if not cursor:
            return total


def burst(bootstrap: str, base: str, n: int, texts: list[str]) -> float:
    tenant = f"b-{uuid.uuid4().hex[:8]}"
    events = [(f"m{i % 8}".encode(), raw(event(f"{tenant}-{i}", i, texts, tenant=tenant, model=f"m{i % 8}",
                                               status="error" if i % 10 == 0 else "ok"))) for i in range(n)]
    expected = sum(1 for i in range(n) if i % 10 == 0)
    started = time.monotonic()
    produce(bootstrap, events)
    poll(lambda: count_findings(base, tenant) >= expected, 600, interval=0.5, what="all findings persisted")
    return n / (time.monotonic() - started)


def latency(bootstrap: str, rate: float, seconds: float, texts: list[str]) -> tuple[float, float, int]:
    tenant = f"l-{uuid.uuid4().hex[:8]}"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                         "auto.offset.reset": "latest", "enable.auto.commit": False})
    consumer.subscribe(["warden.decisions"])
    for _ in range(20):  # wait for the assignment before producing
        consumer.poll(0.5)
        if consumer.assignment():
            break
    n = int(rate * seconds)

    def payloads():  # occurred_at = the send time, so decision.created_at - now is produce → decision
        for i in range(n):
            ev = event(f"{tenant}-{i}", i, texts, tenant=tenant, model=f"m{i % 8}", status="error")
            ev["occurred_at"] = datetime.now(UTC).isoformat()
            yield f"m{i % 8}".encode(), raw(ev)

    import threading

    lat: list[float] = []
    done = threading.Event()

    def consume() -> None:
        while not done.is_set() or len(lat) < n:
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                if done.is_set() and time.monotonic() > deadline:
                    return
                continue
            d = json.loads(msg.value() or b"{}")
            if d["subject"]["tenant"] == tenant:
                sent = datetime.fromisoformat(d["created_at"])
                lat.append((datetime.now(UTC) - sent).total_seconds() * 1000)

    deadline = time.monotonic() + seconds + 120
    t = threading.Thread(target=consume)
    t.start()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 1, "acks": "all"})
    started = time.monotonic()
    for i, (key, value) in enumerate(payloads()):
        producer.produce("warden.inference", value=value, key=key)
        producer.poll(0)
        delay = started + (i + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    producer.flush(60)
    done.set()
    t.join()
    consumer.close()
    lat.sort()
    return statistics.median(lat), lat[int(0.99 * (len(lat) - 1))], len(lat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--no-embeddings", action="store_true", help="drift on tabular features only")
    args = ap.parse_args()
    from detectors.features.embeddings import EmbedderConfig

    pc = EmbedderConfig.fast_cpu()
    print(f"drift embeddings: {'off' if args.no_embeddings else f'on (MiniLM {pc.backend} int8, {pc.max_tokens} tokens, 1 thread)'}")

    texts = chat_texts()
    ceilings = pipeline_ceiling(texts, embeddings=not args.no_embeddings)
    for name, rate in ceilings.items():
        print(f"pipeline alone, {name} (in-process, 1 core): {rate:,.0f} events/s", flush=True)
    ceiling = ceilings["all detectors"]
    with ExitStack() as stack:
        kafka = start_kafka(partitions=8)
        stack.callback(kafka.stop)
        pg = start_postgres()
        stack.callback(pg.stop)
        import tempfile

        logs = Path(tempfile.mkdtemp(prefix="warden-bench-"))
        port = free_port()
        env = warden_env(kafka_bootstrap=kafka.bootstrap, database_url=pg.url, admin_key=KEY, api_port=port,
                         topic_partitions=8, log_level="WARNING", drift_embeddings=not args.no_embeddings)
        api = spawn("api", env, logs / "api.log")
        stack.callback(stop, api)
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, api, logs / "api.log")
        results: dict[int, float] = {}
        workers: list[Any] = []
        for count in (1, 2):
            while len(workers) < count:
                w = spawn("worker", {**env, "WARDEN_WORKER_WEB_PORT": str(free_port())}, logs / f"worker{len(workers)}.log")
                workers.append(w)
                stack.callback(stop, w)
            burst(kafka.bootstrap, base, 500, texts)  # warm-up: group joined, partitions assigned
            time.sleep(3)
            results[count] = burst(kafka.bootstrap, base, args.events, texts)
            print(f"spine, {count} worker(s): {results[count]:,.0f} events/s "
                  f"({args.events} events, produced → findings persisted)", flush=True)
        p50, p99, n = latency(kafka.bootstrap, args.rate, args.seconds, texts)
        print(f"produce → decision latency at {args.rate:,.0f} events/s offered, 2 workers: "
              f"p50 {p50:.1f} ms, p99 {p99:.1f} ms ({n} decisions)", flush=True)
    print(f"spine events/s: 1 worker {results[1]:,.0f}, 2 workers {results[2]:,.0f} "
          f"({results[2] / results[1]:.2f}x); pipeline ceiling {ceiling:,.0f}/s per core "
          f"(spine at {results[1] / ceiling:.0%} of it)")


if __name__ == "__main__":
    main()
