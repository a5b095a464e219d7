"""Sustained throughput of the whole spine at fixed offered rates, with every detector on.

    python -m bench.sustained [--rates 100,250,500,1000,2000] [--seconds 60] [--warmup 15] [--workers 1]
    python -m bench.sustained --scale-out [--rate 150] [--seconds 60]     # events per worker CPU-second, 1 vs 2
    python -m bench.sustained --profile [--events 3000]                    # the pipeline alone, per stage
    python -m bench.sustained --set WORKER_TEXT_PROCESSES=2 ...            # any Warden setting, for every process

Runs what production runs: Apache Kafka 4.x (KRaft) and PostgreSQL (``tests/support``), the governance API with
its Kafka consumer and ``warden worker`` processes, all as real processes with the default settings (PII on every
text, drift with MiniLM embeddings, security, fairness, anomaly, rules, policies, samples). The traffic is
:mod:`bench.traffic`: 3 tenants x 10 models, 90 % inference, never the same user message or response twice.

First every model gets a production deployment and enough events to pin its drift reference (so the drift
monitors are in their steady state, evaluating windows). Then, per offered rate, ``--warmup`` seconds then
``--seconds`` measured seconds of paced traffic, and it prints:

- achieved: events the workers finished per second over the measured period (offered: what the bench sent);
- lag: the worker group's committed consumer lag on the input topics at the start and at the end of the
  measured period (flat: it did not grow by more than one second of traffic);
- produce → decision p50/p99 (ms), from the moment the bench hands an event to its producer to the moment a
  decision about it is read back from ``warden.decisions``, for *fast* decisions (rule and anomaly findings:
  failed and slow calls) and *heavy* ones (PII, drift, security, bias findings), over the events sent in the
  measured period. A failed or slow call whose decision has not come ``--grace`` seconds after the end counts as
  late (shown as ``>``);
- worker CPU-seconds per 1,000 finished events (``/proc`` of the worker processes and their children) and the
  workers' resident memory; the CPU the broker, PostgreSQL, the API and the bench itself took meanwhile;
- the per-stage profile per event from the workers' Prometheus metrics (``warden_worker_stage_seconds``).

A rate that leaves a backlog is cut off afterwards (workers stopped, their group moved to the end of the input
topics, restarted: they reload their detector checkpoints), so the next rate starts clean. Last line: the
sustainable rate, the highest offered rate whose p99 (fast and heavy) is at most 1 s with a flat lag.

``--scale-out`` offers one rate to 1 worker, then to 2 workers (8 partitions split 4/4) and prints each worker's
finished events per CPU-second and their sum; the ratio 2 vs 1 is the scale-out a machine with a core per worker
would see (wall-clock scale-out cannot show on 2 shared cores). It also checks that no event was processed twice.

On the 2-core development machine everything — broker, database, API, workers and this bench — shares two cores.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.traffic import Template, Traffic
from tests.support.kafka import KafkaBroker, free_port, start_kafka
from tests.support.postgres import PostgresCluster, start_postgres
from tests.support.procs import spawn, stop, wait_healthy, warden_env

KEY = "bench-key"
INPUTS = ("warden.inference", "warden.training", "warden.feedback", "warden.deployments")
FAST = frozenset({"rule", "anomaly"})
HEAVY = frozenset({"pii", "drift", "security", "bias"})
CLK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------------------------- /proc



def _produce(producer: Any, t: Template, wait_s: float) -> None:
    """Hand one event to the producer, waiting ``wait_s`` at a time while its queue is full."""
    while True:
        try:
            producer.produce(t.topic, value=t.payload(), key=t.key)
            return
        except BufferError:
            producer.poll(wait_s)


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    stat = fh.read()
            except OSError:
                continue
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            kids[ppid].append(int(entry))
    return kids


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    kids = _children()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants (and of children they waited for)."""
    total = 0.0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15]) / CLK  # utime stime cutime cstime
    return total


def own_cpu_seconds() -> float:
    """CPU seconds of this process alone (its children are the stack's processes, counted apart)."""
    t = os.times()
    return t.user + t.system


def rss_mib(pid: int) -> float:
    """Resident memory (MiB) of ``pid`` and its descendants."""
    total = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/status") as fh:
                total += next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
    return total / 1024


