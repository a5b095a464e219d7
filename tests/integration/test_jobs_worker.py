"""Job workers on a real Apache Kafka broker: progress → succeeded, rollback latency, cancellation, and a
worker killed mid-job whose job is re-run by a second worker. The workers are real processes
(``python -m jobs.runner``) sharing an artifact directory and a file registry; the test side reads the
topics with confluent-kafka (another client than the workers')."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from confluent_kafka import Consumer

from api import job_client as client
from contracts.jobs import JobSpec, TrainSpec
from contracts.topics import DEPLOYMENTS, JOB_STATUS
from jobs.datasets import JsonlHistory
from jobs.registry_port import JsonFileRegistry
from jobs.synthetic import support_history
from streams.admin import TopicSpec, ensure_topics
from tests.support.kafka import KafkaBroker
from tests.support.procs import ROOT, poll, stop

pytestmark = pytest.mark.kafka
TENANT = "acme"


class TopicTail:
    """Every message of a topic, read by a background thread."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.items: list[tuple[float, dict[str, Any]]] = []
        self._stop = threading.Event()
        self._c = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                            "auto.offset.reset": "earliest", "enable.auto.commit": False})
        self._c.subscribe([topic])
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            msg = self._c.poll(0.1)
            if msg is not None and not msg.error():
                self.items.append((time.monotonic(), json.loads(msg.value())))
        self._c.close()

    def close(self) -> None:
        self._stop.set()
        self._t.join(10)


