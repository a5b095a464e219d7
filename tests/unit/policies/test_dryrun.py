"""Dry run: replaying findings (and events) through candidate policies, counts per policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from detectors.finding import Finding, Subject
from policies.dryrun import dry_run
from policies.loader import load_pack, parse_policies

T0 = datetime(2025, 1, 1, tzinfo=UTC)
S = Subject(tenant="acme", model="chat")


def _f(i: int, detector="rule", kind="error_status", severity="high") -> Finding:
    return Finding.create(
        detector=detector,
        kind=kind,
        subject=S,
        severity=severity,
        score=1.0,
        summary="x",
        evidence={"error_type": "timeout"},
        event_id=f"e{i}",
        occurred_at=T0 + timedelta(seconds=i),
    )


def test_counts_per_policy_and_no_side_effects():
    findings = [_f(i) for i in range(30)] + [_f(100 + i, "anomaly", "metric_anomaly", "info") for i in range(5)]
    policies = load_pack()
    r1 = dry_run(policies, findings)
    r2 = dry_run(policies, findings)
    assert r1.to_dict() == r2.to_dict()  # a fresh engine each time: nothing carried over
    assert r1.findings == 35 and r1.suppressed == 5
    fired = r1.fired()
    assert fired == {"rule-error-status": 30, "rule-error-burst": 1}
    tally = {t.policy_id: t for t in r1.policies}
    assert tally["rule-error-burst"].matched == 30 and tally["rule-error-burst"].by_action == {"alert": 1}
    assert tally["suppress-info-statistical"].matched == 5 and tally["suppress-info-statistical"].decisions == 0
    assert r1.total_decisions == len(r1.decisions) == 31
    text = r1.to_text(show=3)
    assert "rule-error-burst" in text and "31 decisions" in text and "... 28 more" in text


def test_since_skips_older_findings_and_max_decisions_bounds_memory():
    findings = [_f(i) for i in range(30)]
    r = dry_run(load_pack(), findings, since=T0 + timedelta(seconds=10), max_decisions=5)
    assert r.skipped == 10 and r.findings == 20
    assert r.fired() == {"rule-error-status": 20}  # 20 errors: under the burst threshold
    assert r.total_decisions == 20 and len(r.decisions) == 5


def test_events_are_merged_by_time_for_ratios():
    policies = parse_policies(
        """
        id: pii-ratio
        version: 1
        match: {detector: pii}
        aggregate: {function: ratio, window: 10m, threshold: 0.01, min_events: 100}
        actions: [{alert: {}}]
        """
    )
    findings = [_f(150 + i, "pii", "pii_detected", "medium") for i in range(3)]
    events = [(S, T0 + timedelta(seconds=i)) for i in range(400)]
    r = dry_run(policies, findings, events=events)
    assert r.events == 400 and r.fired() == {"pii-ratio": 1}
    assert r.decisions[0].labels["aggregate.denominator"] == "152"  # events up to and at the 2nd finding's time: 2 / 152 > 1 %
    # without the events there is no denominator: nothing fires
    assert dry_run(policies, findings).fired() == {}