# ---------------------------------------------------------------------------------------------- the stack


@dataclass
class Worker:
    proc: Any
    port: int
    log: Path

    def metrics(self) -> dict[str, float]:
        """The worker's Prometheus samples (``name{labels}`` → value); empty when it does not answer."""
        try:
            text = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        except httpx.HTTPError:
            return {}
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    out[name] = float(value)
        return out


def events_done(samples: dict[str, float]) -> float:
    """Events the worker finished (every type and outcome)."""
    return sum(v for k, v in samples.items() if k.startswith("warden_worker_events_total{"))


def stage_sums(samples: dict[str, float]) -> dict[str, float]:
    """Seconds spent per pipeline stage and per detector (``stage:<name>`` / ``detector:<name>``)."""
    out = {}
    for k, v in samples.items():
        m = re.match(r'warden_worker_(stage|detector)_seconds_sum\{(?:stage|detector)="([^"]+)"\}', k)
        if m:
            out[f"{m.group(1)}:{m.group(2)}"] = v
    return out


def loop_delay_buckets(samples: dict[str, float]) -> dict[float, float]:
    """The worker's event-loop delay histogram: upper bound (s) → cumulative count."""
    out = {}
    for k, v in samples.items():
        m = re.match(r'warden_worker_loop_delay_seconds_bucket\{le="([^"]+)"\}', k)
        if m:
            out[float(m.group(1))] = v
    return out


def bucket_quantile(buckets: dict[float, float], q: float) -> float | None:
    """The upper bound of the bucket holding quantile ``q`` of a cumulative histogram (None: no observations)."""
    total = buckets.get(float("inf"), 0.0)
    if total <= 0:
        return None
    return next(le for le, n in sorted(buckets.items()) if n >= q * total)


@dataclass
class Stack:
    kafka: KafkaBroker
    pg: PostgresCluster
    env: dict[str, str]
    logs: Path
    api: Any = None
    workers: list[Worker] = field(default_factory=list)

    @property
    def group(self) -> str:
        return self.env["WARDEN_CONSUMER_GROUP"]

    def start_api(self) -> None:
        port = int(self.env["WARDEN_API_PORT"])
        self.api = spawn("api", self.env, self.logs / "api.log")
        wait_healthy(f"http://127.0.0.1:{port}", self.api, self.logs / "api.log")

    def add_worker(self) -> Worker:
        port = free_port()
        log = self.logs / f"worker{len(self.workers)}-{int(time.time())}.log"
        w = Worker(spawn("worker", {**self.env, "WARDEN_WORKER_WEB_PORT": str(port)}, log), port, log)
        self.workers.append(w)
        return w

    def stop_workers(self) -> None:
        for w in self.workers:
            stop(w.proc)
        self.workers = []

    def stop(self) -> None:
        self.stop_workers()
        if self.api is not None:
            stop(self.api)
        self.kafka.stop()
        self.pg.stop()

    def pg_pid(self) -> int | None:
        try:
            return int((self.pg.datadir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


def _admin(bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap})


def lag(bootstrap: str, group: str, topics: tuple[str, ...] = INPUTS) -> int:
    """Messages of ``topics`` the consumer group has not committed yet."""
    from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition

    admin = _admin(bootstrap)
    meta = admin.list_topics(timeout=10)
    tps = [TopicPartition(t, p) for t in topics if t in meta.topics for p in meta.topics[t].partitions]
    fut = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)])[group]
    committed = {(tp.topic, tp.partition): tp.offset for tp in fut.result(timeout=10).topic_partitions}
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": f"lag-{uuid.uuid4().hex[:6]}"})
    try:
        total = 0
        for tp in tps:
            lo, hi = probe.get_watermark_offsets(tp, timeout=10)
            at = committed.get((tp.topic, tp.partition), -1)
            total += hi - (at if at >= 0 else lo)
        return total
    finally:
        probe.close()


