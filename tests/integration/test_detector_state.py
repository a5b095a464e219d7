"""Drift monitors survive a killed worker on Apache Kafka 4.x: checkpointed into a changelogged table,
loaded by the next worker that sees the model."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer

from bench.drift_eval import read_jsonl
from tests.events import inference, raw
from tests.integration.test_spine_kafka import _produce
from tests.support.kafka import KafkaBroker, committed_lag, free_port
from tests.support.procs import poll, spawn, stop, wait_healthy, warden_env
from tests.support.stack import KEY

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def _events(tenant: str, corpus: str, prefix: str, n: int) -> list[tuple[bytes, bytes]]:
    out = []
    for i, r in enumerate(read_jsonl(f"bench/data/drift_{corpus}.jsonl")[:n]):
        ev = inference(f"{tenant}-{prefix}-{i}", tenant=tenant, messages=[{"role": "user", "content": r["prompt"]}],
                       response={"content": r["response"], "finish_reason": "stop"})
        out.append((b"support-bot", raw(ev)))
    return out


def _checkpointed(bootstrap: str, group: str, key: bytes) -> bool:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex, "auto.offset.reset": "earliest",
                         "enable.partition.eof": True})
    consumer.subscribe([f"{group}-detector-state-changelog"])
    try:
        idle = 0
        while idle < 3:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                idle += 1
            elif msg.key() == key and msg.value():
                return True
        return False
    finally:
        consumer.close()


def test_a_killed_worker_resumes_the_pinned_drift_reference(kafka: KafkaBroker, postgres: str,
                                                            tmp_path: Path) -> None:
    tenant = f"d-{uuid.uuid4().hex[:8]}"
    port = free_port()
    group = f"w-{uuid.uuid4().hex[:6]}"
    env = warden_env(kafka_bootstrap=kafka.bootstrap, database_url=postgres, admin_key=KEY, api_port=port,
                     consumer_group=group, governance_group=f"g-{uuid.uuid4().hex[:6]}", pii_enabled="false",
                     drift_embeddings="false", drift_reference_size=100, drift_window=50, state_checkpoint_s=1)
    procs: dict[str, Any] = {"api": spawn("api", env, tmp_path / "api.log"),
                             "worker": spawn("worker", env, tmp_path / "worker.log")}

    def drift_findings() -> int:
        with psycopg.connect(postgres) as conn:
            return int(conn.execute("SELECT count(*) FROM findings WHERE tenant = %s AND kind = 'distribution_drift'",
                                    (tenant,)).fetchone()[0])

    try:
        wait_healthy(f"http://127.0.0.1:{port}", procs["api"], tmp_path / "api.log")
        _produce(kafka.bootstrap, _events(tenant, "ref", "ref", 150))  # the first 100 pin the reference
        poll(lambda: _checkpointed(kafka.bootstrap, group, f"{tenant}/support-bot".encode()), 120, interval=1.0,
             what="a checkpoint of the model's drift monitor")
        # every event on the topic (other tests' too) consumed and committed: the next worker replays none
        poll(lambda: (x := committed_lag(kafka.bootstrap, group, "warden.inference"))[0] == 0 and x[1] >= 150, 60,
             what="all events committed")
        time.sleep(2)  # one more checkpoint interval: the last window is in it too
        assert drift_findings() == 0
        assert stop(procs.pop("worker"), signal.SIGKILL) == -signal.SIGKILL

        procs["worker"] = spawn("worker", env, tmp_path / "worker-2.log")
        _produce(kafka.bootstrap, _events(tenant, "verbose", "v", 100))
        # judged against the reference pinned before the kill: without the checkpoint these 100 events
        # would become the new reference and nothing would be found
        poll(lambda: drift_findings() > 0, 120, interval=1.0, what="a drift finding after the restart")
    finally:
        for p in procs.values():
            stop(p)
