"""Smoke test of the README's first command: `warden up --demo` on the embedded Tansu broker + SQLite."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
import uuid
from pathlib import Path

import httpx
from confluent_kafka import Producer

from tests.events import inference, raw
from tests.support.kafka import free_port
from tests.support.procs import poll, spawn, wait_healthy, warden_env


def _alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_warden_up_demo_serves_findings_and_dead_letters(tmp_path: Path) -> None:
    port, broker = free_port(), free_port()
    env = warden_env(data_dir=tmp_path / "data", api_port=port, embedded_broker_port=broker)
    log = tmp_path / "up.log"
    up = spawn("up", env, log, "--demo", "--rate", "50")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, up, log, timeout=120)
        key = (tmp_path / "data" / "admin.key").read_text().strip()
        assert key in log.read_text(), "the admin key is shown to the user"
        auth = {"Authorization": f"Bearer {key}"}
        tag = uuid.uuid4().hex[:8]
        producer = Producer({"bootstrap.servers": f"127.0.0.1:{broker}"})
        for i in range(3):
            producer.produce("warden.inference", raw(inference(f"{tag}-{i}", status="error")), key=b"support-bot")
        producer.produce("warden.inference", b'{"schema_version": "1", "tenant": ' + tag.encode(), key=b"x")
        assert producer.flush(30) == 0
        for i in range(3):
            found = poll(lambda i=i: httpx.get(f"{base}/v1/findings", params={"event_id": f"{tag}-{i}"},
                                               headers=auth).json()["items"], 60, what="finding from another client")
            assert found[0]["kind"] == "error_status"
        demo = poll(lambda: [f for f in httpx.get(f"{base}/v1/findings", params={"limit": 1000}, headers=auth)
                             .json()["items"] if f["tenant"] in ("acme", "globex", "initech")], 60,
                    what="demo findings")
        assert demo
        dlq = poll(lambda: [d for d in httpx.get(f"{base}/v1/dlq", params={"limit": 1000}, headers=auth)
                            .json()["items"] if d["code"] == "malformed_json"], 60, what="dead letters")
        assert dlq[0]["source_topic"] == "warden.inference"
        # alerts reach a local file a person can read, and the API lists the deliveries (issue 16 item 5)
        local = poll(lambda: [d for d in httpx.get(f"{base}/v1/deliveries", params={"limit": 1000}, headers=auth)
                              .json()["items"] if d["destination"] == "local" and d["outcome"] == "delivered"], 90,
                     what="alerts delivered to the local file")
        assert local
        alerts = (tmp_path / "data" / "alerts.jsonl").read_text().splitlines()
        assert alerts and all(json.loads(line)["alert_id"] for line in alerts)
        # health reports the worker this command runs (issue 16 item 4)
        health = poll(lambda: (h := httpx.get(f"{base}/healthz").json())["workers"] and h, 60, what="worker heartbeat")
        assert health["status"] == "ok" and health["alerting"]["unrouted_routes"] == []
        # the store and the data dir are the owner's only (issue 16 item 3)
        assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
        assert stat.S_IMODE((tmp_path / "data" / "warden.db").stat().st_mode) == 0o600
        text = log.read_text(errors="replace")
        assert "exited; restarting" not in text, "a role (worker, api, jobs) crashed under warden up"
        assert "\x1b[" not in text, "terminal escapes in the service log"
    finally:
        up.send_signal(signal.SIGINT)
        try:
            up.wait(timeout=45)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
            raise AssertionError("warden up did not stop on Ctrl-C") from None
    deadline = time.monotonic() + 15
    while _alive(up.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(up.pid), "a child of warden up outlived Ctrl-C"
    assert up.returncode == 0
    import socket

    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", broker)) != 0, "the embedded broker outlived Ctrl-C"