def skip_backlog(stack: Stack, n_workers: int) -> None:
    """Stop the workers, move their group to the end of the input and aggregate topics, start them again."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    stack.stop_workers()
    admin = _admin(stack.kafka.bootstrap)
    meta = admin.list_topics(timeout=10)
    from confluent_kafka import Consumer

    probe = Consumer({"bootstrap.servers": stack.kafka.bootstrap, "group.id": f"skip-{uuid.uuid4().hex[:6]}"})
    tps = []
    for t in (*INPUTS, "warden.aggregates"):
        for p in meta.topics.get(t).partitions if t in meta.topics else []:
            hi = probe.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
            tps.append(TopicPartition(t, p, hi))
    probe.close()
    deadline = time.monotonic() + 60
    while True:  # the group must be empty (its members gone) before its offsets can be altered
        try:
            admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(stack.group, tps)])[stack.group].result(
                timeout=10)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
    for _ in range(n_workers):
        stack.add_worker()


def wait_consuming(stack: Stack, timeout: float = 180) -> None:
    """Until every worker serves metrics and the group has no backlog."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for w in stack.workers:
            if w.proc.poll() is not None:
                raise RuntimeError(f"worker exited {w.proc.returncode}:\n{w.log.read_text()[-3000:]}")
        if all(w.metrics() for w in stack.workers) and lag(stack.kafka.bootstrap, stack.group) == 0:
            return
        time.sleep(1)
    raise TimeoutError("workers did not catch up")


# ---------------------------------------------------------------------------------------------- traffic


class Collector(threading.Thread):
    """Reads ``warden.findings`` and ``warden.decisions`` and keeps (arrival time, topic, bytes)."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(daemon=True)
        from confluent_kafka import Consumer

        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}",
                                  "auto.offset.reset": "latest", "enable.auto.commit": False,
                                  "fetch.wait.max.ms": 10})
        self.consumer.subscribe(["warden.findings", "warden.decisions"])
        self.records: list[tuple[float, str, bytes]] = []
        self.stopping = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            msgs = self.consumer.consume(num_messages=1000, timeout=0.05)
            now = time.time()
            for m in msgs:
                topic, value = m.topic(), m.value()
                if m.error() is None and topic is not None and value is not None:
                    self.records.append((now, topic, value))
            if not self.ready.is_set() and len(self.consumer.assignment()) > 0:
                self.ready.set()
        self.consumer.close()


def send(bootstrap: str, templates: list[Template], rate: float, sent: dict[str, float],
         marks: dict[str, Any]) -> None:
    """Send ``templates`` at ``rate`` per second (ticks of 5 ms), recording each send time in ``sent``."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 2, "acks": "all",
                         "queue.buffering.max.messages": 1_000_000})
    started = time.monotonic()
    marks["started"] = time.time()
    i = 0
    n = len(templates)
    while i < n:
        due = min(n, int((time.monotonic() - started) * rate) + 1)
        while i < due:
            t = templates[i]
            sent[t.event_id] = time.time()
            _produce(producer, t, 0.01)
            i += 1
        producer.poll(0)
        wait = started + i / rate - time.monotonic()
        if wait > 0:
            time.sleep(min(wait, 0.005))
    producer.flush(120)
    marks["ended"] = time.time()


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")


@dataclass
class Snapshot:
    at: float
    lag: int
    cpu: dict[str, float]
    metrics: list[dict[str, float]]
    rss: float


def snapshot(stack: Stack) -> Snapshot:
    cpu = {"workers": sum(cpu_seconds(w.proc.pid) for w in stack.workers),
           "broker": cpu_seconds(stack.kafka.process.pid), "api": cpu_seconds(stack.api.pid),
           "bench": own_cpu_seconds()}
    pg = stack.pg_pid()
    if pg:
        cpu["postgres"] = cpu_seconds(pg)
    for i, w in enumerate(stack.workers):
        cpu[f"worker{i}"] = cpu_seconds(w.proc.pid)
    return Snapshot(time.time(), lag(stack.kafka.bootstrap, stack.group), cpu,
                    [w.metrics() for w in stack.workers], sum(rss_mib(w.proc.pid) for w in stack.workers))


