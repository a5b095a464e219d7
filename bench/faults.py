"""Reliability under faults: steady load, one fault after another, and what was lost or duplicated.

    python -m bench.faults [--rate 200] [--outage-s 30] [--refuse-s 60] [--faults all]

Starts Apache Kafka 4.x (KRaft) and PostgreSQL as the test suite does, a signed-webhook receiver, the
governance API (with its governance consumer and alert dispatcher) and 2 stream workers as real
processes, and offers a steady load for the whole run: ``--rate`` distinct events/s published with
confluent-kafka (a client Warden does not use), of which ~10 % breach the latency SLO (a finding and an
alert per model), ~5 % are malformed of every kind (bad JSON, invalid UTF-8, wrong types, unknown schema
version, oversized) and ~5 % of the valid ones go through ``POST /v1/events`` instead (retried after
``Retry-After`` on a 503, as a client should). Then, one after another, each fault in its own phase (its
own tenant, so each phase is accounted for on its own):

* ``worker``: SIGKILL a stream worker at a random moment (three times), and once right after a detector
  checkpoint is written (the worker's ``warden_worker_checkpoints_total`` polled every 20 ms);
* ``broker``: stop the Kafka broker for ``--outage-s``, then start it again (same port and log directory);
* ``postgres``: stop PostgreSQL for ``--outage-s``, then start it again;
* ``api``: SIGKILL the API (and its governance consumer) while it persists a batch;
* ``receiver``: the webhook receiver refuses connections for ``--refuse-s``, then answers slowly (some
  answers later than the destination's time-out, so notifications are sent again);
* ``diskfull``: an API on SQLite (embedded mode's store) whose filesystem fills up (a tmpfs of a few MB
  mounted for it when running as root, else ``RLIMIT_FSIZE`` on the API process), then gets space back.

A supervisor thread acts as a deployment's restart policy: a dead process (worker, API) is restarted a
second later. After each fault the harness checks, from the store, the topics and the receiver's log —
not from the processes' own counters — that every valid event's finding is stored exactly once, every
malformed event is in the store's DLQ (and on ``warden.dlq``) with its reason, every alert reached the
receiver at least once and no notification was shown twice (see ``tests.support.receiver``), that
``/healthz`` said ``degraded`` naming the dependency during the fault and ``ok`` after, that no process
was left dead, and how long recovery took: from the end of the fault until ``/healthz`` is ``ok`` again
and everything sent before the fault's end is stored (and its alerts delivered).

It prints a table per fault and a last line ``lost=N duplicated=M``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, Producer, TopicPartition
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from detectors.finding import stable_id
from tests.events import MINIMAL
from tests.support.kafka import KafkaBroker, free_port, start_kafka
from tests.support.postgres import PostgresCluster, start_postgres
from tests.support.procs import ROOT, spawn, warden_env
from tests.support.receiver import read_log, shown

KEY = "faults-admin-key"
SECRET = "faults-webhook-secret"
MAX_EVENT_BYTES = 64 * 1024
SLO_MS = 5000
MALFORMED_KINDS = ("bad_json", "invalid_utf8", "wrong_types", "unknown_schema_version", "oversized")
#: the rejection code each kind of malformed event must get
MALFORMED_CODES = {"bad_json": "malformed_json", "invalid_utf8": "invalid_utf8", "wrong_types": "validation_error",
                   "unknown_schema_version": "unsupported_schema_version", "oversized": "payload_too_large"}
#: the dependency each /healthz reason names (the first match wins)
REASON_LABELS = (("broker is not reachable", "broker"), ("database is not reachable", "database"),
                 ("store", "store"), ("stream worker", "worker"), ("governance consumer", "consumer"),
                 ("messages behind", "lag"), ("alert notifications", "outbox"))
PROMPTS = ("Where is my order?", "Can you summarise this article for me?", "What is the refund policy?",
           "Translate good morning into French.", "How do I reset the router?")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- options


@dataclass
class Options:
    """What a run offers and does (the reduced tests pass smaller values)."""

    rate: float = 200.0
    models: int = 10
    """Models per phase (each gets an alert when one of its events breaches the SLO)."""
    outage_s: float = 30.0
    refuse_s: float = 60.0
    slow_s: float = 45.0
    """How long the receiver answers slowly after refusing."""
    worker_kills: int = 3
    warm_s: float = 10.0
    tail_s: float = 5.0
    settle_s: float = 240.0
    """The longest wait, after a fault, for the store to catch up and health to be ok."""
    faults: tuple[str, ...] = ("worker", "broker", "postgres", "api", "receiver", "diskfull")
    http_share: float = 0.05
    restart_delay_s: float = 1.0
    workers: int = 2
    baseline: bool = True
    """Start with a phase without a fault (the harness checking itself)."""
    workdir: Path | None = None
    seed: int = 24


# ---------------------------------------------------------------- supervised processes


@dataclass
class Managed:
    """A process the supervisor keeps running (unless held down on purpose)."""

    name: str
    start: Callable[[], subprocess.Popen[bytes]]
    proc: subprocess.Popen[bytes] | None = None
    held: bool = False
    restarts: int = 0
    started_at: float = 0.0
    died_at: float | None = None

    def launch(self) -> None:
        self.proc = self.start()
        self.started_at = time.time()
        self.died_at = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Supervisor(threading.Thread):
    """A deployment's restart policy: a dead process that is not held down comes back ``delay_s`` later."""

    def __init__(self, delay_s: float) -> None:
        super().__init__(daemon=True, name="supervisor")
        self.delay_s = delay_s
        self.procs: dict[str, Managed] = {}
        self.lock = threading.Lock()
        self._halt = threading.Event()
        self.events: list[tuple[float, str, str]] = []

    def add(self, m: Managed) -> Managed:
        with self.lock:
            m.launch()
            self.procs[m.name] = m
        return m

    def run(self) -> None:
        while not self._halt.wait(0.25):
            with self.lock:
                for m in self.procs.values():
                    if m.held or m.alive():
                        continue
                    now = time.time()
                    if m.died_at is None:
                        m.died_at = now
                        code = m.proc.returncode if m.proc is not None else None
                        self.events.append((now, m.name, f"exited ({code})"))
                    elif now - m.died_at >= self.delay_s:
                        m.restarts += 1
                        m.launch()
                        self.events.append((now, m.name, "restarted"))

    def dead(self) -> list[str]:
        with self.lock:
            return [m.name for m in self.procs.values() if not m.held and not m.alive()]

    def shutdown(self) -> None:
        self._halt.set()
        with self.lock:
            for m in self.procs.values():
                m.held = True
                m.stop()


