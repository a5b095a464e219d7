"""The policy engine on the built-in pack and on small policy sets: decisions, order, state."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from detectors.finding import Finding, Severity, Subject
from policies import Decision, DecisionAction
from policies.engine import PolicyEngine
from policies.errors import PolicyError
from policies.loader import load_pack, parse_policies

T0 = datetime(2025, 1, 1, tzinfo=UTC)
ACME = Subject(tenant="acme", model="chat", version="3")


def _f(detector="rule", kind="latency_slo", severity="medium", *, subject=ACME, at=0.0, event_id="e1", **kw) -> Finding:
    ev = kw.pop("evidence", {"latency_ms": 9000.0, "slo_ms": 5000.0})
    return Finding.create(
        detector=detector,
        kind=kind,
        subject=subject,
        severity=severity,
        score=kw.pop("score", 0.5),
        summary=kw.pop("summary", f"{detector} {kind}"),
        evidence=ev,
        event_id=event_id,
        occurred_at=T0 + timedelta(seconds=at),
        **kw,
    )


def engine(yaml_text: str | None = None) -> PolicyEngine:
    return PolicyEngine(load_pack() if yaml_text is None else parse_policies(yaml_text))


def by(decisions, policy_id):
    return [d for d in decisions if d.policy_id == policy_id]


def test_latency_alert_from_the_builtin_pack():
    (d,) = engine().evaluate(_f(severity="high"))
    assert d.policy_id == "rule-latency-slo" and d.policy_version == 1 and d.mode == "enforce"
    assert d.action is DecisionAction.alert and d.severity is Severity.high
    assert d.summary == "latency 9000 ms above the 5000 ms SLO on acme/chat"
    assert d.dedup_key == "rule:acme:chat:latency_slo" and d.route == "webhook:ml-ops"
    assert d.finding_ids and d.created_at == T0
    # a valid Decision: validating its dump gives the same object
    assert Decision.model_validate(json.loads(d.model_dump_json())) == d


def test_decision_ids_are_stable_across_engines_and_match_make_id():
    f = _f(detector="pii", kind="pii_detected", severity="critical", evidence={"entities": {"US_SSN": 1}})
    a = engine().evaluate(f)
    b = engine().evaluate(f)
    assert [d.decision_id for d in a] == [d.decision_id for d in b]
    assert len({d.decision_id for d in a}) == len(a) == 3  # alert + tag (pii-sensitive), tag (pii-detected)
    first = by(a, "pii-sensitive")[0]
    assert first.decision_id == Decision.make_id("pii-sensitive", 1, "alert", 0, f.finding_id)
    other = engine().evaluate(_f(detector="pii", kind="pii_detected", severity="critical", event_id="e2"))
    assert not {d.decision_id for d in other} & {d.decision_id for d in a}


def test_drift_requests_a_retrain_that_needs_approval():
    ds = engine().evaluate(_f(detector="drift", kind="feature_drift", severity="high", evidence={}))
    (job,) = [d for d in ds if d.action is DecisionAction.job]
    assert job.policy_id == "drift-retrain" and job.job.kind == "retrain" and job.job.approval == "required"
    assert job.dedup_key == "retrain:acme:chat:3" and job.job.params == {"reason": "drift"}
    assert by(ds, "drift-alert")
    assert engine().evaluate(_f(detector="drift", kind="feature_drift", severity="low", evidence={})) == []


def test_bias_rollback_is_monitor_only():
    ds = engine().evaluate(_f(detector="bias", kind="fairness_gap", severity="critical", evidence={}))
    (rb,) = by(ds, "bias-rollback")
    assert rb.mode == "monitor" and rb.job.kind == "rollback"
    assert {d.mode for d in by(ds, "bias-alert")} == {"enforce"}


def test_info_statistical_findings_are_suppressed_without_a_record():
    e = engine()
    assert e.evaluate(_f(detector="anomaly", kind="metric_anomaly", severity="info", evidence={"metric": "tokens"})) == []
    assert e.suppressed == 1
    (d,) = e.evaluate(_f(detector="anomaly", kind="metric_anomaly", severity="medium", evidence={"metric": "tokens", "value": 9}))
    assert d.policy_id == "anomaly-alert" and d.dedup_key == "anomaly:acme:chat:metric_anomaly:tokens"


def test_unknown_detector_meets_only_wildcard_policies():
    e = engine()
    assert e.policies_for("custom") == [] and e.evaluate(_f(detector="custom")) == []


PII_RATIO = """
policies:
  - id: pii-ratio
    version: 4
    match: {detector: pii, tenant: acme}
    aggregate: {function: ratio, window: 10m, group_by: [subject.tenant, subject.model], threshold: 0.01, min_events: 100, distinct: event_id}
    actions:
      - alert: {severity: high, summary: "PII in {aggregate.value:.1%} of {aggregate.denominator} responses", route: pagerduty:privacy}
