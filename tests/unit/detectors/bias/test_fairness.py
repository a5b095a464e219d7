"""CohortFairnessMonitor: windows, significance gates, findings, snapshot/restore."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from detectors.bias.fairness import CohortFairnessMonitor, FairnessConfig, evaluate_window
from detectors.bias.metrics import GroupCounts
from detectors.finding import Subject

SUBJ = Subject(tenant="acme", model="chat", version="7")
T0 = 1_700_000_000.0


def feed(mon, n, rates, *, seed=0, attr="gender", label_rate=None, kind="refusal", t0=T0, step=1.0, subject=SUBJ):
    """Feed n events cycling over the groups in ``rates`` (group -> favourable probability)."""
    rnd = random.Random(seed)
    names = sorted(rates)
    out = []
    for i in range(n):
        g = names[i % len(names)]
        label = None if label_rate is None else rnd.random() < label_rate
        p = rates[g] if label is None else rates[g] * (1.0 if label else 0.5)
        out += mon.update(subject, t0 + i * step, {attr: g, "ignored": "x"}, rnd.random() < p, label, kind=kind)
    return out


def test_clear_disparity_is_found_with_full_evidence():
    mon = CohortFairnessMonitor(FairnessConfig(protected_attributes=("gender",), window_size=1200))
    found = feed(mon, 1200, {"f": 0.6, "m": 0.9})
    assert [f.kind for f in found] == ["demographic_parity"]
    f = found[0]
    ev = f.evidence
    assert (ev["attribute"], ev["group"], ev["reference_group"]) == ("gender", "f", "m")
    assert ev["value"] == pytest.approx(ev["groups"]["m"]["rate"] - ev["groups"]["f"]["rate"])
    assert ev["disparate_impact_ratio"] == pytest.approx(ev["groups"]["f"]["rate"] / ev["groups"]["m"]["rate"])
    assert ev["n"] == {"f": 600, "m": 600}
    assert ev["ci"][0] < ev["groups"]["f"]["rate"] < ev["ci"][1]
    assert ev["p_value_adjusted"] < 0.05 and ev["test"] == "fisher_exact"
    assert f.severity.name in ("high", "critical")
    assert f.window.n == 1200 and f.detector == "bias"
    json.dumps(f.model_dump(mode="json"))  # serialisable


def test_equal_rates_raise_nothing_over_many_windows():
    mon = CohortFairnessMonitor(FairnessConfig(protected_attributes=("gender",), window_size=300))
    found = feed(mon, 300 * 40, {"a": 0.8, "b": 0.8, "c": 0.8}, seed=5)
    # alpha = 0.05 per window: 40 windows give ~2 false alarms at most on average; allow noise
    assert len(found) <= 6


def test_small_groups_are_not_tested():
    cfg = FairnessConfig(protected_attributes=("gender",), window_size=40, min_group_size=30)
    mon = CohortFairnessMonitor(cfg)
    assert feed(mon, 40, {"f": 0.0, "m": 1.0}) == []  # 20 each: below min_group_size
    counts = {"gender": {"f": GroupCounts(n=20), "m": GroupCounts(n=20, favorable=20)}}
    assert evaluate_window(counts, cfg) == []


def test_practical_threshold_gates_tiny_but_significant_gaps():
    cfg = FairnessConfig(protected_attributes=("g",), parity_difference_threshold=0.05)
    counts = {"g": {"a": GroupCounts(n=200000, favorable=180000), "b": GroupCounts(n=200000, favorable=178000)}}
    (d,) = evaluate_window(counts, cfg)
    assert d.significant and not d.practical and not d.alarm


def test_labels_give_equal_opportunity_and_equalized_odds():
    cfg = FairnessConfig(protected_attributes=("g",), min_group_size=30)
    counts = {"g": {
        "a": GroupCounts(n=1000, favorable=600, label_pos=500, tp=450, label_neg=500, fp=150),
        "b": GroupCounts(n=1000, favorable=450, label_pos=500, tp=300, label_neg=500, fp=150),
    }}
    res = {d.metric: d for d in evaluate_window(counts, cfg)}
    assert res["equal_opportunity"].alarm and res["equal_opportunity"].value == pytest.approx(0.3)
    assert not res["equalized_odds"].alarm  # FPRs are equal
    assert res["equalized_odds"].value == pytest.approx(0.3)  # max(TPR diff, FPR diff)
    assert res["demographic_parity"].alarm


def test_holm_family_spans_attributes():
    cfg = FairnessConfig(protected_attributes=("a", "b"))
    counts = {k: {"x": GroupCounts(n=100, favorable=50), "y": GroupCounts(n=100, favorable=60)} for k in ("a", "b")}
    res = evaluate_window(counts, cfg)
    assert len(res) == 2
    assert all(d.p_value_adjusted >= d.p_value for d in res)


def test_time_windows_close_on_next_window_and_tick():
    cfg = FairnessConfig(protected_attributes=("gender",), window_seconds=3600)
    mon = CohortFairnessMonitor(cfg)
    start = 1_700_000_000 - 1_700_000_000 % 3600
    assert feed(mon, 1000, {"f": 0.5, "m": 0.9}, t0=start, step=1.0) == []  # all inside hour 0
    closed = mon.update(SUBJ, start + 3600 + 5, {"gender": "f"}, True, kind="refusal")
    assert [f.kind for f in closed] == ["demographic_parity"]
    w = closed[0].window
    assert w.start == datetime.fromtimestamp(start, tz=UTC) and w.end - w.start == timedelta(hours=1)
    assert w.n == 1000
    # the new window holds one event; tick past its end closes it (nothing to report)
    assert mon.tick(start + 7200 + 1) == []
    assert mon.snapshot()["windows"] == {}


def test_datetime_timestamps_and_flush():
    mon = CohortFairnessMonitor(FairnessConfig(protected_attributes=("gender",), window_size=10_000))
    t = datetime(2025, 1, 1, tzinfo=UTC)
    rnd = random.Random(2)
    for i in range(1000):
        g = "f" if i % 2 else "m"
        mon.update(SUBJ, t + timedelta(seconds=i), {"gender": g}, rnd.random() < (0.4 if g == "f" else 0.9))
    assert mon.current(SUBJ)["gender"]["demographic_parity_difference"] > 0.3
    found = mon.flush(SUBJ)
    assert len(found) == 1 and found[0].window.start == t
    assert mon.flush() == []


def test_snapshot_restore_continues_identically():
    cfg = FairnessConfig(protected_attributes=("gender", "age"), window_size=900, emit_window_summary=True)
    whole = CohortFairnessMonitor(cfg)
    a = feed(whole, 1800, {"f": 0.6, "m": 0.85}, seed=1)
    half = CohortFairnessMonitor(cfg)
    rnd = random.Random(1)
    b = []
    names = ["f", "m"]
    for i in range(1800):
        if i == 1300:
            half = CohortFairnessMonitor.restore(json.loads(json.dumps(half.snapshot())))
        g = names[i % 2]
        b += half.update(SUBJ, T0 + i, {"gender": g, "ignored": "x"}, rnd.random() < {"f": 0.6, "m": 0.85}[g], None, kind="refusal")
    assert [f.finding_id for f in a] == [f.finding_id for f in b]
    assert [f.evidence for f in a] == [f.evidence for f in b]
    assert any(f.kind == "fairness_window" for f in a)


def test_finding_ids_are_stable_and_distinct_per_kind_and_subject():
    cfg = FairnessConfig(protected_attributes=("gender",), window_size=1000)
    ids = []
    for kind, subj in (("refusal", SUBJ), ("refusal", SUBJ), ("thumbs", SUBJ), ("refusal", SUBJ.model_copy(update={"version": "8"}))):
        mon = CohortFairnessMonitor(cfg)
        ids.append(feed(mon, 1000, {"f": 0.5, "m": 0.9}, kind=kind, subject=subj)[0].finding_id)
    assert ids[0] == ids[1]
    assert len(set(ids)) == 3


def test_group_cap_and_hashing_bound_state_and_hide_values():
    cfg = FairnessConfig(protected_attributes=("zip",), window_size=10_000, max_groups_per_attribute=3, hash_group_values=True)
    mon = CohortFairnessMonitor(cfg)
    for i in range(50):
        mon.update(SUBJ, T0 + i, {"zip": f"9{i:04d}"}, True)
    groups = mon.snapshot()["windows"]
    (w,) = groups.values()
    names = set(w["window"]["counts"]["zip"])
    assert len(names) == 4 and "__other__" in names
    assert not any(n.startswith("9") for n in names)


def test_missing_attribute_values_are_ignored_not_counted():
    mon = CohortFairnessMonitor(FairnessConfig(protected_attributes=("gender",), window_size=10))
    mon.update(SUBJ, T0, {}, True)
    mon.update(SUBJ, T0, {"gender": ""}, True)
    mon.update(SUBJ, T0, {"gender": None}, True)
    (w,) = mon.snapshot()["windows"].values()
    assert w["window"]["n"] == 3 and w["window"]["counts"] == {}


def test_config_validation():
    with pytest.raises(ValueError):
        FairnessConfig(protected_attributes=())
    with pytest.raises(ValueError):
        FairnessConfig(protected_attributes=("g",), alpha=0)