@dataclass
class RateResult:
    rate: float
    offered: float
    achieved: float
    lag_start: int
    lag_end: int
    fast: list[float]
    fast_late: int
    heavy: list[float]
    cpu_per_1000: float
    rss: float
    other_cpu: dict[str, float]
    profile: dict[str, float]
    events: float
    per_worker_events: list[float]
    sent: int
    loop_delay: dict[float, float] = field(default_factory=dict)
    """Event-loop delay histogram of the measured period, summed over workers (upper bound → cumulative count)."""

    @property
    def flat(self) -> bool:
        return self.lag_end <= self.lag_start + max(self.rate, 50)

    @property
    def p99(self) -> float:
        p = max(_pct(self.fast, 0.99), _pct(self.heavy, 0.99) if self.heavy else 0.0)
        return float("inf") if self.fast_late else p

    @property
    def sustainable(self) -> bool:
        return self.flat and self.p99 <= 1000.0


def latencies(records: list[tuple[float, str, bytes]], sent: dict[str, float], window: tuple[float, float],
              expected_fast: set[str]) -> tuple[list[float], int, list[float]]:
    """(fast latencies ms, late fast events, heavy latencies ms) of events sent inside ``window``."""
    owner: dict[str, tuple[str, str]] = {}
    decisions: list[tuple[float, dict[str, Any]]] = []
    for at, topic, value in records:
        doc = json.loads(value)
        if topic == "warden.findings":
            if doc.get("event_id"):
                owner[doc["finding_id"]] = (doc["event_id"], doc["detector"])
        else:
            decisions.append((at, doc))
    first: dict[tuple[str, str], float] = {}
    for at, d in decisions:
        ids = d.get("finding_ids") or []
        if len(ids) != 1 or ids[0] not in owner:
            continue  # window aggregates
        event_id, detector = owner[ids[0]]
        cls = "fast" if detector in FAST else "heavy" if detector in HEAVY else None
        t0 = sent.get(event_id)
        if cls is None or t0 is None or not window[0] <= t0 < window[1]:
            continue
        k = (event_id, cls)
        first[k] = min(first.get(k, at), at)
    fast = [(at - sent[e]) * 1000 for (e, c), at in first.items() if c == "fast"]
    heavy = [(at - sent[e]) * 1000 for (e, c), at in first.items() if c == "heavy"]
    got = {e for (e, c) in first if c == "fast"}
    late = sum(1 for e in expected_fast if window[0] <= sent.get(e, -1) < window[1] and e not in got)
    return fast, late, heavy


def run_rate(stack: Stack, traffic: Traffic, rate: float, warmup: float, seconds: float, grace: float,
             tag: str) -> RateResult:
    """Offer ``rate`` events/s for ``warmup`` + ``seconds`` and measure the second part."""
    n = int(rate * (warmup + seconds))
    templates = traffic.events(n, f"{tag}-{int(rate)}")
    expected_fast = {t.event_id for t in templates if t.kind in ("inference_error", "inference_slow")}
    collector = Collector(stack.kafka.bootstrap)
    collector.start()
    collector.ready.wait(30)
    sent: dict[str, float] = {}
    marks: dict[str, Any] = {}
    sender = threading.Thread(target=send, args=(stack.kafka.bootstrap, templates, rate, sent, marks), daemon=True)
    sender.start()
    time.sleep(warmup)
    start = snapshot(stack)
    time.sleep(seconds)
    end = snapshot(stack)
    sender.join()
    sent_in = sum(1 for t in sent.values() if start.at <= t < end.at)
    # decisions about events of the measured period still on their way
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        fast, late, _ = latencies(list(collector.records), sent, (start.at, end.at), expected_fast)
        if not late:
            break
        time.sleep(1)
    time.sleep(1)
    collector.stopping.set()
    collector.join()
    fast, late, heavy = latencies(collector.records, sent, (start.at, end.at), expected_fast)
    done = sum(events_done(m) for m in end.metrics) - sum(events_done(m) for m in start.metrics)
    span = end.at - start.at
    d_cpu = {k: end.cpu[k] - start.cpu.get(k, 0.0) for k in end.cpu}
    prof: dict[str, float] = defaultdict(float)
    delay: dict[float, float] = defaultdict(float)
    for a, b in zip(start.metrics, end.metrics):
        sa, sb = stage_sums(a), stage_sums(b)
        for k, v in sb.items():
            prof[k] += v - sa.get(k, 0.0)
        da, db = loop_delay_buckets(a), loop_delay_buckets(b)
        for le, count in db.items():
            delay[le] += count - da.get(le, 0.0)
    return RateResult(rate=rate, offered=sent_in / span, achieved=done / span, lag_start=start.lag, lag_end=end.lag,
                      fast=fast, fast_late=late, heavy=heavy,
                      cpu_per_1000=d_cpu["workers"] / max(done, 1) * 1000, rss=end.rss,
                      other_cpu={k: v / span for k, v in d_cpu.items()},
                      profile={k: v * 1000 / max(done, 1) for k, v in prof.items()}, events=done,
                      per_worker_events=[events_done(b) - events_done(a) for a, b in zip(start.metrics, end.metrics)],
                      sent=len(templates), loop_delay=dict(delay))


