"""The model registry on SQLite and PostgreSQL: versions with lineage, aliases with full history,
deployment events (to a recording producer, and once to a real Kafka broker)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlmodel import Session

from contracts.events import EventAdapter
from contracts.topics import DEPLOYMENTS
from governance import registry
from tests.integration.test_governance_harness import make_gov

pytestmark = pytest.mark.postgres

BASE = "/v1/registry/acme/models/support-bot"


def test_versions_aliases_history_and_deployment_events(database_url: str) -> None:
    gov = make_gov(database_url, with_keys=False)
    op = gov.auth(gov.request("POST", "/v1/keys", json={"role": "operator", "tenants": ["acme"], "name": "ana"}).json()["key"])
    r = gov.client.post(f"{BASE}/versions", headers=op, json={
        "version": "1", "artifact_uri": "s3://models/bot/1", "dataset_ref": "s3://data/train-2026-01",
        "metrics": {"accuracy": 0.81}})
    assert r.status_code == 201 and r.json()["source"] == "manual" and r.json()["created_by"].endswith("(ana)")
    r = gov.client.post(f"{BASE}/versions", headers=op, json={
        "version": "2", "artifact_uri": "s3://models/bot/2", "parent_version": "1", "source": "job", "job_id": "job-7",
        "metrics": {"accuracy": 0.86}})
    assert r.status_code == 201 and r.json()["parent_version"] == "1" and r.json()["job_id"] == "job-7"
    # refusals: duplicate version, unknown parent, job without job id, unknown version for an alias
    assert gov.client.post(f"{BASE}/versions", headers=op, json={"version": "2", "artifact_uri": "x"}).status_code == 409
    assert gov.client.post(f"{BASE}/versions", headers=op,
                           json={"version": "3", "artifact_uri": "x", "parent_version": "9"}).status_code == 422
    assert gov.client.post(f"{BASE}/versions", headers=op,
                           json={"version": "3", "artifact_uri": "x", "source": "job"}).status_code == 422
    assert gov.client.put(f"{BASE}/aliases/production", headers=op, json={"version": "9"}).status_code == 404
    assert gov.client.put(f"{BASE}/aliases/Bad Alias", headers=op, json={"version": "1"}).status_code == 422

    moves = [("1", "first release", "deploy"), ("2", "better accuracy", "promote"), ("1", "regression", "rollback")]
    stamps = []
    for version, reason, action in moves:
        r = gov.client.put(f"{BASE}/aliases/production", headers=op, json={"version": version, "reason": reason})
        assert r.status_code == 200 and r.json()["action"] == action and r.json()["published"] is True
        stamps.append(datetime.fromisoformat(r.json()["switched_at"].replace("Z", "+00:00")))
        time.sleep(0.01)
    assert gov.client.get(BASE, headers=op).json()["aliases"] == {"production": "1"}
    hist = gov.client.get(f"{BASE}/aliases/production/history", headers=op).json()["items"]
    assert [(h["from_version"], h["to_version"], h["reason"]) for h in hist] == [
        ("2", "1", "regression"), ("1", "2", "better accuracy"), (None, "1", "first release")]
    assert all(h["actor"].endswith("(ana)") for h in hist)
    # which version did production point to at a given time (MLflow #2169)
    for when, expected in ((stamps[0] - timedelta(seconds=1), None), (stamps[0], "1"),
                           (stamps[1] + (stamps[2] - stamps[1]) / 2, "2"), (stamps[2] + timedelta(days=1), "1")):
        got = gov.client.get(f"{BASE}/aliases/production/history", headers=op, params={"at": when.isoformat()}).json()
        assert got["version_at"] == expected, (when, got["version_at"])
    # one deployment event per switch, keyed tenant/model, that the stream's own schema accepts
    assert [t for t, _, _ in gov.producer.sent] == [DEPLOYMENTS] * 3
    events = [EventAdapter.validate_json(v) for _, v, _ in gov.producer.sent]
    assert [(e.model.version, e.deployment.action, e.deployment.previous_version) for e in events] == [
        ("1", "deploy", None), ("2", "promote", "1"), ("1", "rollback", "2")]
    assert {k for _, _, k in gov.producer.sent} == {b"acme/support-bot"}
    assert [e.event_id for e in events] == [h["switch_id"] for h in reversed(hist)]
    # each switch is audited with before/after and reason
    audit = gov.client.get("/v1/audit", headers=gov.admin, params={"action": "alias.switched"}).json()["items"]
    assert [(a["before"]["version"], a["after"]["version"], a["after"]["reason"]) for a in audit] == [
        ("2", "1", "regression"), ("1", "2", "better accuracy"), (None, "1", "first release")]
    # a failed publish still records the switch, and says so
    gov.producer.fail = True
    r = gov.client.put(f"{BASE}/aliases/staging", headers=op, json={"version": "2"})
    assert r.status_code == 200 and r.json()["published"] is False
    assert gov.client.get(f"{BASE}/aliases", headers=op).json()["items"][-1]["alias"] == "staging"
    versions = gov.client.get(f"{BASE}/versions", headers=op).json()["items"]
    assert [v["version"] for v in versions] == ["2", "1"]
    assert gov.client.get(f"{BASE}/versions/2", headers=op).json()["metrics"] == {"accuracy": 0.86}
    assert gov.client.get(f"{BASE}/versions/9", headers=op).status_code == 404
    gov.engine.dispose()


def test_alias_at_with_explicit_history(database_url: str) -> None:
    gov = make_gov(database_url, with_keys=False)
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    with Session(gov.engine) as s:
        for v in ("a", "b", "c"):
            registry.register_version(s, tenant="t", model="m", version=v, artifact_uri=f"u/{v}", actor="x")
        for day, v in ((0, "a"), (10, "b"), (20, "c"), (30, "a")):
            registry.switch_alias(s, tenant="t", model="m", alias="production", version=v, actor="x",
                                  at=t0 + timedelta(days=day))
        s.commit()
    at = registry.alias_at
    assert at(gov.engine, "t", "m", "production", t0 - timedelta(seconds=1)) is None
    assert at(gov.engine, "t", "m", "production", t0 + timedelta(days=5)) == "a"
    assert at(gov.engine, "t", "m", "production", t0 + timedelta(days=15)) == "b"
    plus3 = timezone(timedelta(hours=3))  # offsets are converted: 02:00+03 is still day 19 in UTC
    assert at(gov.engine, "t", "m", "production", datetime(2026, 3, 21, 2, 0, tzinfo=plus3)) == "b"
    assert at(gov.engine, "t", "m", "production", datetime(2026, 3, 21, 4, 0, tzinfo=plus3)) == "c"
    assert at(gov.engine, "t", "m", "production", t0 + timedelta(days=31)) == "a"
    assert at(gov.engine, "t", "m", "staging", t0 + timedelta(days=31)) is None
    gov.engine.dispose()


@pytest.mark.kafka
def test_alias_switch_publishes_to_a_real_broker(kafka, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The app's own lifespan starts its AIOKafkaProducer; the event is read back with another client."""
    from confluent_kafka import Consumer
    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.integration.test_governance_harness import ADMIN_KEY
    from warden.settings import Settings

    settings = Settings(admin_key=ADMIN_KEY, database_url=f"sqlite:///{tmp_path / 'w.db'}",
                        kafka_bootstrap=kafka.bootstrap)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with TestClient(create_app(settings.api_config(), consume=False)) as client:
        assert client.post(f"{BASE}/versions", headers=headers,
                           json={"version": "1", "artifact_uri": "s3://m/1"}).status_code == 201
        r = client.put(f"{BASE}/aliases/production", headers=headers, json={"version": "1", "reason": "launch"})
        assert r.status_code == 200 and r.json()["published"] is True
    consumer = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": f"t-{uuid.uuid4().hex[:6]}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([DEPLOYMENTS])
    got = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is not None and not msg.error() and json.loads(msg.value())["event_id"] == r.json()["event_id"]:
            got = msg
            break
    consumer.close()
    assert got is not None, "deployment event not seen on warden.deployments"
    event = EventAdapter.validate_json(got.value())
    assert got.key() == b"acme/support-bot" and event.deployment.reason == "launch"
    assert event.deployment.action == "deploy" and event.model.version == "1"