# ---------------------------------------------------------------- what was sent


@dataclass
class PhaseLedger:
    """Everything offered during one phase (its tenant)."""

    tenant: str
    valid: dict[str, tuple[float, bool]] = field(default_factory=dict)
    """event id → (send time, expects a latency finding)."""
    malformed: dict[str, tuple[float, str]] = field(default_factory=dict)
    """sha256 of the payload → (send time, expected rejection code)."""
    slow_models: dict[str, float] = field(default_factory=dict)
    """model → first send time of an event of it that breaches the SLO (its alert)."""
    pending: dict[str, Any] = field(default_factory=dict)
    """produced, not yet acknowledged by the broker (id → (kind, payload info))."""
    producer_errors: int = 0
    http: Counter[str] = field(default_factory=Counter)
    http_slowest_s: float = 0.0

    def alert_ids(self, before: float = float("inf")) -> dict[str, str]:
        """alert id → model, for the models whose first slow event was sent before ``before``."""
        return {stable_id("alert", self.tenant, f"rule:{self.tenant}:{m}:latency_slo"): m
                for m, at in self.slow_models.items() if at <= before}


def valid_event(event_id: str, tenant: str, model: str, slow: bool, n: int) -> dict[str, Any]:
    ev = json.loads(json.dumps(MINIMAL))
    ev.update(event_id=event_id, tenant=tenant, occurred_at=datetime.now(UTC).isoformat())
    ev["model"]["name"] = model
    ev["inference"]["messages"] = [{"role": "user", "content": PROMPTS[n % len(PROMPTS)]}]
    ev["inference"]["latency_ms"] = 12_000 if slow else 300 + (n % 7) * 50
    return ev


def malformed_payload(kind: str, tag: str, tenant: str) -> bytes:
    """A unique malformed payload of ``kind`` (``tag`` makes it unique)."""
    if kind == "bad_json":
        return b'{"schema_version": "1", "event_id": "' + tag.encode() + b'", "tenant": '
    if kind == "invalid_utf8":
        return b'{"schema_version": "1", "event_id": "' + tag.encode() + b'", "tenant": "\xff\xfe"}'
    ev = valid_event(tag, tenant, "m0", False, 0)
    if kind == "wrong_types":
        ev["inference"]["latency_ms"] = "slow"
        ev["inference"]["messages"] = "hello"
    elif kind == "unknown_schema_version":
        ev["schema_version"] = "2"
    elif kind == "oversized":
        ev["inference"]["messages"] = [{"role": "user", "content": "x" * (MAX_EVENT_BYTES + 1024)}]
    return json.dumps(ev).encode()