def _ms(xs: list[float], q: float, late: int = 0) -> str:
    if late:
        return ">grace"
    return f"{_pct(xs, q):,.0f}" if xs else "-"


def print_result(r: RateResult) -> None:
    print(f"{r.rate:>6,.0f} | {r.offered:>8,.0f} | {r.achieved:>8,.0f} | {r.lag_start:>8,} → {r.lag_end:<8,} "
          f"{'flat' if r.flat else 'GROWS':5} | {_ms(r.fast, .5):>6} / {_ms(r.fast, .99, r.fast_late):>6} "
          f"(n={len(r.fast)}{f', {r.fast_late} late' if r.fast_late else ''}) | "
          f"{_ms(r.heavy, .5):>6} / {_ms(r.heavy, .99):>6} (n={len(r.heavy)}) | {r.cpu_per_1000:6.1f} | "
          f"{r.rss:6.0f}", flush=True)
    cores = ", ".join(f"{k} {v:.2f}" for k, v in sorted(r.other_cpu.items()) if not k.startswith("worker"))
    print(f"         CPU cores in use: {cores}; per worker: "
          + ", ".join(f"{k} {v:.2f}" for k, v in sorted(r.other_cpu.items()) if k.startswith("worker")))
    stages = ", ".join(f"{k.split(':')[1]} {v:.2f}" for k, v in r.profile.items() if k.startswith("stage:"))
    dets = ", ".join(f"{k.split(':')[1]} {v:.2f}" for k, v in r.profile.items() if k.startswith("detector:"))
    print(f"         per event (ms, worker metrics): stages: {stages}; detectors: {dets}", flush=True)
    p50, p99 = bucket_quantile(r.loop_delay, 0.5), bucket_quantile(r.loop_delay, 0.99)
    if p50 is not None and p99 is not None:
        print(f"         event-loop delay (a 0.1 s sleep woke late by, bucket upper bounds): p50 <= {p50 * 1000:g} ms, "
              f"p99 <= {p99 * 1000:g} ms", flush=True)


HEADER = ("  rate |  offered | achieved | lag start → end         | fast p50 / p99 ms      | heavy p50 / p99 ms     "
          "| CPU-s/1k | RSS MiB")