"""


def _pii_traffic(e: PolicyEngine, n_events: int, every: int, start: float = 0.0, subject: Subject = ACME):
    out = []
    for i in range(n_events):
        t = start + i * 0.5
        e.observe_event(subject, T0 + timedelta(seconds=t))
        if i % every == every - 1:
            out += e.evaluate(_f(detector="pii", kind="pii_detected", subject=subject, at=t, event_id=f"ev{start}-{i}", evidence={}))
    return out


def test_pii_ratio_fires_once_per_window_per_model():
    e = engine(PII_RATIO)
    out = _pii_traffic(e, 1000, every=50)  # 2 % of responses, 500 s: one tumbling window
    (d,) = out
    assert d.policy_id == "pii-ratio" and d.policy_version == 4 and d.severity is Severity.high
    assert d.subject == Subject(tenant="acme", model="chat", version=None)
    assert d.labels["aggregate.function"] == "ratio" and float(d.labels["aggregate.value"]) > 0.01
    assert d.summary.startswith("PII in 2.0% of ") and d.dedup_key == "pii-ratio:acme/chat"
    # the next 10-minute window fires again, once; a low-PII model never does
    assert len(_pii_traffic(e, 1200, every=50, start=600)) == 1
    other = Subject(tenant="acme", model="quiet")
    assert _pii_traffic(e, 2000, every=400, subject=other) == []
    # the denominator counts only events the match's subject conditions admit (tenant acme here),
    # even when the group key does not separate tenants
    per_model = PII_RATIO.replace("group_by: [subject.tenant, subject.model]", "group_by: [subject.model]")
    e2 = engine(per_model)
    for i in range(5000):
        e2.observe_event(Subject(tenant="zeta", model="chat"), T0 + timedelta(seconds=i * 0.01))
    (d2,) = _pii_traffic(e2, 150, every=50)  # fires at 2 / 100 acme events; with zeta's it would be 2 / 5100
    assert d2.labels["aggregate.denominator"] == "100" and d2.subject == Subject(tenant="*", model="chat")


def test_redelivered_finding_does_not_count_twice():
    e = engine(PII_RATIO)
    for i in range(200):
        e.observe_event(ACME, T0 + timedelta(seconds=i))
    f = _f(detector="pii", kind="pii_detected", at=199, event_id="same", evidence={})
    assert e.evaluate(f) == [] and e.evaluate(f) == []  # 1/200, and still 1/200 after re-delivery
    g = _f(detector="pii", kind="pii_detected", at=199, event_id="other", evidence={})
    h = _f(detector="pii", kind="pii_detected", at=199, event_id="third", evidence={})
    assert e.evaluate(g) == [] and len(e.evaluate(h)) == 1  # 3/200 = 1.5 %


ORDERED = """
policies:
  - id: alert-all
    version: 1
    actions: [{alert: {summary: "{detector}"}}]
  - id: mute-sandbox
    version: 2
    priority: 10
    match: {model: sandbox}
    actions: [{suppress: {reason: sandbox model}}]
  - id: mute-monitor
    version: 1
    priority: 20
    mode: monitor
    match: {tenant: acme}
    actions: [{suppress: }]
  - id: count-all
    version: 1
    aggregate: {function: count, window: 1m, group_by: [detector], threshold: 1}
    actions: [{alert: {}}]
