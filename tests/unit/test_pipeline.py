"""The stream pipeline without Kafka: rule detector, minimal policy, dead letters, stable ids."""

from __future__ import annotations

from detectors.finding import Severity
from streams.pipeline import Pipeline, PipelineConfig
from detectors.rules import RuleConfig
from tests.events import BAD_INPUTS, inference, raw


def make() -> Pipeline:
    return Pipeline(PipelineConfig(rules=RuleConfig(latency_slo_ms=2000), alert_min_severity="high"))


def test_healthy_call_yields_nothing() -> None:
    out = make().process(raw(inference("e1")), topic="warden.inference", partition=0, offset=1)
    assert out.event is not None and out.dead_letter is None
    assert out.findings == [] and out.decisions == []


def test_error_call_yields_a_finding_and_an_alert_decision() -> None:
    out = make().process(raw(inference("e2", status="error")), topic="warden.inference", partition=0, offset=2)
    assert [(f.detector, f.kind, f.severity) for f in out.findings] == [("rule", "error_status", Severity.high)]
    assert out.findings[0].event_id == "e2"
    assert len(out.decisions) == 1
    d = out.decisions[0]
    assert d.action.value == "alert" and d.finding_ids == [out.findings[0].finding_id]
    assert d.policy_id and d.policy_version == 1


def test_latency_above_slo_is_medium_then_high() -> None:
    p = make()
    slow = p.process(raw(inference("e3", latency_ms=3000)), topic="t").findings
    very = p.process(raw(inference("e4", latency_ms=9000)), topic="t").findings
    assert [(f.kind, f.severity) for f in slow] == [("latency_slo", Severity.medium)]
    assert [(f.kind, f.severity) for f in very] == [("latency_slo", Severity.high)]
    assert p.process(raw(inference("e5", latency_ms=2000)), topic="t").findings == []


def test_reprocessing_gives_identical_ids() -> None:
    payload = raw(inference("e6", status="error", latency_ms=10_000))
    a = make().process(payload, topic="t", partition=1, offset=7)
    b = make().process(payload, topic="t", partition=1, offset=9)
    assert [f.finding_id for f in a.findings] == [f.finding_id for f in b.findings]
    assert len({f.finding_id for f in a.findings}) == 2
    assert [d.decision_id for d in a.decisions] == [d.decision_id for d in b.decisions]


def test_every_bad_input_becomes_a_dead_letter_without_raising() -> None:
    p = make()
    for i, (payload, code) in enumerate(BAD_INPUTS.values()):
        out = p.process(payload, topic="warden.inference", partition=0, offset=i)
        assert out.dead_letter is not None and out.dead_letter.code == code
        assert out.dead_letter.offset == i and out.findings == []