def settings_env(pairs: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` pairs of ``--set`` as the processes' ``WARDEN_NAME`` environment."""
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--set takes NAME=VALUE, not {pair!r}")
        env["WARDEN_" + name.upper().removeprefix("WARDEN_")] = value
    return env


def make_stack(partitions: int, extra_env: dict[str, str]) -> Stack:
    kafka = start_kafka(partitions=partitions)
    try:
        pg = start_postgres()
    except Exception:
        kafka.stop()
        raise
    logs = Path(tempfile.mkdtemp(prefix="warden-sustained-"))
    env = warden_env(kafka_bootstrap=kafka.bootstrap, database_url=pg.url, admin_key=KEY, api_port=free_port(),
                     topic_partitions=partitions, log_level="WARNING",
                     consumer_group=f"w-{uuid.uuid4().hex[:6]}", governance_group=f"g-{uuid.uuid4().hex[:6]}")
    env.update(extra_env)
    return Stack(kafka, pg, env, logs)


def pin_references(stack: Stack, traffic: Traffic, per_model: int) -> None:
    """Production deployments, then ``per_model`` inference events per model (their drift references pin)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": stack.kafka.bootstrap, "linger.ms": 5, "acks": "all"})
    templates = traffic.deployments("deploy")
    for k in range(per_model):
        templates += [traffic._inference("ref", k * len(traffic.subjects) + j, s)
                      for j, s in enumerate(traffic.subjects)]
    for t in templates:
        _produce(producer, t, 0.05)
        producer.poll(0)
    producer.flush(120)
    started = time.monotonic()
    while lag(stack.kafka.bootstrap, stack.group) > 0:
        time.sleep(2)
    print(f"drift references: {len(templates):,} events processed in {time.monotonic() - started:.0f}s "
          f"after sending", flush=True)


def sweep(args: argparse.Namespace) -> None:
    rates = [float(r) for r in args.rates.split(",")]
    traffic = Traffic(seed=args.seed)
    with ExitStack() as ex:
        stack = make_stack(args.partitions, settings_env(args.set))
        ex.callback(stack.stop)
        stack.start_api()
        for _ in range(args.workers):
            stack.add_worker()
        wait_consuming(stack)
        print(f"stack up: Apache Kafka ({args.partitions} partitions), PostgreSQL, API, {args.workers} worker(s); "
              f"load average {os.getloadavg()[0]:.2f}", flush=True)
        pin_references(stack, traffic, args.reference_events)
        results = []
        print(HEADER, flush=True)
        for rate in rates:
            r = run_rate(stack, traffic, rate, args.warmup, args.seconds, args.grace, f"r{uuid.uuid4().hex[:4]}")
            results.append(r)
            print_result(r)
            if lag(stack.kafka.bootstrap, stack.group) > rate * 2:
                skip_backlog(stack, args.workers)
            wait_consuming(stack, timeout=600)
            time.sleep(3)
    ok = [r.rate for r in results if r.sustainable]
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    print(f"sustainable rate (p99 <= 1 s, flat lag): {max(ok):,.0f} events/s" if ok else
          "sustainable rate (p99 <= 1 s, flat lag): below the lowest rate offered")


def scale_out(args: argparse.Namespace) -> None:
    traffic = Traffic(seed=args.seed)
    rates: dict[int, list[float]] = {}
    with ExitStack() as ex:
        stack = make_stack(args.partitions, settings_env(args.set))
        ex.callback(stack.stop)
        stack.start_api()
        stack.add_worker()
        wait_consuming(stack)
        print(f"stack up; load average {os.getloadavg()[0]:.2f}", flush=True)
        pin_references(stack, traffic, args.reference_events)
        for count in (1, 2):
            while len(stack.workers) < count:
                stack.add_worker()
            wait_consuming(stack)
            time.sleep(5)  # the rebalance settles
            before = sum(events_done(w.metrics()) for w in stack.workers)
            r = run_rate(stack, traffic, args.rate, args.warmup, args.seconds, args.grace, f"s{count}")
            wait_consuming(stack, timeout=600)
            after = sum(events_done(w.metrics()) for w in stack.workers)
            print(f"{count} worker(s) at {args.rate:,.0f} events/s offered:")
            print(HEADER)
            print_result(r)
            span = args.seconds
            rates[count] = [e / max(r.other_cpu[f"worker{i}"] * span, 1e-9)
                            for i, e in enumerate(r.per_worker_events)]
            print("  finished per worker over the measured period: "
                  + ", ".join(f"{e:,.0f} events / {r.other_cpu[f'worker{i}'] * span:.1f} CPU-s"
                              for i, e in enumerate(r.per_worker_events))
                  + f"; since the start of this rate: {after - before:,.0f} events finished for {r.sent:,} sent "
                  f"({after - before - r.sent:+,.0f})", flush=True)
    one, two = rates[1][0], rates[2]
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    print(f"events per worker CPU-second: 1 worker {one:,.1f}; 2 workers "
          + " + ".join(f"{x:,.1f}" for x in two) + f" = {sum(two):,.1f} ({sum(two) / one:.2f}x the single worker)")


def profile(args: argparse.Namespace) -> None:
    """The pipeline alone, in this process (one core), on the same traffic: per-stage milliseconds per event."""
    from streams.pipeline import Pipeline, RawItem
    from warden.settings import Settings

    traffic = Traffic(seed=args.seed)
    settings = Settings()
    pipe = Pipeline(settings.pipeline_config(), settings.policy_engine())
    pipe.warm_up()
    warm = traffic.deployments("d")
    for k in range(args.reference_events):
        warm += [traffic._inference("ref", k * 100 + j, s) for j, s in enumerate(traffic.subjects)]
    items = [RawItem(t.payload(), t.topic, 0, i, t.key) for i, t in enumerate(warm)]
    fast = getattr(pipe.config, "fast_path", False)  # (False on commits before the fast path: the baseline)
    for k in range(0, len(items), args.batch):
        if fast:
            pipe.process_fast(items[k:k + args.batch])
        pipe.process_batch(items[k:k + args.batch])
        pipe.drain_aggregates()
    if pipe.pii is not None:
        pipe.pii.stats.clear()
    templates = traffic.events(args.events, "p")
    items = [RawItem(t.payload(), t.topic, 0, i, t.key) for i, t in enumerate(templates)]
    spent: dict[str, float] = defaultdict(float)
    wall, cpu = time.perf_counter(), time.process_time()
    for k in range(0, len(items), args.batch):
        if fast:
            _, timings = pipe.process_fast(items[k:k + args.batch])
            for name, s in [*timings.stages.items(), *((f"d:{k}", v) for k, v in timings.detectors.items())]:
                spent[f"detector:{name[2:]}" if name.startswith("d:") else f"stage:{name}"] += s
        pipe.process_batch(items[k:k + args.batch])
        pipe.drain_aggregates()
        for name, s in pipe.timings.stages.items():
            spent[f"stage:{name}"] += s
        for name, s in pipe.timings.detectors.items():
            spent[f"detector:{name}"] += s
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n = len(items)
    print(f"pipeline alone, {n:,} events after the drift references pinned, batches of {args.batch}: "
          f"{cpu * 1000 / n:.2f} CPU-ms/event ({n / cpu:,.0f} events per CPU-second), {n / wall:,.0f} events/s wall")
    print("per event (ms): stages: " + ", ".join(f"{k[6:]} {v * 1000 / n:.2f}" for k, v in spent.items()
                                                 if k.startswith("stage:"))
          + "; detectors: " + ", ".join(f"{k[9:]} {v * 1000 / n:.2f}" for k, v in spent.items()
                                        if k.startswith("detector:")))
    print(f"texts analysed for PII per event: {pipe.pii.stats['analyzed'] / n:.2f} (cache hits "
          f"{pipe.pii.stats['cache_hits'] / n:.2f})" if pipe.pii is not None else "PII off")
    stats = getattr(pipe, "text_stats", None)
    if stats is not None:
        print(f"texts embedded per event: drift {stats['drift_embedded'] / n:.2f}, security "
              f"{stats['security_embedded'] / n:.2f} (both counts include the warm-up)")
    print(f"{statistics.mean(len(t.payload()) for t in templates):,.0f} bytes per event")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="100,250,500,1000,2000", help="offered rates, events/s, comma-separated")
    ap.add_argument("--seconds", type=float, default=60.0, help="measured seconds per rate")
    ap.add_argument("--warmup", type=float, default=15.0, help="seconds of the rate before measuring")
    ap.add_argument("--grace", type=float, default=20.0, help="seconds to wait for late decisions")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--reference-events", type=int, default=520,
                    help="inference events per model before the rates (the drift reference is 500)")
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="a Warden setting for every process, e.g. --set WORKER_TEXT_PROCESSES=2 (repeatable)")
    ap.add_argument("--scale-out", action="store_true", help="1 worker then 2 at --rate: events per CPU-second")
    ap.add_argument("--rate", type=float, default=150.0, help="offered rate of --scale-out")
    ap.add_argument("--profile", action="store_true", help="the pipeline alone, in-process, per stage")
    ap.add_argument("--events", type=int, default=3000, help="events of --profile")
    ap.add_argument("--batch", type=int, default=100, help="batch size of --profile")
    args = ap.parse_args()
    # a bench stopped with SIGTERM (kill, timeout) still stops the stack it started (the ExitStack unwinds)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.profile:
        profile(args)
    elif args.scale_out:
        scale_out(args)
    else:
        sweep(args)


if __name__ == "__main__":
    main()
