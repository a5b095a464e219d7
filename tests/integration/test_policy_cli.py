"""`warden policy validate|test`: dry runs over stored findings, without side effects."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from governance.alerting import AlertingConfig
from governance.ingest import persist_batch
from store.db import init_db, make_engine
from store.models import DecisionRow
from streams.pipeline import Pipeline, PipelineConfig
from tests.events import inference, raw
from warden.cli import app

ALERTING = AlertingConfig()  # record only: these tests route no alert anywhere


CANDIDATE = """
policies:
  - id: page-on-errors
    version: 3
    description: page on every failed call of the support bot
    match:
      detector: rule
      kind: error_status
      subject.model: support-bot
    actions:
      - alert:
          severity: critical
          summary: "{subject.model} failed"
          route: pagerduty:llm
          dedup_key: "{subject.tenant}:{subject.model}:errors"
"""


def test_dry_run_replays_stored_findings_and_changes_nothing(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'w.db'}"
    engine = make_engine(url)
    init_db(engine)
    pipe = Pipeline(PipelineConfig(pii=None))
    outs = [pipe.process(raw(inference(f"d-{i}", status="error" if i % 3 == 0 else "ok",
                                       model="support-bot" if i % 2 == 0 else "other")), topic="t", offset=i)
            for i in range(30)]
    persist_batch(engine, [f for o in outs for f in o.findings], alerting=ALERTING)
    expected = sum(1 for i in range(30) if i % 3 == 0 and i % 2 == 0)
    policy = tmp_path / "candidate.yaml"
    policy.write_text(CANDIDATE)
    monkeypatch.setenv("WARDEN_DATABASE_URL", url)
    runner = CliRunner()
    ok = runner.invoke(app, ["policy", "validate", str(policy)])
    assert ok.exit_code == 0 and "page-on-errors@v3" in ok.output
    result = runner.invoke(app, ["policy", "test", str(policy), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert report["total_decisions"] == expected
    assert {d["policy_id"] for d in report["decisions"]} == {"page-on-errors"}
    assert all(d["route"] == "pagerduty:llm" for d in report["decisions"])
    from sqlmodel import Session, select

    with Session(engine) as s:
        assert s.exec(select(DecisionRow)).all() == [], "a dry run must not write decisions"
    later = runner.invoke(app, ["policy", "test", str(policy), "--json", "--since", "2100-01-01T00:00:00"])
    assert json.loads(later.output[later.output.index("{"):])["total_decisions"] == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("policies:\n  - id: broken\n    version: one\n    match: {detector: rule}\n    actions: []\n")
    failed = runner.invoke(app, ["policy", "validate", str(bad)])
    assert failed.exit_code == 1 and "bad.yaml:3" in failed.output
