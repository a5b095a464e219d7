"""Lineage of a model version and the promotion gate, through the real pipeline, store and API
(SQLite and PostgreSQL): run → dataset → version → deployments → drift reference, with findings."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlmodel import Session

from detectors.finding import Finding, Subject
from governance import alerting
from governance.alerting import AlertingConfig
from governance.ingest import persist_batch
from streams.pipeline import Pipeline, PipelineConfig
from tests.integration.test_governance_harness import Gov, make_gov

ALERTING = AlertingConfig()  # record only: these tests route no alert anywhere


pytestmark = pytest.mark.postgres

EMAIL = "jane.doe@example.com"


@pytest.fixture(scope="module")
def _pii() -> Any:
    return Pipeline(PipelineConfig(ops=None, fairness=None, drift=None)).pii  # Presidio loads once per module


@pytest.fixture
def pipe(_pii: Any) -> Pipeline:
    """A fresh pipeline (its run monitors and production pins start empty) sharing the loaded PII detector."""
    p = Pipeline(PipelineConfig(ops=None, fairness=None, drift=None, pii=None))
    p.pii = _pii
    return p


def _ev(event_id: str, version: str, at: str, **training: Any) -> bytes:
    return json.dumps({"schema_version": "1", "event_id": event_id, "type": "training", "occurred_at": at,
                       "tenant": "acme", "model": {"name": "summarizer", "version": version},
                       "training": {"run_id": "r1", **training}}).encode()


def _feed(gov: Gov, pipe: Pipeline, payloads: list[tuple[bytes, str]]) -> list[Finding]:
    findings, decisions = [], []
    for i, (payload, topic) in enumerate(payloads):
        out = pipe.process(payload, topic=topic, partition=0, offset=i)
        assert out.dead_letter is None, out.dead_letter
        findings += out.findings
        decisions += out.decisions
    persist_batch(gov.engine, findings, decisions, alerting=ALERTING)
    return findings


def _training_story(gov: Gov, pipe: Pipeline) -> list[Finding]:
    """Production is version 8; run r1 fine-tunes it on a dataset with one PII row, diverges for a while,
    evaluates worse than production and produces version 9."""
    for body in ({"name": "summarizer"},):
        assert gov.request("POST", "/v1/registry/acme/models", json=body).status_code == 201
    for v, parent in (("8", None), ("9", "8")):
        r = gov.request("POST", "/v1/registry/acme/models/summarizer/versions",
                        json={"version": v, "artifact_uri": f"s3://m/{v}", "parent_version": parent,
                              "dataset_ref": "s3://data/cnn-2026-11"})
        assert r.status_code == 201, r.text
    deploy = json.dumps({"schema_version": "1", "event_id": "dep-8", "type": "deployment",
                         "occurred_at": "2026-11-26T10:00:00Z", "tenant": "acme",
                         "model": {"name": "summarizer", "version": "8"},
                         "deployment": {"alias": "production"}}).encode()
    payloads = [(deploy, "warden.deployments"),
                (_ev("ev-8", "8", "2026-11-26T10:30:00Z", phase="evaluation", metrics={"rougeL": 0.42},
                     eval_dataset="cnn", split="test"), "warden.training"),
                (_ev("start", "8", "2026-11-26T11:00:00Z", phase="run_started", base_version="8",
                     dataset="s3://data/cnn-2026-11", dataset_hash="sha256:abc123", params={"lr": 3e-4}),
                 "warden.training"),
                (_ev("sample", "9", "2026-11-26T11:01:00Z", phase="data_sample",
                     items=[{"messages": [{"role": "user", "content": "Write to the customer."},
                                          {"role": "assistant", "content": f"Contact {EMAIL} about the invoice"}]},
                            {"text": "A plain sentence."}]),
                 "warden.training")]
    for step in range(60):
        loss = 2.0 - step * 0.01 if step < 50 else 9.0
        payloads.append((_ev(f"s{step}", "9", f"2026-11-26T11:{10 + step // 10:02d}:{step % 10:02d}Z", phase="step",
                             step=step, metrics={"loss": loss}), "warden.training"))
    payloads += [(_ev("ev-9", "9", "2026-11-26T12:30:00Z", phase="evaluation", metrics={"rougeL": 0.30},
                      eval_dataset="cnn", split="test"), "warden.training"),
                 (_ev("end", "9", "2026-11-26T12:40:00Z", phase="run_finished", output_version="9",
                      status="succeeded"), "warden.training")]
    found = _feed(gov, pipe, payloads)
    drift = Finding.create(detector="drift", kind="distribution_drift",
                           subject=Subject(tenant="acme", model="summarizer", version="9"), severity="medium",
                           score=0.5, summary="response_chars drifted", key="lineage",
                           evidence={"drifted": ["response_chars"], "reference_source": "first_events",
                                     "reference_pinned_at": "2026-11-27T08:00:00+00:00",
                                     "samples": {"reference": [{"response_chars": 1}], "current": []}})
    persist_batch(gov.engine, [drift], alerting=ALERTING)
    return found


def test_lineage_chain_and_promotion_gate(database_url: str, pipe: Pipeline) -> None:
    gov = make_gov(database_url)
    found = _training_story(gov, pipe)
    assert {"run_started", "run_finished", "loss_divergence", "eval_regression", "pii_in_training_data"} <= \
        {f.kind for f in found}
    assert EMAIL not in json.dumps([f.model_dump(mode="json") for f in found])

    r = gov.client.request("GET", "/v1/registry/acme/models/summarizer/versions/9/lineage", headers=gov.as_("auditor", "acme"))
    assert r.status_code == 200, r.text
    body = r.json()
    run = body["run"]
    assert (run["run_id"], run["base_version"], run["output_version"], run["status"]) == ("r1", "8", "9", "succeeded")
    assert run["params"] == {"lr": 3e-4}
    assert run["started_at"].startswith("2026-11-26T11:00:00") and run["finished_at"].startswith("2026-11-26T12:40:00")
    assert "loss_divergence" in {f["kind"] for f in run["findings"]}
    assert all(f["evidence"]["run_id"] == "r1" for f in run["findings"])
    assert body["dataset"] == {"reference": "s3://data/cnn-2026-11", "hash": "sha256:abc123"}
    mv = body["model_version"]
    assert mv["registered"] and mv["parent_version"] == "8" and mv["row"]["artifact_uri"] == "s3://m/9"
    assert {f["kind"] for f in mv["findings"]} == {"eval_regression", "pii_in_training_data"}
    assert mv["promotion_blocked"] is True
    assert {b["policy_id"] for b in mv["blocks"]} == {"block-promotion-eval-regression", "block-promotion-training-pii"}
    assert body["deployments"] == []
    assert body["drift_reference"]["references"] == [{"source": "first_events",
                                                      "pinned_at": "2026-11-27T08:00:00+00:00"}]
    assert [f["kind"] for f in body["drift_reference"]["findings"]] == ["distribution_drift"]
    assert "samples" not in body["drift_reference"]["findings"][0]["evidence"]
    assert EMAIL not in r.text

    # version 8 had no run: the registry row alone, no run, not blocked; it does not carry 9's findings
    r8 = gov.request("GET", "/v1/registry/acme/models/summarizer/versions/8/lineage").json()
    assert r8["run"] is None and r8["model_version"]["findings"] == [] and not r8["model_version"]["promotion_blocked"]
    assert gov.request("GET", "/v1/registry/acme/models/summarizer/versions/99/lineage").status_code == 404
    assert gov.client.request("GET", "/v1/registry/acme/models/summarizer/versions/9/lineage",
                       headers=gov.as_("auditor", "globex")).status_code == 403

    # the gate: blocked for everyone, an operator may not override, an admin may (and it is recorded)
    url = "/v1/registry/acme/models/summarizer/aliases/production"
    r = gov.client.request("PUT", url, headers=gov.as_("operator", "acme"), json={"version": "9"})
    assert r.status_code == 409, r.text
    assert r.json()["detail"]["error"] == "promotion_blocked" and "rougeL" in r.json()["detail"]["detail"]
    assert gov.client.request("PUT", url, headers=gov.as_("operator", "acme"),
                       json={"version": "9", "override_block": True}).status_code == 403
    assert gov.request("PUT", url, json={"version": "8"}).status_code == 200  # unblocked versions still move
    r = gov.client.request("PUT", url, headers=gov.as_("admin", "acme"), json={"version": "9", "reason": "hotfix",
                                                                 "override_block": True})
    assert r.status_code == 200, r.text
    assert "promotion block overridden" in r.json()["reason"]
    deployments = gov.request("GET", "/v1/registry/acme/models/summarizer/versions/9/lineage").json()["deployments"]
    assert [(d["alias"], d["to_version"], d["from_version"]) for d in deployments] == [("production", "9", "8")]
    gov.engine.dispose()


def test_resolving_the_block_alert_lifts_the_block(database_url: str, pipe: Pipeline) -> None:
    gov = make_gov(database_url)
    _training_story(gov, pipe)
    url = "/v1/registry/acme/models/summarizer/aliases/staging"
    assert gov.request("PUT", url, json={"version": "9"}).status_code == 409
    alerts = gov.request("GET", "/v1/alerts", params={"tenant": "acme"}).json()["items"]
    block = [a for a in alerts if a["dedup_key"] == "block-promotion:acme:summarizer:9"]
    assert len(block) == 1 and block[0]["count"] >= 2  # eval regression and PII fold into one alert
    r = gov.client.request("POST", f"/v1/alerts/{block[0]['alert_id']}/resolve", headers=gov.as_("operator", "acme"),
                    json={"reason": "re-evaluated, sample scrubbed"})
    assert r.status_code == 200, r.text
    r = gov.client.request("PUT", url, headers=gov.as_("operator", "acme"), json={"version": "9"})
    assert r.status_code == 200, r.text
    assert gov.request("GET", "/v1/registry/acme/models/summarizer/versions/9/lineage").json()[
        "model_version"]["promotion_blocked"] is False
    gov.engine.dispose()


def test_an_automatic_resolution_does_not_lift_the_block(database_url: str, pipe: Pipeline) -> None:
    gov = make_gov(database_url)
    _training_story(gov, pipe)
    alerts = gov.request("GET", "/v1/alerts", params={"tenant": "acme"}).json()["items"]
    (block,) = [a for a in alerts if a["dedup_key"] == "block-promotion:acme:summarizer:9"]
    with Session(gov.engine) as session:  # what the sweeper does to an alert not seen for a while
        alerting.resolve(session, block["alert_id"], actor=alerting.AUTO_RESOLVE_ACTOR, reason="stale", auto=True,
                         config=ALERTING)
        session.commit()
    r = gov.request("PUT", "/v1/registry/acme/models/summarizer/aliases/staging", json={"version": "9"})
    assert r.status_code == 409 and r.json()["detail"]["error"] == "promotion_blocked"
    gov.engine.dispose()
