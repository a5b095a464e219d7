"""Retention and purge, erasure by keyed user hash, on SQLite and PostgreSQL (all audited)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlmodel import Session

from detectors.finding import Finding, Subject
from governance.alerting import AlertingConfig
from governance.ingest import persist_batch
from governance.retention import user_hash
from store.models import AlertRow, DeadLetterRow, DecisionRow, FindingRow
from streams.pipeline import Pipeline
from tests.events import BAD_INPUTS, inference, raw
from tests.integration.test_governance_harness import PII_KEY, make_gov

ALERTING = AlertingConfig()  # record only: these tests route no alert anywhere


pytestmark = pytest.mark.postgres
NOW = datetime.now(UTC)


def _finding(i: int, days_ago: float, tenant: str = "acme", user: str | None = None) -> Finding:
    evidence = {"entity_types": ["EMAIL_ADDRESS"], "counts": {"EMAIL_ADDRESS": 1}}
    if user:
        evidence["user_hash"] = user_hash(PII_KEY, user)
    return Finding.create(detector="pii", kind="pii_in_prompt", subject=Subject(tenant=tenant, model="bot"),
                          severity="high", score=1.0, summary="email in prompt", evidence=evidence, event_id=f"e{i}",
                          occurred_at=NOW - timedelta(days=days_ago), key=f"k{i}")


def _count(engine, table) -> int:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        return int(s.execute(select(func.count()).select_from(table)).scalar_one())


def test_retention_purge_deletes_only_old_records_and_is_audited(database_url: str) -> None:
    gov = make_gov(database_url, with_keys=False)
    persist_batch(gov.engine, [_finding(i, days) for i, days in enumerate((1, 5, 40, 100, 200))], alerting=ALERTING)
    p = Pipeline()
    old_outs = [p.process(raw(inference(f"d{i}", status="error")), topic="warden.inference", partition=0, offset=i)
                for i in range(2)]
    persist_batch(gov.engine, decisions=[d for o in old_outs for d in o.decisions],
                  dead_letters=[p.process(BAD_INPUTS["malformed_json"][0], topic="warden.inference", partition=0,
                                          offset=9).dead_letter], alerting=ALERTING)
    with gov.engine.begin() as conn:  # age the decisions, alerts and dead letters
        conn.execute(text("UPDATE decisions SET created_at = :t"), {"t": NOW - timedelta(days=100)})
        conn.execute(text("UPDATE alerts SET last_seen = :t"), {"t": NOW - timedelta(days=50)})
        conn.execute(text("UPDATE dead_letters SET received_at = :t"), {"t": NOW - timedelta(days=45)})
    assert gov.client.get("/v1/lifecycle/retention", headers=gov.admin).json()["findings_days"] == 90
    r = gov.request("PUT", "/v1/lifecycle/retention",
                    json={"findings_days": 30, "decisions_days": 90, "alerts_days": None, "dead_letters_days": 30})
    assert r.status_code == 200
    assert gov.request("PUT", "/v1/lifecycle/retention", json={"findings_days": 0}).status_code == 422
    dry = gov.request("POST", "/v1/lifecycle/purge", params={"dry_run": True}).json()
    assert dry["deleted"] == {"findings": 3, "decisions": 2, "alerts": 0, "dead_letters": 1, "samples": 0,
                              "sample_labels": 0}
    assert _count(gov.engine, FindingRow) == 5
    done = gov.request("POST", "/v1/lifecycle/purge").json()
    assert done["deleted"] == dry["deleted"]
    assert _count(gov.engine, FindingRow) == 2 and _count(gov.engine, DecisionRow) == 0
    assert _count(gov.engine, AlertRow) == 1 and _count(gov.engine, DeadLetterRow) == 0
    entries = gov.client.get("/v1/audit", headers=gov.admin).json()["items"]
    assert [e["action"] for e in entries] == ["data.purged", "settings.updated"]
    assert entries[0]["after"]["deleted"]["findings"] == 3
    assert entries[1]["before"] is None and entries[1]["after"]["findings_days"] == 30
    gov.engine.dispose()


def test_erasure_by_user_removes_their_records_keeps_only_a_keyed_hash(database_url: str) -> None:
    gov = make_gov(database_url, with_keys=False)
    user = "jane.doe@example.com"
    persist_batch(gov.engine, [_finding(0, 1, user=user), _finding(1, 2, user=user), _finding(2, 1, user="bob"),
                               _finding(3, 1, tenant="globex", user=user), _finding(4, 1)], alerting=ALERTING)
    with gov.engine.connect() as conn:
        dump = " ".join(str(v) for t in ("findings", "audit_log") for row in conn.execute(text(f"SELECT * FROM {t}"))
                        for v in row)
    assert user not in dump and user_hash(PII_KEY, user) in dump
    # an admin scoped to acme erases within acme only
    acme_admin = gov.request("POST", "/v1/keys", json={"role": "admin", "tenants": ["acme"]}).json()["key"]
    r = gov.client.post("/v1/lifecycle/erasure", headers=gov.auth(acme_admin), json={"user_id": user})
    assert r.status_code == 200 and r.json()["deleted"] == {"findings": 2, "samples": 0}
    left = gov.client.get("/v1/findings", headers=gov.admin).json()["items"]
    assert sorted(f["event_id"] for f in left) == ["e2", "e3", "e4"]
    r = gov.request("POST", "/v1/lifecycle/erasure", json={"user_id": user})
    assert r.json()["deleted"] == {"findings": 1, "samples": 0}
    assert sorted(f["event_id"] for f in gov.client.get("/v1/findings", headers=gov.admin).json()["items"]) == ["e2", "e4"]
    erasures = gov.client.get("/v1/audit", headers=gov.admin, params={"action": "data.erased"}).json()["items"]
    assert len(erasures) == 2 and all(e["target_id"] == user_hash(PII_KEY, user) for e in erasures)
    with gov.engine.connect() as conn:
        dump = " ".join(str(v) for t in ("findings", "audit_log") for row in conn.execute(text(f"SELECT * FROM {t}"))
                        for v in row)
    assert user not in dump
    assert gov.client.get("/v1/audit/verify", headers=gov.admin).json()["ok"]
    gov.engine.dispose()


def test_erasure_needs_a_pii_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    gov = make_gov(f"sqlite:///{tmp_path / 'w.db'}", with_keys=False)
    app_state = gov.client.app.state
    app_state.config = dataclasses.replace(app_state.config, pii_key=None)
    assert gov.request("POST", "/v1/lifecycle/erasure", json={"user_id": "x"}).status_code == 503
    with pytest.raises(ValueError):
        user_hash("", "x")
    gov.engine.dispose()
