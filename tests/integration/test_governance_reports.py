"""Compliance reports on SQLite and PostgreSQL: the figures, and the same figures in CSV and HTML."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session

from contracts.decision import Decision, DecisionAction, JobRequest
from detectors.finding import Finding, Subject
from governance import registry
from governance.alerting import AlertingConfig
from governance.ingest import persist_batch
from tests.integration.test_governance_harness import make_gov

ALERTING = AlertingConfig()  # record only: these tests route no alert anywhere


pytestmark = pytest.mark.postgres
T0 = datetime(2026, 5, 1, tzinfo=UTC)


def _f(i: int, detector: str, model: str, *, tenant: str = "acme", days: float = 1, kind: str = "k",
       counts: dict[str, int] | None = None, severity: str = "medium") -> Finding:
    evidence = {"entity_types": sorted(counts or {}), "counts": counts} if counts else {}
    return Finding.create(detector=detector, kind=kind, subject=Subject(tenant=tenant, model=model), severity=severity,
                          score=0.5, summary=f"{detector} finding", evidence=evidence, event_id=f"e{i}",
                          occurred_at=T0 + timedelta(days=days), key=f"{detector}{i}")


def _decision(i: int, action: DecisionAction, *, dedup: str, summary: str, job: JobRequest | None = None) -> Decision:
    return Decision(decision_id=f"d{i}", policy_id="p", policy_version=1, mode="enforce", action=action,
                    subject=Subject(tenant="acme", model="bot"), severity="high", summary=summary,
                    dedup_key=dedup, finding_ids=[], job=job, created_at=T0 + timedelta(days=2, minutes=i))


def _seed(gov) -> None:  # type: ignore[no-untyped-def]
    findings = [
        _f(1, "pii", "bot", counts={"EMAIL_ADDRESS": 2, "PHONE_NUMBER": 1}),
        _f(2, "pii", "bot", counts={"EMAIL_ADDRESS": 1}),
        _f(3, "pii", "summarizer", counts={"CREDIT_CARD": 1}),
        _f(4, "drift", "bot", kind="embedding_drift", severity="high"),
        _f(5, "anomaly", "bot", kind="latency"), _f(6, "anomaly", "bot", kind="latency"),
        _f(7, "bias", "bot", kind="demographic_parity"),
        _f(8, "pii", "bot", tenant="globex", counts={"EMAIL_ADDRESS": 5}),  # other tenant
        _f(9, "pii", "bot", days=60, counts={"EMAIL_ADDRESS": 5}),  # outside the period
    ]
    decisions = [
        _decision(1, DecisionAction.alert, dedup="a1", summary="PII <script>alert(1)</script> leak"),
        _decision(2, DecisionAction.alert, dedup="a2", summary="drift"),
        _decision(3, DecisionAction.job, dedup="j1", summary="retrain", job=JobRequest(kind="retrain")),
    ]
    persist_batch(gov.engine, findings, decisions, alerting=ALERTING)
    alerts = gov.client.get("/v1/alerts", headers=gov.admin, params={"tenant": "acme"}).json()["items"]
    first = next(a for a in alerts if a["dedup_key"] == "a1")
    gov.request("POST", f"/v1/alerts/{first['alert_id']}/resolve")
    with gov.engine.begin() as conn:  # fix the response times: ack after 10 min, resolve after 1 h
        conn.execute(text("UPDATE alerts SET acknowledged_at = :a, resolved_at = :r WHERE alert_id = :i"), {
            "a": T0 + timedelta(days=2, minutes=11), "r": T0 + timedelta(days=2, minutes=61), "i": first["alert_id"]})
    with Session(gov.engine) as s:
        registry.register_version(s, tenant="acme", model="bot", version="1", artifact_uri="s3://1", actor="x")
        registry.switch_alias(s, tenant="acme", model="bot", alias="production", version="1", actor="ana",
                              reason="launch", at=T0 + timedelta(days=3))
        s.commit()


def test_compliance_report_json_csv_html(database_url: str) -> None:
    gov = make_gov(database_url, with_keys=False)
    _seed(gov)
    params = {"from": T0.isoformat(), "to": (T0 + timedelta(days=30)).isoformat()}
    url = "/v1/reports/compliance/acme"
    rep = gov.client.get(url, headers=gov.admin, params=params).json()
    assert rep["pii"] == {"findings": 3, "entities_by_model": {
        "bot": {"EMAIL_ADDRESS": 3, "PHONE_NUMBER": 1}, "summarizer": {"CREDIT_CARD": 1}}}
    assert rep["findings"]["drift"]["total"] == 1 and rep["findings"]["anomaly"]["total"] == 2
    assert rep["findings"]["bias"]["by"] == [{"kind": "demographic_parity", "model": "bot", "severity": "medium", "count": 1}]
    al = rep["alerts"]
    assert al["opened"] == 2 and al["by_status"] == {"resolved": 1, "triggered": 1}
    assert al["time_to_acknowledge"]["n"] == 1 and al["time_to_acknowledge"]["median_s"] == 600.0
    assert al["time_to_resolve"]["max_s"] == 3600.0
    assert rep["jobs"]["requested_by_policy"] == 1 and rep["jobs"]["by_kind"] == {"retrain": 1}
    assert [(s["to_version"], s["actor"], s["reason"]) for s in rep["alias_switches"]] == [("1", "ana", "launch")]
    # the period bounds: a window before the data is empty
    empty = gov.client.get(url, headers=gov.admin, params={"from": "2020-01-01T00:00:00Z", "to": "2020-02-01T00:00:00Z"}).json()
    assert empty["pii"]["findings"] == 0 and empty["alerts"]["opened"] == 0 and empty["alias_switches"] == []
    rows = list(csv.reader(io.StringIO(gov.client.get(url, headers=gov.admin, params={**params, "format": "csv"}).text)))
    assert rows[0] == ["section", "group", "metric", "value"]
    assert ["pii", "bot", "EMAIL_ADDRESS", "3"] in rows and ["alerts", "time_to_resolve", "max_s", "3600.0"] in rows
    assert ["findings", "anomaly", "total", "2"] in rows and ["jobs", "kind", "retrain", "1"] in rows
    page = gov.client.get(url, headers=gov.admin, params={**params, "format": "html"})
    assert page.headers["content-type"].startswith("text/html")
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text
    assert "EMAIL_ADDRESS" in page.text and "@media print" in page.text and "launch" in page.text
    assert gov.client.get(url, headers=gov.admin, params={"from": params["to"], "to": params["from"]}).status_code == 422
    gov.engine.dispose()
