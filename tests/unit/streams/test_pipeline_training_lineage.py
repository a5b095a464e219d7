"""Training runs recorded for lineage: the stream files run_started / run_finished as info findings."""

from __future__ import annotations

import json

from detectors.finding import Severity
from streams.pipeline import Pipeline, PipelineConfig


def _ev(event_id: str, version: str = "8", **training: object) -> bytes:
    return json.dumps({"schema_version": "1", "event_id": event_id, "type": "training",
                       "occurred_at": "2026-11-26T12:00:00Z", "tenant": "acme",
                       "model": {"name": "summarizer", "version": version},
                       "training": {"run_id": "r7", **training}}).encode()


def _pipe() -> Pipeline:
    return Pipeline(PipelineConfig(pii=None, ops=None, fairness=None, drift=None))


def test_run_start_and_end_are_info_findings_under_base_and_output_versions() -> None:
    p = _pipe()
    start = p.process(_ev("a", phase="run_started", base_version="8", dataset="s3://d/x", dataset_hash="sha256:1",
                          params={"lr": 0.001, "epochs": 2}), topic="warden.training")
    end = p.process(_ev("b", phase="run_finished", output_version="9", status="failed", error="OOM at step 5"),
                    topic="warden.training")
    (s,), (e,) = start.findings, end.findings
    assert (s.detector, s.kind, s.severity, s.subject.version) == ("training", "run_started", Severity.info, "8")
    assert (e.detector, e.kind, e.severity, e.subject.version) == ("training", "run_finished", Severity.info, "9")
    assert s.evidence["dataset"] == "s3://d/x" and s.evidence["dataset_hash"] == "sha256:1"
    assert s.evidence["params"] == {"lr": 0.001, "epochs": 2} and s.evidence["run_id"] == "r7"
    assert e.evidence["status"] == "failed" and e.evidence["output_version"] == "9"
    assert e.evidence["has_error"] is True and "OOM" not in e.model_dump_json()  # error text may quote data
    assert start.decisions == [] and end.decisions == []  # records, not alerts
    again = _pipe().process(_ev("a", phase="run_started", base_version="8", dataset="s3://d/x"),
                            topic="warden.training").findings[0]
    assert again.finding_id == s.finding_id  # a replay is stored once


def test_a_run_without_output_version_is_filed_under_the_event_version() -> None:
    (f,) = _pipe().process(_ev("c", version="5", phase="run_finished", status="cancelled"),
                           topic="warden.training").findings
    assert f.subject.version == "5" and f.evidence["output_version"] is None


def test_every_training_finding_carries_the_run_id() -> None:
    p = _pipe()
    found = []
    for step in range(60):
        loss = 2.0 - step * 0.01 if step < 50 else 9.0
        found += p.process(_ev(f"s{step}", phase="step", step=step, metrics={"loss": loss}),
                           topic="warden.training").findings
    deploy = {"schema_version": "1", "event_id": "dep", "type": "deployment", "occurred_at": "2026-11-26T11:00:00Z",
              "tenant": "acme", "model": {"name": "summarizer", "version": "7"}, "deployment": {"alias": "production"}}
    p.process(json.dumps(deploy).encode(), topic="warden.deployments")
    p.process(_ev("e7", version="7", phase="evaluation", metrics={"rougeL": 0.42}, eval_dataset="cnn"),
              topic="warden.training")
    found += p.process(_ev("e8", phase="evaluation", metrics={"rougeL": 0.30}, eval_dataset="cnn"),
                       topic="warden.training").findings
    kinds = {f.kind for f in found}
    assert {"loss_divergence", "eval_regression"} <= kinds
    assert {f.evidence["run_id"] for f in found} == {"r7"}