class Load(threading.Thread):
    """Offers ``rate`` events/s for as long as it runs, to the phase's tenant."""

    def __init__(self, bootstrap: str, api_base: str, options: Options) -> None:
        super().__init__(daemon=True, name="load")
        self.options = options
        self.api_base = api_base
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                                  "linger.ms": 10, "message.timeout.ms": 900_000,
                                  "queue.buffering.max.messages": 1_000_000,
                                  "queue.buffering.max.kbytes": 1_048_576, "message.max.bytes": 2_000_000})
        self.lock = threading.Lock()
        self.phases: dict[str, PhaseLedger] = {}
        self.current: PhaseLedger | None = None
        self.n = 0
        self.model_base = 0
        """Added to the model number: raised to send to models that have had no alert yet."""
        self._halt = threading.Event()
        self.http_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="http")
        self.http = httpx.Client(timeout=httpx.Timeout(60.0), headers={"Authorization": f"Bearer {KEY}",
                                                                      "Content-Type": "application/json"})
        self.rng = random.Random(options.seed)

    def switch(self, tenant: str) -> PhaseLedger:
        with self.lock:
            self.current = self.phases[tenant] = PhaseLedger(tenant)
            return self.current

    def run(self) -> None:
        tick = 0.05
        next_at = time.monotonic()
        carry = 0.0
        while not self._halt.is_set():
            carry += self.options.rate * tick
            while carry >= 1.0:
                carry -= 1.0
                self._one()
            self.producer.poll(0)
            next_at += tick
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1.0:  # fell behind (a stall): do not burst to catch up
                next_at = time.monotonic()

    def _one(self) -> None:
        with self.lock:
            phase = self.current
            self.n += 1
            n, base = self.n, self.model_base
        if phase is None:
            return
        model = f"m{base + (n + n // 10) % self.options.models}"  # slow events (n % 10 == 3) visit every model
        now = time.time()
        if n % 20 == 7:  # 5 % malformed, every kind in turn
            kind = MALFORMED_KINDS[(n // 20) % len(MALFORMED_KINDS)]
            payload = malformed_payload(kind, f"{phase.tenant}-bad-{n}", phase.tenant)
            sha = hashlib.sha256(payload).hexdigest()
            self._produce(phase, payload, b"bad", ("malformed", sha, now, MALFORMED_CODES[kind]))
            return
        slow = n % 10 == 3  # 10 % breach the latency SLO
        event_id = f"{phase.tenant}-{n}"
        payload = json.dumps(valid_event(event_id, phase.tenant, model, slow, n)).encode()
        info = ("valid", event_id, now, slow, model)
        if self.rng.random() < self.options.http_share:
            self.http_pool.submit(self._post, phase, payload, info)
        else:
            self._produce(phase, payload, model.encode(), info)

    def _produce(self, phase: PhaseLedger, payload: bytes, key: bytes, info: tuple[Any, ...]) -> None:
        token = uuid.uuid4().hex
        with self.lock:
            phase.pending[token] = info

        def delivered(err: Any, _msg: Any) -> None:
            with self.lock:
                item = phase.pending.pop(token, None)
                if item is None:
                    return
                if err is not None:
                    phase.producer_errors += 1
                    return
                self._record(phase, item)

        while True:
            try:
                self.producer.produce("warden.inference", value=payload, key=key, on_delivery=delivered)
                return
            except BufferError:
                self.producer.poll(0.1)

    @staticmethod
    def _record(phase: PhaseLedger, item: tuple[Any, ...]) -> None:
        if item[0] == "malformed":
            _, sha, at, code = item
            phase.malformed[sha] = (at, code)
        else:
            _, event_id, at, slow, model = item
            phase.valid[event_id] = (at, slow)
            if slow and model not in phase.slow_models:
                phase.slow_models[model] = at

    def _post(self, phase: PhaseLedger, payload: bytes, info: tuple[Any, ...]) -> None:
        """POST /v1/events as a client should: on 503, wait Retry-After and send again (ids make it idempotent)."""
        deadline = time.monotonic() + 600
        while not self._halt.is_set() and time.monotonic() < deadline:
            started = time.monotonic()
            try:
                r = self.http.post(f"{self.api_base}/v1/events", content=payload)
                status = str(r.status_code)
                if r.status_code == 503:
                    status += " with Retry-After" if r.headers.get("retry-after") else " without Retry-After"
            except httpx.TimeoutException:
                status = "timeout"
            except httpx.HTTPError:
                status = "no connection"
            took = time.monotonic() - started
            with self.lock:
                phase.http[status] += 1
                phase.http_slowest_s = max(phase.http_slowest_s, took)
            if status == "202":
                with self.lock:
                    self._record(phase, info)
                return
            if status.startswith("4"):
                return  # a refusal of a valid event would be a bug: it shows in the HTTP column
            time.sleep(1.0)

    def stop(self, flush_s: float = 120.0) -> None:
        self._halt.set()
        self.join(timeout=5)
        self.http_pool.shutdown(wait=True, cancel_futures=True)
        self.producer.flush(flush_s)

    def outstanding(self, phase: PhaseLedger) -> int:
        """Events of ``phase`` produced and not yet acknowledged by the broker."""
        with self.lock:
            return len(phase.pending)


# ---------------------------------------------------------------- what the system says


class HealthWatch(threading.Thread):
    """``GET /healthz`` every second: (time, status or ``down``, dependency labels)."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True, name="health")
        self.base = base
        self.samples: list[tuple[float, str, tuple[str, ...]]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=5.0) as client:
            while not self._halt.wait(1.0):
                at = time.time()
                try:
                    body = client.get(f"{self.base}/healthz").json()
                    status, labels = body["status"], labels_of(body.get("reasons", []))
                except Exception:
                    status, labels = "down", ()
                self.samples.append((at, status, labels))

    def stop(self) -> None:
        self._halt.set()

    def latest_ok(self) -> bool:
        return bool(self.samples) and self.samples[-1][1] == "ok"

    def between(self, start: float, end: float) -> list[tuple[float, str, tuple[str, ...]]]:
        return [s for s in self.samples if start <= s[0] <= end]


def labels_of(reasons: list[str]) -> tuple[str, ...]:
    out = []
    for reason in reasons:
        for needle, label in REASON_LABELS:
            if needle in reason:
                out.append(label)
                break
        else:
            out.append("other")
    return tuple(sorted(set(out)))


def transitions(samples: list[tuple[float, str, tuple[str, ...]]]) -> str:
    """``ok → degraded(broker) → ok``: the states in order, repeats folded."""
    states: list[str] = []
    for _, status, labels in samples:
        state = f"{status}({','.join(labels)})" if labels else status
        if not states or states[-1] != state:
            states.append(state)
    return " → ".join(states) if states else "(no samples)"


class DlqTopic(threading.Thread):
    """Reads ``warden.dlq`` from the start: sha256 of each original payload → the codes it was filed under."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(daemon=True, name="dlq-topic")
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"faults-dlq-{uuid.uuid4().hex[:6]}",
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
        self.seen: dict[str, list[str]] = defaultdict(list)
        self.lock = threading.Lock()
        self._halt = threading.Event()

    def run(self) -> None:
        self.consumer.subscribe(["warden.dlq"])
        while not self._halt.is_set():
            msg = self.consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            record = json.loads(msg.value() or b"{}")
            sha = hashlib.sha256(base64.b64decode(record["original_b64"])).hexdigest()
            with self.lock:
                self.seen[sha].append(record["code"] if record.get("reason") else "")
        self.consumer.close()

    def stop(self) -> None:
        self._halt.set()


class Store:
    """Reads the store directly (SQL), not through the processes."""

    def __init__(self, url: str) -> None:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        self.engine: Engine = create_engine(url, pool_pre_ping=True, connect_args=(
            {"connect_timeout": 3} if url.startswith("postgresql") else {"timeout": 5}))

    def findings(self, tenant: str) -> Counter[tuple[str, str, str]]:
        """(event id, detector, kind) → rows."""
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT event_id, detector, kind, count(*) FROM findings WHERE tenant = :t "
                                     "AND event_id IS NOT NULL GROUP BY event_id, detector, kind"), {"t": tenant})
            return Counter({(r[0], r[1], r[2]): int(r[3]) for r in rows})

    def dead_letters(self, shas: list[str]) -> dict[str, list[tuple[str, str]]]:
        """sha256 → [(code, reason)] stored for it."""
        out: dict[str, list[tuple[str, str]]] = defaultdict(list)
        with self.engine.connect() as conn:
            for i in range(0, len(shas), 500):
                part = shas[i:i + 500]
                names = ", ".join(f":s{j}" for j in range(len(part)))
                rows = conn.execute(text(f"SELECT original_sha256, code, reason FROM dead_letters "
                                         f"WHERE original_sha256 IN ({names})"), {f"s{j}": s for j, s in enumerate(part)})
                for sha, code, reason in rows:
                    out[str(sha)].append((str(code), str(reason)))
        return out

    def alerts(self, tenant: str) -> set[str]:
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(text("SELECT alert_id FROM alerts WHERE tenant = :t"), {"t": tenant})}

    def dispose(self) -> None:
        self.engine.dispose()