"""


def test_priority_order_and_suppress():
    e = engine(ORDERED)
    assert [p.id for p in e.policies] == ["mute-monitor", "mute-sandbox", "alert-all", "count-all"]
    sandbox = Subject(tenant="acme", model="sandbox")
    ds = e.evaluate(_f(subject=sandbox))
    # the monitor suppress is recorded but does not stop; the enforce one stops alert-all and count-all
    assert [(d.policy_id, d.action.value, d.mode) for d in ds] == [
        ("mute-monitor", "suppress", "monitor"),
        ("mute-sandbox", "suppress", "enforce"),
    ]
    assert ds[1].summary == "sandbox model"
    ds = e.evaluate(_f(subject=Subject(tenant="beta", model="chat"), event_id="x"))
    assert [d.policy_id for d in ds] == ["alert-all"]
    ds = e.evaluate(_f(subject=Subject(tenant="beta", model="chat"), event_id="y", at=1))
    assert [d.policy_id for d in ds] == ["alert-all", "count-all"]  # 2 > 1 in the minute (sandbox not counted)
    agg = ds[1]
    assert agg.subject == Subject(tenant="*", model="*") and agg.labels["aggregate.group"] == "rule"


def test_duplicate_ids_and_bad_policies_are_rejected():
    policies = parse_policies("id: a\nversion: 1\nactions: [{tag: x}]\n")
    with pytest.raises(PolicyError, match="duplicate policy id"):
        PolicyEngine(policies * 2)
    from policies.schema import Policy

    bad = Policy.model_validate({"id": "b", "version": 1, "match": {"score": {"gt": "x"}}, "actions": [{"tag": "x"}]})
    with pytest.raises(PolicyError, match=r"policy b: match.score.gt: score is a number"):
        PolicyEngine([bad])


def test_snapshot_restore_and_version_change():
    e = engine(PII_RATIO)
    _pii_traffic(e, 150, every=1000)  # 150 events, no findings yet
    state = json.loads(json.dumps(e.snapshot()))
    fresh = engine(PII_RATIO)
    assert fresh.restore(state) == ["pii-ratio"]
    f1, f2 = (_f(detector="pii", kind="pii_detected", at=74, event_id=x, evidence={}) for x in ("a", "b"))
    assert fresh.evaluate(f1) == [] and len(fresh.evaluate(f2)) == 1  # 2/150 > 1 %: the events were restored
    bumped = engine(PII_RATIO.replace("version: 4", "version: 5"))
    assert bumped.restore(state) == []  # another version starts empty
    assert bumped.evaluate(f1) == [] and bumped.evaluate(f2) == []
    with pytest.raises(ValueError):
        bumped.restore({"version": 99})


def test_replay_is_deterministic():
    findings = [
        _f(detector=d, kind=k, severity=s, at=i, event_id=f"e{i}", evidence={"metric": "cost"})
        for i, (d, k, s) in enumerate(
            [("rule", "error_status", "high")] * 30 + [("anomaly", "metric_anomaly", "critical"), ("bias", "gap", "high")] * 5
        )
    ]
    a = [d.model_dump() for d in engine().evaluate_many(findings)]
    b = [d.model_dump() for d in engine().evaluate_many(findings)]
    assert a == b
    assert len([d for d in a if d["policy_id"] == "rule-error-burst"]) == 1  # 30 errors in 5 min > 25


def test_index_keeps_the_global_order_of_indexed_and_wildcard_policies():
    e = engine(
        """
        policies:
          - {id: rule-low, version: 1, priority: 0, match: {detector: rule}, actions: [{tag: a}]}
          - {id: any-high, version: 1, priority: 5, actions: [{tag: b}]}
          - {id: pii-only, version: 1, priority: 9, match: {detector: [pii]}, actions: [{tag: c}]}
          - {id: rule-same, version: 1, priority: 0, match: {detector: {in: [rule, x]}}, actions: [{tag: d}]}
        """
    )
    assert e.policies_for("rule") == ["any-high", "rule-low", "rule-same"]
    assert e.policies_for("pii") == ["pii-only", "any-high"]
    assert e.policies_for("drift") == ["any-high"]
    assert [d.tags for d in e.evaluate(_f())] == [["b"], ["a"], ["d"]]
