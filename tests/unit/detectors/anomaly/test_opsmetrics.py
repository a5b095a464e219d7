"""Tests of the per-(tenant, model) operational metrics stage (detectors.anomaly.opsmetrics)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from detectors.anomaly.detector import AnomalyConfig
from detectors.anomaly.opsmetrics import METRICS, OpsMetricsConfig, OpsMetricsMonitor
from detectors.finding import Subject

T0 = datetime(2025, 1, 1, tzinfo=UTC)
SUBJ = Subject(tenant="acme", model="gpt-x")


def _events(n_intervals: int, per_interval: int = 20, spike: range = range(0), seed: int = 1):
    """(ts, latency, is_error, tokens, cost) for steady traffic; latency x5 in the `spike` intervals."""
    r = random.Random(seed)
    step = 60.0 / per_interval
    for i in range(n_intervals * per_interval):
        k = i // per_interval
        lat = r.gauss(100.0, 8.0) * (5.0 if k in spike else 1.0)
        yield T0 + timedelta(seconds=i * step), lat, r.random() < 0.02, 100 + r.randint(0, 20), 0.001


def _run(mon: OpsMetricsMonitor, events) -> list:
    out = []
    for ts, lat, err, tok, cost in events:
        out += mon.observe(SUBJ, ts, lat, err, tok, cost)
    return out


def test_interval_metrics_are_computed_from_closed_buckets() -> None:
    mon = OpsMetricsMonitor(OpsMetricsConfig(interval_s=60))
    lat = [10.0, 20.0, 30.0, 40.0, 1000.0]
    for j, v in enumerate(lat):
        mon.observe(SUBJ, T0 + timedelta(seconds=j), v, j == 0, 10, 0.5)
    assert mon.closed_intervals == 0  # the first minute is still open
    mon.observe(SUBJ, T0 + timedelta(seconds=61), 15.0, False, None, None)
    assert mon.closed_intervals == 1
    det = mon.detector("acme", "gpt-x", "latency_p95_ms")
    assert det is not None and det.n == 1
    snap = mon.snapshot()
    (bucket,) = [b for b in snap["buckets"]]
    assert bucket[3]["requests"] == 1  # only the second minute is open
    # recompute the closed minute directly
    from detectors.anomaly.opsmetrics import _Bucket

    m = mon.interval_metrics(("acme", "gpt-x"), 0, _Bucket(5, 1, 50, 2.5, lat, 5))
    assert m.values["latency_p50_ms"] == 30.0
    assert m.values["latency_p95_ms"] == pytest.approx(808.0)
    assert m.values["error_rate"] == 0.2
    assert m.values["request_rate"] == pytest.approx(5 / 60)
    assert m.values["tokens"] == 50.0 and m.values["cost"] == 2.5
    assert m.end - m.start == timedelta(seconds=60)


def test_latency_surge_raises_metric_anomaly_findings() -> None:
    mon = OpsMetricsMonitor()
    findings = _run(mon, _events(300, spike=range(250, 253)))
    lat = [f for f in findings if f.evidence["metric"].startswith("latency")]
    assert lat, "the latency surge was not reported"
    first = min(lat, key=lambda f: f.window.start)
    assert first.window.start == T0 + timedelta(minutes=250)
    assert first.detector == "anomaly" and first.kind == "metric_anomaly"
    ev = first.evidence
    assert set(ev) >= {"metric", "value", "expected_low", "expected_high", "score"}
    assert ev["value"] > ev["expected_high"]
    assert first.score == ev["score"] >= AnomalyConfig().alarm
    assert first.window.n == 20
    # nothing before the surge except at most a stray alarm
    assert len([f for f in findings if f.window.start < T0 + timedelta(minutes=250)]) <= 2


def test_replay_gives_identical_finding_ids() -> None:
    a = [f.finding_id for f in _run(OpsMetricsMonitor(), _events(300, spike=range(250, 253)))]
    b = [f.finding_id for f in _run(OpsMetricsMonitor(), _events(300, spike=range(250, 253)))]
    assert a and a == b
    assert len(set(a)) == len(a)


def test_snapshot_restore_midstream_gives_the_same_findings() -> None:
    evs = list(_events(300, spike=range(250, 253)))
    ref = [f.finding_id for f in _run(OpsMetricsMonitor(), evs)]
    mon = OpsMetricsMonitor()
    head = [f.finding_id for f in _run(mon, evs[: 200 * 20 + 7])]
    mon2 = OpsMetricsMonitor.restore(json.loads(json.dumps(mon.snapshot())))
    tail = [f.finding_id for f in _run(mon2, evs[200 * 20 + 7 :])]
    assert head + tail == ref


def test_late_events_are_counted_and_dropped() -> None:
    mon = OpsMetricsMonitor(OpsMetricsConfig(interval_s=60))
    mon.observe(SUBJ, T0, 10.0, False, 1, 0.1)
    mon.observe(SUBJ, T0 + timedelta(seconds=130), 10.0, False, 1, 0.1)  # watermark passes minute 0 (minute 1 is empty)
    assert mon.closed_intervals == 1
    mon.observe(SUBJ, T0 + timedelta(seconds=5), 10.0, False, 1, 0.1)
    assert mon.late_events == 1


def test_allowed_lateness_keeps_buckets_open() -> None:
    mon = OpsMetricsMonitor(OpsMetricsConfig(interval_s=60, allowed_lateness_s=30))
    mon.observe(SUBJ, T0, 10.0, False, 1, 0.1)
    mon.observe(SUBJ, T0 + timedelta(seconds=80), 10.0, False, 1, 0.1)
    assert mon.closed_intervals == 0
    mon.observe(SUBJ, T0 + timedelta(seconds=30), 10.0, False, 1, 0.1)  # late but within lateness
    assert mon.late_events == 0
    mon.advance(T0 + timedelta(seconds=200))
    assert mon.closed_intervals >= 2


def test_silent_gap_is_scored_as_zero_traffic() -> None:
    mon = OpsMetricsMonitor(OpsMetricsConfig(interval_s=60, max_gap_fill=5))
    mon.observe(SUBJ, T0, 10.0, False, 1, 0.1)
    mon.observe(SUBJ, T0 + timedelta(minutes=20), 10.0, False, 1, 0.1)
    mon.advance(T0 + timedelta(minutes=21))
    rate = mon.detector("acme", "gpt-x", "request_rate")
    lat = mon.detector("acme", "gpt-x", "latency_p50_ms")
    assert rate.n == 1 + 5 + 1  # first minute, 5 filled empty minutes, the resumed minute
    assert lat.n == 2  # latency is undefined in empty minutes


def test_subjects_are_kept_apart() -> None:
    mon = OpsMetricsMonitor()
    other = Subject(tenant="other", model="gpt-x")
    mon.observe(SUBJ, T0, 10.0, False, 1, 0.1)
    mon.observe(other, T0 + timedelta(seconds=1), 10.0, True, 1, 0.1)
    mon.advance(T0 + timedelta(minutes=2))
    for metric in METRICS[2:]:
        assert mon.detector("acme", "gpt-x", metric).n == 1
        assert mon.detector("other", "gpt-x", metric).n == 1


def test_one_models_state_moves_to_another_monitor_and_carries_on_identically() -> None:
    cfg = OpsMetricsConfig(interval_s=60, detector=AnomalyConfig(warmup=10))
    events = list(_events(80, spike=range(70, 72)))
    first, rest = events[: 60 * 20 + 7], events[60 * 20 + 7:]  # cut in the middle of an interval
    other = Subject(tenant="acme", model="other")
    original = OpsMetricsMonitor(cfg)
    _run(original, first)
    original.observe(other, first[-1][0], 50.0, False, 10, 0.0)
    state = json.loads(json.dumps(original.model_state("acme", "gpt-x")))  # a checkpoint, over the wire
    assert original.model_state("acme", "nobody") is None
    moved = OpsMetricsMonitor(cfg)
    assert moved.restore_model("acme", "gpt-x", state) and not moved.restore_model("acme", "gpt-x", state)
    assert moved.detector("acme", "gpt-x", "latency_p95_ms") is not None
    assert moved.detector("acme", "other", "latency_p95_ms") is None  # only that model's part moved
    a, b = _run(original, rest), _run(moved, rest)
    assert [(f.finding_id, f.score) for f in a] == [(f.finding_id, f.score) for f in b]
    assert any(f.evidence["metric"].startswith("latency") for f in a)  # the spike was found by both
    original.forget_model("acme", "gpt-x")
    assert original.model_state("acme", "gpt-x") is None and original.detector("acme", "other", "request_rate")


def test_a_checkpoint_with_an_earlier_detector_format_restores_without_those_detectors() -> None:
    # issue 20 replaced the detector (snapshot version 6): a checkpoint written before keeps its buckets and
    # watermark, and each metric series whose detector state it cannot read starts afresh
    cfg = OpsMetricsConfig(interval_s=60, detector=AnomalyConfig(warmup=10))
    original = OpsMetricsMonitor(cfg)
    _run(original, list(_events(30))[: 20 * 20 + 7])
    state = json.loads(json.dumps(original.model_state("acme", "gpt-x")))
    assert state["detectors"]
    for snap in state["detectors"].values():
        snap["version"] = 5
    moved = OpsMetricsMonitor(cfg)
    assert moved.restore_model("acme", "gpt-x", state) == 1
    assert moved.detector("acme", "gpt-x", "latency_p95_ms") is None
    assert moved.model_state("acme", "gpt-x")["buckets"] == state["buckets"]
    whole = json.loads(json.dumps(original.snapshot()))
    for row in whole["detectors"]:
        row[3]["version"] = 5
    assert OpsMetricsMonitor.restore(whole).detector("acme", "gpt-x", "tokens") is None
