"""Tests of the ops-metrics anomaly benchmark's bookkeeping (bench.ops_anomaly)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from bench import ops_anomaly as O
from detectors.finding import Finding, Severity, Subject, Window


def _finding(subject: int, minute: float, metric: str, score: float = 0.8) -> Finding:
    end = O.T0 + timedelta(minutes=minute)
    return Finding.create(detector="anomaly", kind="metric_anomaly", subject=Subject(tenant="t", model=f"model{subject}"),
                          severity=Severity.low, score=score, summary="x", evidence={"metric": metric},
                          window=Window(start=end - timedelta(minutes=1), end=end, n=1), occurred_at=end, key=metric)


def test_detections_delays_and_false_alarms_are_counted_apart() -> None:
    profiles = [O._profile(np.random.default_rng(i)) for i in range(2)]
    burst = O.Incident(0, "error_burst", start=2000, duration=20, size=0.2)
    leak = O.Incident(0, "slow_leak", start=4000, duration=600, size=1.8)
    profiles[0].incidents += [burst, leak]
    findings = [
        _finding(0, 2003, "error_rate"),  # the burst, 3 minutes in
        _finding(0, 2010, "latency_p95_ms"),  # another metric during the burst: neither detection nor false alarm
        _finding(0, 4700, "latency_p95_ms"),  # 100 minutes after the leak ended: a false alarm
        _finding(1, 600, "request_rate"),  # the learning day
        _finding(1, 3000, "tokens", score=0.95),  # a high-severity false alarm
    ]
    res = O.evaluate(profiles, [burst, leak], findings, days=3)
    assert burst.first_detection == 3 and leak.first_detection is None
    assert res["false_day1"] == 1 and res["false_later"] == 2
    assert res["per_metric"] == {"latency_p95_ms": 1, "tokens": 1}
    assert res["false_per_subject_day"] == 2 / 4 and res["false_high_per_subject_day"] == 1 / 4


def test_incidents_reach_the_stage_and_are_found() -> None:
    # two days, two models: every incident scheduled after the learning day is visible in the metrics
    profiles, incidents, findings, events, _ = O.simulate(2, 3, seed=3, interval_s=60.0)
    assert events > 50_000 and incidents and all(i.subject == 0 for i in incidents)
    O.evaluate(profiles, incidents, findings, days=3)
    assert sum(i.first_detection is not None for i in incidents) >= len(incidents) - 1