# ---------------------------------------------------------------- the stack


@dataclass
class Stack:
    """Everything the run started."""

    options: Options
    workdir: Path
    kafka: KafkaBroker
    pg: PostgresCluster
    env: dict[str, str]
    base: str
    receiver_port: int
    receiver_log: Path
    supervisor: Supervisor
    worker_ports: dict[str, int] = field(default_factory=dict)
    extra: list[Callable[[], None]] = field(default_factory=list)

    def proc(self, name: str) -> Managed:
        return self.supervisor.procs[name]

    def workers(self) -> list[str]:
        return sorted(n for n in self.supervisor.procs if n.startswith("worker"))


def destinations(receiver_port: int) -> str:
    hook = {"type": "webhook", "url": f"http://127.0.0.1:{receiver_port}/hook", "secret": SECRET, "timeout_s": 2.0,
            "max_batch": 20, "max_age_s": 3600}
    return json.dumps({"destinations": {"webhook:ml-ops": hook}, "default_route": "webhook:ml-ops"})


def receiver_command(port: int, log_path: Path, slow: tuple[float, float] | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "tests.support.receiver", "--port", str(port), "--secret", SECRET,
           "--log", str(log_path)]
    return cmd + (["--slow", str(slow[0]), str(slow[1])] if slow else [])


def start_stack(options: Options) -> Stack:
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="warden-faults-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log(f"work dir {workdir}; starting Apache Kafka and PostgreSQL")
    kafka = start_kafka()
    pg = start_postgres()
    port, receiver_port = free_port(), free_port()
    receiver_log = workdir / "receiver.jsonl"
    env = warden_env(kafka_bootstrap=kafka.bootstrap, database_url=pg.url, admin_key=KEY, api_port=port,
                     latency_slo_ms=SLO_MS, max_event_bytes=MAX_EVENT_BYTES, drift_embeddings="false",
                     worker_heartbeat_s=1, health_worker_stale_s=8, health_expect_worker="true",
                     health_outbox_max_age_s=20, health_max_lag=20_000, state_checkpoint_s=5,
                     alert_destinations=destinations(receiver_port), log_level="INFO", log_json="true")
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    sup = Supervisor(options.restart_delay_s)
    stack = Stack(options, workdir, kafka, pg, env, f"http://127.0.0.1:{port}", receiver_port, receiver_log, sup)

    def receiver() -> subprocess.Popen[bytes]:
        out = open(workdir / "receiver.log", "ab")  # noqa: SIM115
        return subprocess.Popen(receiver_command(receiver_port, receiver_log), stdout=out, stderr=subprocess.STDOUT,
                                cwd=ROOT, env=env, start_new_session=True)

    sup.add(Managed("receiver", receiver))
    sup.add(Managed("api", lambda: spawn("api", env, workdir / "api.log")))
    for i in range(1, options.workers + 1):
        name, web = f"worker{i}", free_port()
        stack.worker_ports[name] = web
        wenv = {**env, "WARDEN_WORKER_ID": name, "WARDEN_WORKER_WEB_PORT": str(web),
                "WARDEN_DATA_DIR": str(workdir / name)}
        sup.add(Managed(name, _worker_start(wenv, workdir / f"{name}.log")))
    sup.start()
    return stack


def _worker_start(env: dict[str, str], log_path: Path) -> Callable[[], subprocess.Popen[bytes]]:
    return lambda: spawn("worker", env, log_path)


def stop_stack(stack: Stack) -> None:
    stack.supervisor.shutdown()
    for undo in reversed(stack.extra):
        with contextlib.suppress(Exception):
            undo()
    stack.kafka.stop()
    stack.pg.stop()


