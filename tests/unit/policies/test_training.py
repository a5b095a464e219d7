"""The built-in pack on training findings: pages on broken runs, blocks promotion on regressions / PII."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from detectors.finding import Finding, Severity, Subject
from detectors.training.monitor import TrainingRunMonitor
from governance.lineage import BLOCK_TAG, block_dedup_key
from policies import DecisionAction
from policies.engine import PolicyEngine
from policies.loader import load_pack

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SUBJECT = Subject(tenant="acme", model="summarizer", version="9")


def _engine() -> PolicyEngine:
    return PolicyEngine(load_pack())


def _finding(kind: str, detector: str = "training", severity: str = "high", **evidence: object) -> Finding:
    return Finding.create(detector=detector, kind=kind, subject=SUBJECT, severity=severity, score=0.9,
                          summary=f"{detector} {kind}", evidence={"run_id": "r1", **evidence}, event_id=f"e-{kind}",
                          occurred_at=T0)


def _by_action(decisions):  # type: ignore[no-untyped-def]
    return {d.action: d for d in decisions}


def test_a_nan_loss_from_the_monitor_pages_critical() -> None:
    monitor = TrainingRunMonitor("r1", SUBJECT)
    found: list[Finding] = []
    for step, loss in enumerate([2.0, 1.9, 1.8, 1.7, float("nan")]):
        found += monitor.update(step, {"loss": loss}, T0 + timedelta(seconds=step))
    nan = [f for f in found if f.kind == "loss_nan"]
    assert nan, [f.kind for f in found]
    decisions = _engine().evaluate(nan[0])
    alerts = [d for d in decisions if d.action is DecisionAction.alert]
    assert [(d.policy_id, d.severity, d.route) for d in alerts] == [
        ("training-loss-nan", Severity.critical, "pagerduty:ml-oncall")]
    assert alerts[0].dedup_key == "training:acme:summarizer:r1:loss_nan"


def test_divergence_and_gradient_explosion_page_high() -> None:
    for kind in ("loss_divergence", "grad_explosion"):
        decisions = _engine().evaluate(_finding(kind, severity="medium"))
        alerts = [d for d in decisions if d.action is DecisionAction.alert]
        assert [(d.policy_id, d.severity, d.route) for d in alerts] == [
            ("training-divergence-page", Severity.high, "pagerduty:ml-oncall")], kind
        assert BLOCK_TAG not in [t for d in decisions for t in d.tags]


def test_a_plateau_and_the_run_records_do_not_page() -> None:
    for kind, severity in (("loss_plateau", "low"), ("run_started", "info"), ("run_finished", "info")):
        decisions = _engine().evaluate(_finding(kind, severity=severity))
        assert [d for d in decisions if d.action is DecisionAction.alert] == [], kind


def test_an_eval_regression_blocks_promotion_and_alerts() -> None:
    decisions = _engine().evaluate(_finding("eval_regression", metric="rougeL", delta=-0.1))
    acts = _by_action(decisions)
    assert acts[DecisionAction.tag].policy_id == "block-promotion-eval-regression"
    assert BLOCK_TAG in acts[DecisionAction.tag].tags
    assert acts[DecisionAction.tag].mode == "enforce" and acts[DecisionAction.tag].subject.version == "9"
    alert = acts[DecisionAction.alert]
    assert alert.severity == Severity.high
    assert alert.dedup_key == block_dedup_key("acme", "summarizer", "9")


def test_pii_in_training_data_blocks_promotion() -> None:
    decisions = _engine().evaluate(_finding("pii_in_training_data", detector="pii", severity="medium"))
    block = [d for d in decisions if BLOCK_TAG in d.tags]
    assert [d.policy_id for d in block] == ["block-promotion-training-pii"]
    alerts = [d for d in decisions if d.action is DecisionAction.alert and d.policy_id == "block-promotion-training-pii"]
    assert alerts and alerts[0].dedup_key == block_dedup_key("acme", "summarizer", "9")


def test_inference_pii_does_not_block_promotion() -> None:
    decisions = _engine().evaluate(_finding("pii_detected", detector="pii", severity="medium"))
    assert decisions, "the existing pii policies still fire"
    assert BLOCK_TAG not in [t for d in decisions for t in d.tags]


def test_skew_alerts_the_ops_channel_from_medium_up() -> None:
    (d,) = _engine().evaluate(_finding("training_serving_skew", severity="medium"))
    assert (d.policy_id, d.action, d.route, d.severity) == ("training-serving-skew", DecisionAction.alert,
                                                            "webhook:ml-ops", Severity.medium)
    assert _engine().evaluate(_finding("training_serving_skew", severity="low")) == []


def test_training_pii_stays_out_of_the_inference_pii_ratio() -> None:
    e = _engine()
    assert "pii-response-ratio" in e.policies_for("pii")
    decisions = []
    for i in range(300):  # 300 clean inference events, and PII in 300 training samples: no ratio alert
        e.observe_event(SUBJECT, T0 + timedelta(seconds=i))
        f = Finding.create(detector="pii", kind="pii_in_training_data", subject=SUBJECT, severity="medium",
                           score=0.9, summary="PII", evidence={"run_id": "r1"}, event_id=f"ds-{i}",
                           occurred_at=T0 + timedelta(seconds=i))
        decisions += e.evaluate(f)
    assert decisions and "pii-response-ratio" not in {d.policy_id for d in decisions}
