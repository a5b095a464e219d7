"""Aggregate policies on Apache Kafka 4.x: a window spanning models that two workers see, and a window
that survives killing every worker (faust table + changelog), with PostgreSQL as the store."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.events import inference, raw
from tests.integration.test_spine_kafka import _produce
from tests.support.kafka import KafkaBroker, committed_lag, free_port
from tests.support.procs import poll, spawn, stop, wait_healthy, warden_env
from tests.support.stack import KEY

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

POLICY = """
policies:
  - id: tenant-error-burst
    version: 1
    match: {detector: rule, kind: error_status}
    aggregate: {function: count, window: 1h, group_by: [subject.tenant], threshold: 29, distinct: event_id}
    actions:
      - alert: {severity: high, summary: "{aggregate.value} errors in {subject.tenant}", route: default}
"""
MODELS = [f"m{i}" for i in range(8)]  # keys spread over the 4 partitions, so over both workers


def _errors(tenant: str, ids: range) -> list[tuple[bytes, bytes]]:
    out = []
    for i in ids:
        ev = inference(f"{tenant}-{i}", tenant=tenant, model=MODELS[i % len(MODELS)], status="error")
        ev["occurred_at"] = "2026-11-26T12:10:00Z"  # one hour-long window, whatever the wall clock
        out.append((ev["model"]["name"].encode(), raw(ev)))
    return out


def _rows(postgres: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(postgres) as conn:
        return conn.execute(sql, args).fetchall()


@pytest.fixture
def setup(kafka: KafkaBroker, postgres: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    port = free_port()
    env = warden_env(kafka_bootstrap=kafka.bootstrap, database_url=postgres, admin_key=KEY, api_port=port,
                     consumer_group=f"w-{uuid.uuid4().hex[:6]}", governance_group=f"g-{uuid.uuid4().hex[:6]}",
                     policy_files=f'["{policy}"]', drift_enabled="false")
    procs: dict[str, Any] = {"api": spawn("api", env, tmp_path / "api.log")}
    try:
        wait_healthy(f"http://127.0.0.1:{port}", procs["api"], tmp_path / "api.log")
        yield {"env": env, "procs": procs, "logs": tmp_path, "kafka": kafka, "postgres": postgres}
    finally:
        for p in procs.values():
            stop(p)


def test_a_window_spans_workers_and_survives_killing_them_all(setup: dict[str, Any]) -> None:
    env, procs, logs, kafka, pg = setup["env"], setup["procs"], setup["logs"], setup["kafka"], setup["postgres"]
    tenant = f"a-{uuid.uuid4().hex[:8]}"
    for name in ("worker-a", "worker-b"):
        procs[name] = spawn("worker", {**env, "WARDEN_WORKER_WEB_PORT": str(free_port())}, logs / f"{name}.log")

    def findings() -> int:
        # the failed calls' own findings: the ops-metrics anomaly detector may add findings of its own
        return int(_rows(pg, "SELECT count(*) FROM findings WHERE tenant = %s AND detector = 'rule' "
                             "AND kind = 'error_status'", tenant)[0][0])

    def fired() -> list[tuple[Any, ...]]:
        return _rows(pg, "SELECT summary, finding_ids FROM decisions WHERE policy_id = 'tenant-error-burst' "
                         "AND tenant = %s", tenant)

    _produce(kafka.bootstrap, _errors(tenant, range(0, 20)))
    poll(lambda: findings() == 20, 120, interval=0.5, what="the first 20 findings")
    time.sleep(4)  # let both workers apply the deltas and commit (commit interval 1 s)
    assert fired() == []  # 20 errors: under the threshold
    for name in ("worker-a", "worker-b"):
        assert stop(procs.pop(name), signal.SIGKILL) == -signal.SIGKILL
    # every delta was consumed and committed, so the next worker replays none: what it knows of the
    # first 20 errors can only come from the table's changelog
    lag = poll(lambda: (x := committed_lag(kafka.bootstrap, env["WARDEN_CONSUMER_GROUP"], "warden.aggregates"))[1] > 0
               and x, 30, what="committed aggregate offsets")
    assert lag[0] == 0

    # a new worker recovers the windows from the changelog; 15 more errors make 35 > 29 in all
    procs["worker-c"] = spawn("worker", {**env, "WARDEN_WORKER_WEB_PORT": str(free_port())}, logs / "worker-c.log")
    _produce(kafka.bootstrap, _errors(tenant, range(20, 35)))
    try:
        poll(lambda: findings() == 35, 180, interval=0.5, what="35 findings after the restart")
    except TimeoutError as exc:  # say where it stood: the stored findings by kind, the input lag, worker-c's log
        kinds = _rows(pg, "SELECT detector, kind, count(*) FROM findings WHERE tenant = %s GROUP BY 1, 2", tenant)
        lag = committed_lag(kafka.bootstrap, env["WARDEN_CONSUMER_GROUP"], "warden.inference")
        tail = (logs / "worker-c.log").read_text(errors="replace")[-3000:]
        raise AssertionError(f"{exc}; findings {kinds}; input lag {lag}; worker-c log: {tail}") from None
    (decision,) = poll(fired, 60, interval=0.5, what="the tenant-wide window to fire")
    assert decision[0] == f"30 errors in {tenant}"  # the 30th distinct error tipped it: 20 before the kill
    time.sleep(3)
    assert len(fired()) == 1  # once per window