@dataclass
class Cluster:
    kafka: KafkaBroker
    dir: Path
    group: str
    statuses: TopicTail
    deployments: TopicTail
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def registry(self) -> JsonFileRegistry:
        return JsonFileRegistry(self.dir / "registry.json")

    def spawn(self, worker_id: str) -> subprocess.Popen[bytes]:
        log = open(self.dir / f"{worker_id}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobs.runner", "--bootstrap", self.kafka.bootstrap, "--group", self.group,
             "--worker-id", worker_id, "--artifact-root", str(self.dir / "artifacts"),
             "--registry", str(self.dir / "registry.json"), "--history", str(self.dir / "history.jsonl"),
             "--session-timeout-s", "6", "--lease-s", "1", "--threads", "1", "--device", "cpu"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.workers[worker_id] = proc
        return proc

    def log(self, worker_id: str) -> str:
        return (self.dir / f"{worker_id}.log").read_text()[-3000:]

    def of(self, job_id: str) -> list[dict[str, Any]]:
        return [s for _, s in self.statuses.items if s["job_id"] == job_id]

    def terminal(self, job_id: str) -> dict[str, Any] | None:
        done = [s for s in self.of(job_id) if s["state"] in ("succeeded", "failed", "cancelled")]
        return done[-1] if done else None


def _publish(bootstrap: str, coro_fn: Any) -> None:
    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            await coro_fn(producer)
        finally:
            await producer.stop()

    asyncio.run(go())


def _submit(c: Cluster, job: JobSpec) -> float:
    _publish(c.kafka.bootstrap, lambda p: client.submit(p, job))
    return time.monotonic()


@pytest.fixture(scope="module")
def cluster(kafka: KafkaBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    asyncio.run(ensure_topics(kafka.bootstrap, TopicSpec()))
    d = tmp_path_factory.mktemp("jobs")
    JsonlHistory.write(d / "history.jsonl", support_history(500, tenant=TENANT, style="mixed", seed=0))
    c = Cluster(kafka, d, f"jobs-{uuid.uuid4().hex[:6]}", TopicTail(kafka.bootstrap, JOB_STATUS),
                TopicTail(kafka.bootstrap, DEPLOYMENTS))
    c.spawn("worker-a")
    try:
        yield c
    finally:
        for proc in c.workers.values():
            stop(proc)
        c.statuses.close()
        c.deployments.close()


def _tiny_job(**train: Any) -> JobSpec:
    spec = TrainSpec(**{"task": "classification", "base": "tiny", "batch_size": 32, "learning_rate": 3e-3,
                        "max_length": 32, "epochs": 3, **train})
    return JobSpec(job_id=JobSpec.make_id(TENANT, "support-bot", "retrain", uuid.uuid4().hex), kind="retrain",
                   tenant=TENANT, model="support-bot", train=spec, promote="auto", max_attempts=3, timeout_s=600)


def test_job_is_queued_runs_with_progress_and_succeeds(cluster: Cluster) -> None:
    job = _tiny_job()
    _submit(cluster, job)
    done = poll(lambda: cluster.terminal(job.job_id), 240, what="terminal status")
    assert done["state"] == "succeeded", (done, cluster.log("worker-a"))
    states = [s["state"] for s in cluster.of(job.job_id)]
    assert states[0] == "queued" and states[-1] == "succeeded"
    # consumers order a job's statuses by (attempt, seq), as the governance service does
    running = sorted((s for s in cluster.of(job.job_id) if s["state"] == "running"),
                     key=lambda s: (s["attempt"], s["seq"]))
    assert {s["phase"] for s in running} >= {"train"} and {s["worker"] for s in running} == {"worker-a"}
    assert len({s["seq"] for s in running}) == len(running)
    progress = [s.get("progress", 0.0) for s in running]
    assert progress == sorted(progress) and max(progress) > 0.08, [(s["seq"], s["phase"], s.get("progress")) for s in running]
    assert done["progress"] == 1.0 and done["attempt"] == 1
    version = done["result"]["candidate_version"]
    mv = cluster.registry.get_version(TENANT, "support-bot", version)
    assert mv is not None and mv.job_id == job.job_id and mv.metrics["accuracy"] == done["result"]["challenger"]["accuracy"]
    assert cluster.registry.alias_version(TENANT, "support-bot") == version
    # the promotion was announced on warden.deployments
    poll(lambda: [d for _, d in cluster.deployments.items if d["model"]["version"] == version
                  and d["deployment"]["action"] == "promote"], 10, what="promote event")
    # the same job submitted again (idempotent id) is not run twice
    _submit(cluster, job)
    time.sleep(3)
    assert [s["state"] for s in cluster.of(job.job_id)].count("succeeded") == 1


def test_rollback_is_effective_within_two_seconds_of_approval(cluster: Cluster) -> None:
    reg, model = cluster.registry, f"rb-{uuid.uuid4().hex[:6]}"
    uri = reg.get_version(TENANT, "support-bot", "v1").artifact_uri
    for _ in range(2):
        mv = reg.register_version(TENANT, model, artifact_uri=uri, task="classification", metrics={})
        reg.set_alias(TENANT, model, "production", mv.version, action="promote", actor="ci")
    job = JobSpec(job_id=JobSpec.make_id(TENANT, model, "rollback", "incident-7"), kind="rollback", tenant=TENANT,
                  model=model, approval="required", reason="error rate up after v2")
    _submit(cluster, job)  # needs approval: nothing happens
    time.sleep(2)
    assert [s["state"] for s in cluster.of(job.job_id)] == ["awaiting_approval"]
    assert reg.alias_version(TENANT, model) == "v2"
    approved_at = _submit(cluster, job.approve("operator@acme"))
    event = poll(lambda: [(t, d) for t, d in cluster.deployments.items if d["model"]["name"] == model], 10,
                 interval=0.02, what="rollback event")
    latency = event[0][0] - approved_at
    print(f"rollback: deployment event {latency * 1000:.0f} ms after approval")
    assert latency < 2.0
    ev = event[0][1]
    assert ev["deployment"]["action"] == "rollback" and ev["model"]["version"] == "v1"
    assert ev["deployment"]["previous_version"] == "v2" and ev["deployment"]["actor"] == "operator@acme"
    assert reg.alias_version(TENANT, model) == "v1"
    assert poll(lambda: cluster.terminal(job.job_id), 10, what="rollback status")["state"] == "succeeded"


def test_cancel_stops_a_running_job(cluster: Cluster) -> None:
    job = _tiny_job(epochs=500)
    _submit(cluster, job)
    poll(lambda: [s for s in cluster.of(job.job_id) if s.get("phase") == "train"], 120, what="training")
    _publish(cluster.kafka.bootstrap, lambda p: client.cancel(p, job.job_id, "admin@acme", "wrong window"))
    done = poll(lambda: cluster.terminal(job.job_id), 30, what="cancelled")
    assert done["state"] == "cancelled" and "admin@acme" in done["message"]
    assert all(v.job_id != job.job_id for v in cluster.registry.versions(TENANT, "support-bot"))


def test_a_job_past_its_timeout_fails(cluster: Cluster) -> None:
    job = _tiny_job(epochs=500).model_copy(update={"timeout_s": 4.0})
    _submit(cluster, job)
    done = poll(lambda: cluster.terminal(job.job_id), 120, what="time-out")
    assert done["state"] == "failed" and "timed out after 4s" in done["error"] and done["attempt"] == 1


def test_errors_are_retried_a_bounded_number_of_times(cluster: Cluster) -> None:
    from jobs.artifacts import ArtifactStore

    store = ArtifactStore(cluster.dir / "artifacts")
    ref = store.put_files({"config.json": b'{"model_type": "gpt2"}', "weights.bin": b"\x00" * 64}, "model")
    (store.open("model", ref.digest, verify=False) / "weights.bin").write_bytes(b"\x01" * 64)  # corrupted on disk
    mv = cluster.registry.register_version(TENANT, "support-bot", artifact_uri=ref.uri, task="classification",
                                           metrics={}, job_id=f"seed-{ref.digest[:8]}")
    job = _tiny_job(base=mv.version).model_copy(update={"max_attempts": 2})
    _submit(cluster, job)
    done = poll(lambda: cluster.terminal(job.job_id), 120, what="failure after retries")
    assert done["state"] == "failed" and done["attempt"] == 2 and "ChecksumError" in done["error"]
    retries = [s for s in cluster.of(job.job_id) if s.get("phase") == "retrying"]
    assert len(retries) == 1 and retries[0]["attempt"] == 1


def test_a_job_whose_worker_dies_is_rerun_by_another(cluster: Cluster) -> None:
    job = _tiny_job(epochs=40, checkpoint_every=20)
    _submit(cluster, job)

    def step() -> int:
        msgs = [s.get("message") or "" for s in cluster.of(job.job_id) if s.get("phase") == "train"]
        return max([int(m.split()[1].split("/")[0]) for m in msgs if m.startswith("step ")] or [0])

    poll(lambda: step() >= 30, 180, what="A past its first checkpoint")
    # a second worker joins the group while A is busy (the group rebalances in the background) ...
    cluster.spawn("worker-b")
    poll(lambda: "job worker ready" in cluster.log("worker-b"), 120, what="worker B ready")
    assert cluster.terminal(job.job_id) is None, "the job must still be running when A dies"
    # ... and A dies mid-job: its job is not committed, so B re-runs it once A's lease has expired
    stop(cluster.workers["worker-a"], signal.SIGKILL)
    done = poll(lambda: cluster.terminal(job.job_id), 300, what="re-run on B")
    assert done["state"] == "succeeded", (done, cluster.log("worker-b"))
    assert done["worker"] == "worker-b" and done["attempt"] == 2
    assert done["result"]["train"]["resumed_from"] >= 20  # B continued from A's last checkpoint
    workers = {(s["worker"], s["attempt"]) for s in cluster.of(job.job_id) if s["state"] == "running"}
    assert ("worker-a", 1) in workers and ("worker-b", 2) in workers
    assert [v.job_id for v in cluster.registry.versions(TENANT, "support-bot")].count(job.job_id) == 1
