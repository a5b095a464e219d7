"""DriftMonitor: pinning, windows, calibrated alarms, findings, snapshot/restore."""

import json

import numpy as np
import pytest

from detectors.drift.monitor import DriftConfig, DriftMonitor, severity_for
from detectors.features.tabular import extract_features
from detectors.finding import Severity, Subject

SUBJECT = Subject(tenant="acme", model="chat", version="v1")


class Traffic:
    """Seeded synthetic LLM traffic: real feature extraction over template texts, plus embeddings."""

    WORDS = "the a model answer cloud cost policy user data query and of to is for with".split()

    def __init__(self, seed: int, dim: int = 24):
        self.rng = np.random.default_rng(seed)
        self.dim = dim

    def event(self, verbosity: float = 1.0, topic: float = 0.0):
        r = self.rng
        n_words = max(1, int(r.lognormal(np.log(60 * verbosity), 0.35)))
        resp = " ".join(r.choice(self.WORDS, n_words)) + "."
        prompt = " ".join(r.choice(self.WORDS, int(r.integers(5, 25)))) + "?"
        feats = extract_features(prompt, resp, completion_tokens=int(n_words * 1.3),
                                 latency_ms=float(200 + 20 * n_words + r.exponential(50)),
                                 finish_reason="stop" if r.random() > 0.05 else "length")
        v = r.normal(size=self.dim)
        v[0] += topic
        return feats, {"response": (v / np.linalg.norm(v)).astype(np.float32)}


def _cfg(**kw):
    base = dict(reference_size=300, window_size=100, step=50, embedding_reference_size=200, n_permutations=100)
    base.update(kw)
    return DriftConfig(**base)


def _feed(mon, traffic, n, t0, **shift):
    out = []
    for i in range(n):
        f, e = traffic.event(**shift)
        out.extend((t0 + i, x) for x in mon.update(f, e, ts=t0 + i))
    return out


def test_auto_pins_first_events_then_evaluates_every_step():
    mon = DriftMonitor(_cfg(), SUBJECT)
    tr = Traffic(0)
    _feed(mon, tr, 299, 0)
    assert mon.phase == "collecting"
    _feed(mon, tr, 1, 299)
    assert mon.phase == "monitoring" and mon.reference_source == "first_events"
    _feed(mon, tr, 99, 300)
    assert mon.windows_evaluated == 0
    _feed(mon, tr, 1, 399)
    assert mon.windows_evaluated == 1 and mon.last_result.n_cur == 100
    _feed(mon, tr, 50, 400)
    assert mon.windows_evaluated == 2


def test_no_alarm_on_same_distribution_replays():
    alarms = 0
    windows = 0
    for seed in range(6):
        mon = DriftMonitor(_cfg(seed=seed), SUBJECT)
        tr = Traffic(100 + seed)
        alarms += len(_feed(mon, tr, 300 + 500, 0))
        windows += mon.windows_evaluated
    assert windows == 6 * 9
    assert alarms == 0


def test_verbosity_change_is_flagged_within_300_events_with_evidence():
    mon = DriftMonitor(_cfg(), SUBJECT)
    tr = Traffic(1)
    assert _feed(mon, tr, 500, 0) == []
    found = _feed(mon, tr, 300, 1000, verbosity=1.8)
    assert found, "verbosity change not flagged"
    t, f = found[0]
    assert t - 1000 < 300
    assert f.detector == "drift" and f.kind == "distribution_drift" and f.subject == SUBJECT
    assert "response_chars" in f.evidence["drifted"] and "completion_tokens" in f.evidence["drifted"]
    feat = f.evidence["features"]["response_chars"]
    assert feat["drifted"] and feat["p_value"] < f.evidence["window_alpha"] and feat["effect"] >= 0.1
    assert feat["n_ref"] == 300 and feat["n_cur"] == 100
    assert f.severity >= Severity.medium and f.window.n == 100
    assert not f.evidence["features"]["prompt_chars"]["drifted"]
    json.dumps(f.model_dump(mode="json"))  # serialisable


def test_embedding_only_shift_is_flagged_by_mmd():
    mon = DriftMonitor(_cfg(), SUBJECT)
    tr = Traffic(2)
    _feed(mon, tr, 300, 0)
    found = _feed(mon, tr, 300, 1000, topic=2.5)
    assert found
    assert found[0][1].evidence["drifted"] == ["response_embedding"]
    assert found[0][1].evidence["features"]["response_embedding"]["test"] == "mmd"


def test_recovery_emits_resolved_finding():
    mon = DriftMonitor(_cfg(), SUBJECT)
    tr = Traffic(3)
    _feed(mon, tr, 300, 0)
    _feed(mon, tr, 100, 1000, verbosity=2.0)
    assert mon.drifting
    kinds = [f.kind for _, f in _feed(mon, tr, 200, 2000)]
    assert kinds[-1] == "drift_resolved" and not mon.drifting


def test_snapshot_restore_continues_identically():
    tr_a, tr_b = Traffic(4), Traffic(4)
    a = DriftMonitor(_cfg(), SUBJECT)
    _feed(a, tr_a, 380, 0)
    b = DriftMonitor.restore(json.loads(json.dumps(a.snapshot())))
    _feed(DriftMonitor(_cfg(), SUBJECT), tr_b, 380, 0)  # advance the twin traffic generator
    fa = _feed(a, tr_a, 200, 500, verbosity=1.7)
    fb = _feed(b, tr_b, 200, 500, verbosity=1.7)
    assert fa and [(t, f.finding_id, f.evidence["drifted"]) for t, f in fa] == [
        (t, f.finding_id, f.evidence["drifted"]) for t, f in fb]
    assert b.windows_evaluated == a.windows_evaluated


def test_snapshot_during_collection_restores():
    mon = DriftMonitor(_cfg(), SUBJECT)
    tr = Traffic(5)
    _feed(mon, tr, 120, 0)
    back = DriftMonitor.restore(json.loads(json.dumps(mon.snapshot())))
    _feed(back, tr, 180, 120)
    assert back.phase == "monitoring" and len(back.window_samples()["reference"]) == 300


def test_time_closed_window_on_slow_traffic():
    mon = DriftMonitor(_cfg(window_seconds=600, min_window=30), SUBJECT)
    tr = Traffic(6)
    _feed(mon, tr, 300, 0)
    for i in range(90):  # one event a minute: the 100-event window never fills
        f, e = tr.event()
        mon.update(f, e, ts=10_000 + 60 * i)
    assert mon.windows_evaluated == 3
    assert mon.last_result.n_cur == 30


def test_pin_uploaded_reference_and_flush():
    tr = Traffic(7)
    rows, embs = zip(*(tr.event() for _ in range(400)))
    mon = DriftMonitor(_cfg(max_reference=250), SUBJECT)
    mon.pin_reference(rows, embs, source="training_eval")
    assert mon.phase == "monitoring" and len(mon.window_samples()["reference"]) == 250
    _feed(mon, tr, 70, 10, verbosity=2.0)
    assert mon.windows_evaluated == 0
    found = mon.flush()
    assert found and found[0].window.n == 70
    with pytest.raises(ValueError):
        mon.pin_reference([], None)


def test_window_alpha_and_severity_scale():
    cfg = DriftConfig(alpha=0.01, horizon_windows=1000)
    assert cfg.window_alpha == pytest.approx(1e-5)
    assert severity_for("ks", 0.12) == Severity.low
    assert severity_for("ks", 0.6) == Severity.critical
    assert severity_for("mmd", 0.25) == Severity.medium