def wait_for(fn: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(interval)
    return None


def wait_ready(stack: Stack, health: HealthWatch, timeout: float = 300.0) -> None:
    """Healthy, and every worker has a heartbeat on record."""
    def ready() -> bool:
        try:
            body = httpx.get(f"{stack.base}/healthz", timeout=5).json()
        except Exception:
            return False
        running = [w for w, v in body.get("workers", {}).items() if v["state"] == "running"]
        return body["status"] == "ok" and len(running) >= stack.options.workers
    if not wait_for(ready, timeout):
        raise TimeoutError(f"the stack was not ready within {timeout}s (see {stack.workdir})")


# ---------------------------------------------------------------- accounting


@dataclass
class Row:
    """One line of the table."""

    fault: str
    sent: int = 0
    findings_expected: int = 0
    findings_stored: int = 0
    findings_duplicated: int = 0
    dlq_expected: int = 0
    dlq_stored: int = 0
    dlq_wrong: int = 0
    dlq_topic_missing: int = 0
    alerts_expected: int = 0
    alerts_delivered: int = 0
    notifications_shown_twice: int = 0
    repeats_dropped: int = 0
    health: str = ""
    health_ok: bool = False
    recovery_s: float | None = None
    dead_after: list[str] = field(default_factory=list)
    http: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return (self.findings_expected - self.findings_stored) + (self.dlq_expected - self.dlq_stored) + \
            (self.alerts_expected - self.alerts_delivered)

    @property
    def duplicated(self) -> int:
        return self.findings_duplicated + self.notifications_shown_twice


@dataclass
class Tally:
    expected_findings: set[str]
    stored_findings: set[str]
    duplicated: int
    expected_dlq: dict[str, str]
    stored_dlq: int
    stored_dlq_shas: set[str]
    wrong_dlq: int
    expected_alerts: dict[str, str]
    stored_alerts: set[str]
    delivered: set[str]
    shown_twice: int
    repeats: int

    def complete(self, *, all_alerts: bool = False) -> bool:
        """Everything expected is there; with ``all_alerts``, every alert stored for the tenant (also those of
        aggregate policies, e.g. the PII ratio) reached the receiver too."""
        alerts = set(self.expected_alerts) | (self.stored_alerts if all_alerts else set())
        return (self.expected_findings <= self.stored_findings and self.stored_dlq == len(self.expected_dlq)
                and alerts <= self.delivered)

    def missing(self) -> dict[str, list[str]]:
        """What is not (yet) there: event ids, payload digests, alert ids."""
        return {"findings": sorted(self.expected_findings - self.stored_findings),
                "dlq": sorted(s for s in self.expected_dlq if s not in self.stored_dlq_shas),
                "alerts_not_stored": sorted(set(self.expected_alerts) - self.stored_alerts),
                "alerts_not_delivered": sorted(set(self.expected_alerts) - self.delivered)}

    def why_not(self) -> str:
        m = self.missing()
        return ", ".join(f"{len(v)} {k}" for k, v in m.items() if v) or "complete"


def tally(store: Store, phase: PhaseLedger, receiver_log: Path, lock: threading.Lock,
          before: float = float("inf")) -> Tally:
    """What the store and the receiver hold for the events of ``phase`` sent before ``before``."""
    with lock:
        valid = {e: slow for e, (at, slow) in phase.valid.items() if at <= before}
        malformed = {s: code for s, (at, code) in phase.malformed.items() if at <= before}
        alerts = phase.alert_ids(before)
    expected = {e for e, slow in valid.items() if slow}
    rows = store.findings(phase.tenant)
    latency = {e: n for (e, det, kind), n in rows.items() if det == "rule" and kind == "latency_slo"}
    duplicated = sum(n - 1 for n in rows.values() if n > 1)
    stored = {e for e in latency if e in valid}
    dead = store.dead_letters(list(malformed))
    stored_dlq = sum(1 for s in malformed if dead.get(s))
    wrong = sum(1 for s, code in malformed.items() if dead.get(s) and (dead[s][0][0] != code or not dead[s][0][1]))
    duplicated += sum(len(v) - 1 for v in dead.values() if len(v) > 1)
    notes = [n for n in notifications(receiver_log) if n.get("tenant") == phase.tenant]
    first, repeats, twice = shown(notes)
    delivered = {n["alert_id"] for n in first.values() if n["event"] == "trigger"}
    stored_alerts = store.alerts(phase.tenant)
    return Tally(expected, stored, duplicated, malformed, stored_dlq, {s for s in malformed if dead.get(s)}, wrong,
                 alerts, stored_alerts, delivered, twice, repeats)


def notifications(path: Path) -> list[dict[str, Any]]:
    """Every notification delivered to ``path``: the webhook receiver's log, or a ``file`` destination's lines."""
    if path.suffix == ".jsonl" and path.name != "receiver.jsonl":
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip().endswith("}")]
    return read_log(path)


# ---------------------------------------------------------------- one phase


