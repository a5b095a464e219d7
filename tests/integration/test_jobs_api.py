"""Closing the loop through the API: request → approval → job worker → statuses in the store → audit."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.kafka import KafkaBroker, free_port
from tests.support.procs import poll, spawn, stop, wait_healthy, warden_env

pytestmark = [pytest.mark.kafka]
KEY = "jobs-admin-key"


def test_rollback_requested_approved_run_and_audited(kafka: KafkaBroker, tmp_path: Path) -> None:
    tenant, model = "acme", f"bot-{uuid.uuid4().hex[:6]}"
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    env = warden_env(kafka_bootstrap=kafka.bootstrap, database_url=f"sqlite:///{tmp_path / 'w.db'}",
                     admin_key=KEY, api_port=port, data_dir=data, governance_group=f"g-{uuid.uuid4().hex[:6]}",
                     jobs_group=f"j-{uuid.uuid4().hex[:6]}")
    api = spawn("api", env, tmp_path / "api.log")
    worker = spawn("jobs", env, tmp_path / "jobs.log")
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {KEY}"}
    try:
        wait_healthy(base, api, tmp_path / "api.log")
        models = f"{base}/v1/registry/{tenant}/models/{model}"
        for v in ("v1", "v2"):  # two versions through the registry API, production moved to v2
            r = httpx.post(f"{models}/versions", headers=auth,
                           json={"version": v, "artifact_uri": f"file:///artifacts/{model}/{v}"})
            assert r.status_code == 201, r.text
            r = httpx.put(f"{models}/aliases/production", headers=auth,
                          json={"version": v, "reason": "release"})
            assert r.status_code == 200, r.text

        def production() -> str:
            aliases = httpx.get(f"{models}/aliases", headers=auth).json()
            items = aliases["items"] if isinstance(aliases, dict) and "items" in aliases else aliases
            return {a["alias"]: a["version"] for a in items}["production"]
        body = {"kind": "rollback", "tenant": tenant, "model": model, "approval": "required",
                "reason": "error rate up after v2", "idempotency_key": "incident-7"}
        first = httpx.post(f"{base}/v1/jobs", json=body, headers=auth)
        assert first.status_code == 202, first.text
        job = first.json()
        assert job["state"] == "awaiting_approval"
        again = httpx.post(f"{base}/v1/jobs", json=body, headers=auth).json()
        assert again["job_id"] == job["job_id"], "the same idempotency key is the same job"
        assert production() == "v2"
        approved = httpx.post(f"{base}/v1/jobs/{job['job_id']}/approve", headers=auth)
        assert approved.status_code == 202 and approved.json()["approved_by"]
        assert httpx.post(f"{base}/v1/jobs/{job['job_id']}/approve", headers=auth).status_code == 409
        done = poll(lambda: (j := httpx.get(f"{base}/v1/jobs/{job['job_id']}", headers=auth).json())["state"]
                    in ("succeeded", "failed", "cancelled") and j, 90, what="terminal job state")
        assert done["state"] == "succeeded", done
        assert [s["state"] for s in done["statuses"]][0] == "awaiting_approval"
        assert "running" in [s["state"] for s in done["statuses"]]
        assert production() == "v1", "the rollback switched the store's production alias back"
        history = httpx.get(f"{models}/aliases/production/history", headers=auth)
        assert history.status_code == 200 and "rollback" in history.text
        audit = httpx.get(f"{base}/v1/audit", params={"limit": 1000}, headers=auth).json()["items"]
        actions = [a["action"] for a in audit if a.get("target_id") == job["job_id"]]
        assert {"job.requested", "job.approved", "job.succeeded"} <= set(actions)
        switches = [a for a in audit if a["action"] == "alias.switched"
                    and a.get("target_id") == f"{tenant}/{model}:production"]
        assert len(switches) == 3, "two releases by hand, then the job's rollback, all in the audit chain"
        listed = httpx.get(f"{base}/v1/jobs", headers=auth).json()["items"]
        assert job["job_id"] in [j["job_id"] for j in listed]
    finally:
        stop(worker)
        stop(api)