class Run:
    """A whole run: the stack, the load, the watchers, and one phase per fault."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.rng = random.Random(options.seed)
        self.run_id = uuid.uuid4().hex[:6]
        self.rows: list[Row] = []
        self.stack = start_stack(options)
        self.health = HealthWatch(self.stack.base)
        self.load = Load(self.stack.kafka.bootstrap, self.stack.base, options)
        self.dlq = DlqTopic(self.stack.kafka.bootstrap)
        self.store = Store(self.stack.pg.url)
        self.phase_no = 0

    def __enter__(self) -> Run:
        wait_ready(self.stack, self.health)
        log(f"stack ready: api {self.stack.base}, workers {self.stack.workers()}, kafka {self.stack.kafka.bootstrap}")
        self.health.start()
        self.dlq.start()
        self._next_tenant("warm-up")
        self.load.start()
        return self

    def __exit__(self, *_: object) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave processes behind
        try:
            self.load.stop(flush_s=10)
            self.health.stop()
            self.dlq.stop()
            self.store.dispose()
        finally:
            stop_stack(self.stack)

    def _next_tenant(self, name: str) -> PhaseLedger:
        self.phase_no += 1
        slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
        return self.load.switch(f"f{self.run_id}-{self.phase_no:02d}-{slug}")

    def phase(self, name: str, fault: Callable[[], tuple[float, float, list[str]]],
              expect: tuple[str, ...], store: Store | None = None,
              receiver_log: Path | None = None) -> Row:
        """Warm, inject ``fault`` (returns its start, its end and notes), wait for recovery, tally."""
        store = store or self.store
        receiver_log = receiver_log or self.stack.receiver_log
        ledger = self._next_tenant(name)
        started = time.time()
        time.sleep(self.options.warm_s)
        log(f"fault: {name}")
        fault_start, fault_end, notes = fault()
        log(f"fault over: {name} ({fault_end - fault_start:.0f} s); waiting for recovery")

        last_said = [time.monotonic()]

        def recovered() -> bool:
            dead, ok = self.stack.supervisor.dead(), self.health.latest_ok()
            try:
                t = tally(store, ledger, receiver_log, self.load.lock, before=fault_end)
                why = t.why_not()
            except Exception as exc:
                why = f"store not readable ({type(exc).__name__})"
            if not dead and ok and why == "complete":
                return True
            if time.monotonic() - last_said[0] > 20:
                last_said[0] = time.monotonic()
                log(f"  not recovered yet: dead={dead} health_ok={ok} missing: {why}")
            return False
        done = wait_for(recovered, self.options.settle_s)
        recovery = time.time() - fault_end if done else None
        time.sleep(self.options.tail_s)
        self._next_tenant(f"after-{name}")  # the next phase's load starts; this phase's tenant is closed
        wait_for(lambda: self.load.outstanding(ledger) == 0, 120)
        final = wait_for(lambda: (t := tally(store, ledger, receiver_log, self.load.lock)).complete(all_alerts=True) and t,
                         self.options.settle_s) or tally(store, ledger, receiver_log, self.load.lock)
        samples = self.health.between(started, time.time())
        during = {label for at, status, labels in samples if fault_start <= at <= fault_end + 15
                  for label in (labels or ((status,) if status == "down" else ()))}
        row = Row(name, sent=len(ledger.valid) + len(ledger.malformed))
        missing = final.missing()
        if any(missing.values()):
            path = self.stack.workdir / f"missing-{ledger.tenant}.json"
            path.write_text(json.dumps(missing, indent=1))
            notes.append(f"missing: {final.why_not()} (ids in {path})")
        row.findings_expected, row.findings_stored = len(final.expected_findings), len(
            final.expected_findings & final.stored_findings)
        row.findings_duplicated = final.duplicated
        row.dlq_expected, row.dlq_stored, row.dlq_wrong = len(final.expected_dlq), final.stored_dlq, final.wrong_dlq
        with self.dlq.lock:
            row.dlq_topic_missing = sum(1 for s in final.expected_dlq if not self.dlq.seen.get(s))
        row.alerts_expected = len(set(final.expected_alerts) | final.stored_alerts)
        row.alerts_delivered = len((set(final.expected_alerts) | final.stored_alerts) & final.delivered)
        row.notifications_shown_twice, row.repeats_dropped = final.shown_twice, final.repeats
        row.health = transitions(samples)
        if expect:
            row.health_ok = bool(set(expect) & during) and self.health.latest_ok()
        else:  # no fault: ok throughout
            row.health_ok = all(status == "ok" for _, status, _ in samples)
        row.recovery_s = recovery
        row.dead_after = self.stack.supervisor.dead()
        row.http = ", ".join(f"{k}: {v}" for k, v in sorted(ledger.http.items())) + (
            f"; slowest {ledger.http_slowest_s:.1f} s" if ledger.http else "")
        if ledger.producer_errors:
            notes.append(f"{ledger.producer_errors} events the producer gave up on (not counted as sent)")
        if expect and not set(expect) & during:
            notes.append(f"/healthz never named {'/'.join(expect)} during the fault (saw {sorted(during)})")
        row.notes = notes
        self.rows.append(row)
        log(f"{name}: lost={row.lost} duplicated={row.duplicated} recovery={recovery}")
        (self.stack.workdir / "table.txt").write_text(render(self.rows, "(run in progress)") + "\n")
        return row

    # ------------------------------------------------------------ the faults

    def kill_worker(self, at_checkpoint: bool = False) -> tuple[float, float, list[str]]:
        name = self.rng.choice(self.stack.workers())
        m = self.stack.proc(name)
        notes = []
        if at_checkpoint:
            port = self.stack.worker_ports[name]
            before = checkpoints_written(port)
            got = wait_for(lambda: (c := checkpoints_written(port)) is not None and before is not None
                           and c > before, 60, interval=0.02)
            notes.append(f"{name} killed right after checkpoint #{int((before or 0) + 1)}" if got
                         else f"{name}: no checkpoint seen within 60 s, killed anyway")
        else:
            time.sleep(self.rng.uniform(0, 5))
            notes.append(f"{name} killed at a random moment")
        start = time.time()
        m.kill()
        wait_for(lambda: m.alive() and m.started_at > start, 30, interval=0.2)  # the supervisor restarts it
        return start, time.time(), notes

    def broker_outage(self) -> tuple[float, float, list[str]]:
        start = time.time()
        self.stack.kafka.halt()
        time.sleep(min(5.0, self.options.outage_s / 3))
        victim = self.rng.choice(self.stack.workers())  # its restart starts while Kafka is away
        self.stack.proc(victim).kill()
        time.sleep(max(0.0, self.options.outage_s - (time.time() - start)))
        self.stack.kafka.resume()
        return start, time.time(), [f"broker stopped (SIGTERM) for {self.options.outage_s:.0f} s, same port and data; "
                                    f"{victim} SIGKILLed during the outage (restarted while Kafka was away)"]

    def postgres_outage(self) -> tuple[float, float, list[str]]:
        start = time.time()
        self.stack.pg.halt("fast")
        time.sleep(max(0.0, self.options.outage_s - (time.time() - start)))
        self.stack.pg.resume()
        return start, time.time(), [f"PostgreSQL stopped (fast) for {self.options.outage_s:.0f} s"]

    def kill_api(self) -> tuple[float, float, list[str]]:
        m = self.stack.proc("api")
        before = persisted_total(self.stack.base)
        # mid-batch: right after the consumer's persisted count moves, while the next batch is being written
        wait_for(lambda: (p := persisted_total(self.stack.base)) is not None and before is not None and p > before,
                 30, interval=0.05)
        start = time.time()
        m.kill()
        wait_for(lambda: m.alive() and m.started_at > start, 30, interval=0.2)
        return start, time.time(), ["API (and its governance consumer and dispatcher) killed while persisting"]

    def receiver_refuses(self) -> tuple[float, float, list[str]]:
        m = self.stack.proc("receiver")
        port, path = self.stack.receiver_port, self.stack.receiver_log
        start = time.time()
        with self.stack.supervisor.lock:
            m.held = True
        m.kill()
        # new models from now on: their first slow events raise alerts while nobody can take them, so the
        # notifications wait in the outbox (a phase's first alerts are all delivered during its warm-up)
        with self.load.lock:
            self.load.model_base += self.options.models
        time.sleep(self.options.refuse_s)
        out = open(self.stack.workdir / "receiver.log", "ab")  # noqa: SIM115
        slow = subprocess.Popen(receiver_command(port, path, slow=(0.5, 3.0)), stdout=out,
                                stderr=subprocess.STDOUT, cwd=ROOT, env=self.stack.env, start_new_session=True)
        end = time.time()
        time.sleep(self.options.slow_s)
        with self.stack.supervisor.lock:  # back to a normal receiver for what follows
            slow.terminate()
            slow.wait()
            m.launch()
            m.held = False
        return start, end, [f"receiver refused connections for {self.options.refuse_s:.0f} s, then answered in "
                            f"0.5–3 s (time-out 2 s) for {self.options.slow_s:.0f} s"]


def checkpoints_written(port: int) -> float | None:
    return metric(f"http://127.0.0.1:{port}/metrics", 'warden_worker_checkpoints_total{outcome="written"}')


def persisted_total(base: str) -> float | None:
    return metric(f"{base}/metrics", 'warden_persisted_total{kind="sample"}')


def metric(url: str, name: str) -> float | None:
    try:
        body = httpx.get(url, timeout=2).text
    except httpx.HTTPError:
        return None
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


# ---------------------------------------------------------------- embedded store: the disk fills up


@contextlib.contextmanager
def small_filesystem(path: Path, size_mb: int) -> Iterator[str]:
    """A tmpfs of ``size_mb`` at ``path`` (root only); yields how the full disk is simulated."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(path)], check=True,
                   capture_output=True)
    try:
        yield f"tmpfs of {size_mb} MB"
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def disk_full_phase(run: Run) -> Row:
    """An API on SQLite whose filesystem fills up, then gets space back; the store must hold everything once."""
    stack = run.stack
    root = stack.workdir / "sqlite-fs"
    dbdir = root / "data"
    group = f"g-sqlite-{run.run_id}"
    start_at_end(stack.kafka.bootstrap, group)
    port = free_port()
    files_log = stack.workdir / "sqlite-alerts.jsonl"
    env = {**stack.env, "WARDEN_DATABASE_URL": f"sqlite:///{dbdir / 'warden.db'}", "WARDEN_API_PORT": str(port),
           "WARDEN_GOVERNANCE_GROUP": group, "WARDEN_DATA_DIR": str(dbdir),
           "WARDEN_ALERT_DESTINATIONS": json.dumps({"destinations": {"local": {"type": "file", "path": str(files_log)}},
                                                    "default_route": "local"})}
    use_tmpfs = os.geteuid() == 0
    ctx = small_filesystem(root, 48) if use_tmpfs else contextlib.nullcontext("RLIMIT_FSIZE")
    with ctx as how:
        dbdir.mkdir(parents=True, exist_ok=True)
        api = Managed("api-sqlite", lambda: spawn("api", env, stack.workdir / "api-sqlite.log"))
        stack.supervisor.add(api)
        base = f"http://127.0.0.1:{port}"
        health = HealthWatch(base)
        health.start()
        try:
            wait_for(lambda: health.latest_ok(), 180)
            store = Store(f"sqlite:///{dbdir / 'warden.db'}")
            ballast = root / "ballast"

            def fault() -> tuple[float, float, list[str]]:
                start = time.time()
                if use_tmpfs:
                    free = shutil.disk_usage(root).free
                    with open(ballast, "wb") as f:  # leave ~3 MB: the store fills it within seconds
                        f.truncate(0)
                        f.write(b"\0" * max(0, free - 3 * 1024 * 1024))
                else:
                    import resource

                    assert api.proc is not None
                    size = (dbdir / "warden.db").stat().st_size
                    resource.prlimit(api.proc.pid, resource.RLIMIT_FSIZE, (size + 2 * 1024 * 1024,) * 2)
                full = wait_for(lambda: any("store" in s[2] for s in health.samples[-3:]), 90)
                time.sleep(20)  # stays full a while
                end = time.time()
                if use_tmpfs:
                    ballast.unlink()
                else:
                    import resource

                    assert api.proc is not None
                    resource.prlimit(api.proc.pid, resource.RLIMIT_FSIZE,
                                     (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
                return start, end, [f"{how}; health named the store within 90 s: {bool(full)}"]

            saved_health, run.health = run.health, health
            try:
                row = run.phase("SQLite disk full", fault, ("store",), store=store, receiver_log=files_log)
            finally:
                run.health = saved_health
            store.dispose()
        finally:
            health.stop()
            with stack.supervisor.lock:
                api.held = True
                api.stop()
                del stack.supervisor.procs[api.name]
    return row


def start_at_end(bootstrap: str, group: str) -> None:
    """Commit the end offsets of the stream's outputs for ``group``: a new consumer starts from now."""
    from contracts import topics

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        tps = []
        for topic in topics.GOVERNANCE_TOPICS:
            meta = consumer.list_topics(topic, timeout=10).topics[topic]
            for p in meta.partitions:
                high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                tps.append(TopicPartition(topic, p, high))
        consumer.commit(offsets=tps, asynchronous=False)
    finally:
        consumer.close()


# ---------------------------------------------------------------- the table


def render(rows: list[Row], load: str) -> str:
    """The table, the notes under it, the load, and the last line ``lost=N duplicated=M``."""
    head = ("fault", "sent", "findings exp/stored/dup", "DLQ exp/stored", "alerts exp/delivered/shown twice",
            "recovery s", "health (transitions)")
    lines = [head]
    for r in rows:
        lines.append((r.fault, str(r.sent), f"{r.findings_expected}/{r.findings_stored}/{r.findings_duplicated}",
                      f"{r.dlq_expected}/{r.dlq_stored}", f"{r.alerts_expected}/{r.alerts_delivered}/"
                      f"{r.notifications_shown_twice}", "never" if r.recovery_s is None else f"{r.recovery_s:.0f}",
                      ("" if r.health_ok else "NOT OK: ") + r.health))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head) - 1)]
    out = [" | ".join([*(c.ljust(w) for c, w in zip(line, widths)), line[-1]]) for line in lines]
    out.append("")
    for r in rows:
        extra = []
        if r.dlq_topic_missing or r.dlq_wrong:
            extra.append(f"DLQ: {r.dlq_topic_missing} not on warden.dlq, {r.dlq_wrong} with a wrong code or no reason")
        if r.repeats_dropped:
            extra.append(f"receiver dropped {r.repeats_dropped} repeated deliveries by delivery id (at-least-once)")
        if r.http:
            extra.append(f"POST /v1/events answers: {r.http}")
        if r.dead_after:
            extra.append(f"left dead: {', '.join(r.dead_after)}")
        for note in [*r.notes, *extra]:
            out.append(f"  {r.fault}: {note}")
    out.append(f"load: {load}")
    out.append(f"lost={sum(r.lost for r in rows)} duplicated={sum(r.duplicated for r in rows)}")
    return "\n".join(out)


def run_faults(options: Options) -> tuple[list[Row], str]:
    """Run every fault of ``options.faults`` in order; returns the rows and the rendered table."""
    loads = [os.getloadavg()[0]]
    with Run(options) as run:
        if options.baseline:
            run.phase("baseline (no fault)", lambda: (time.time(), time.time(), []), ())
        if "worker" in options.faults:
            for i in range(options.worker_kills):
                run.phase(f"worker SIGKILL #{i + 1}", run.kill_worker, ("worker",))
            run.phase("worker SIGKILL at checkpoint", lambda: run.kill_worker(at_checkpoint=True), ("worker",))
        loads.append(os.getloadavg()[0])
        if "broker" in options.faults:
            run.phase(f"Kafka down {options.outage_s:.0f} s", run.broker_outage, ("broker",))
        if "postgres" in options.faults:
            run.phase(f"PostgreSQL down {options.outage_s:.0f} s", run.postgres_outage, ("database",))
        loads.append(os.getloadavg()[0])
        if "api" in options.faults:
            run.phase("API SIGKILL mid-batch", run.kill_api, ("down",))
        if "receiver" in options.faults:
            run.phase(f"receiver refuses {options.refuse_s:.0f} s, then slow", run.receiver_refuses, ("outbox",))
        loads.append(os.getloadavg()[0])
        if "diskfull" in options.faults:
            disk_full_phase(run)
        loads.append(os.getloadavg()[0])
        rows = run.rows
        restarts = {n: m.restarts for n, m in run.stack.supervisor.procs.items()}
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    load = (f"offered {options.rate:g} events/s; 1-min load average during the run "
            f"{' / '.join(f'{x:.1f}' for x in loads)} on {os.cpu_count()} cores; restarts by the supervisor "
            f"{restarts}; at the end: {uptime}")
    return rows, render(rows, load)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGTERM, _interrupt)  # stop like Ctrl-C: every process started is stopped
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--outage-s", type=float, default=30.0)
    ap.add_argument("--refuse-s", type=float, default=60.0)
    ap.add_argument("--slow-s", type=float, default=45.0)
    ap.add_argument("--worker-kills", type=int, default=3)
    ap.add_argument("--faults", default="all", help="comma-separated: worker,broker,postgres,api,receiver,diskfull")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--seed", type=int, default=24)
    args = ap.parse_args()
    faults = Options.faults if args.faults == "all" else tuple(args.faults.split(","))
    options = Options(rate=args.rate, outage_s=args.outage_s, refuse_s=args.refuse_s, slow_s=args.slow_s,
                      worker_kills=args.worker_kills, faults=faults, workdir=args.workdir, seed=args.seed)
    _, table = run_faults(options)
    print(table, flush=True)


if __name__ == "__main__":
    main()
