"""DriftMonitor: pinning, windows, calibrated alarms, findings, snapshot/restore."""

import json

import numpy as np
import pytest

from detectors.drift.monitor import DriftConfig, DriftMonitor, severity_for
from detectors.features.tabular import PROMPT_KEY, extract_features
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


# ---- the same prompts answered again: the paired length test ------------------------------------------------
_LENGTH_ONLY = dict(numeric_features=("response_chars",), categorical_features=())


def _answers(n_prompts: int, run: int, factor: float = 1.0, prompts: int = 0) -> list[dict[str, object]]:
    """Feature rows of one run of a model over prompts ``prompts .. prompts + n_prompts``: the answer length
    depends on the prompt (log spread 0.6) and varies between runs (log spread 0.25)."""
    need = np.exp(np.random.default_rng(prompts).normal(0.0, 0.6, n_prompts))
    noise = np.exp(np.random.default_rng(1000 + run).normal(0.0, 0.25, n_prompts))
    return [{"response_chars": float(round(400.0 * need[i] * noise[i] * factor)), PROMPT_KEY: f"p{prompts + i}"}
            for i in range(n_prompts)]


def _first_alarm(cfg: DriftConfig, ref: list[dict[str, object]], cur: list[dict[str, object]]) -> int | None:
    mon = DriftMonitor(cfg)
    mon.pin_reference(ref, ts=0)
    for i, row in enumerate(cur):
        if any(f.kind == "distribution_drift" for f in mon.update(row, ts=1 + i)):
            return i + 1
    return None


def test_a_verbose_variant_on_the_same_prompts_is_flagged_within_300_events() -> None:
    # answers 17 % longer on the same prompts: too small against the spread of lengths between prompts for a
    # two-sample test at the monitor's false-alarm level, plain once each answer is compared with its prompt's
    ref = _answers(800, run=1)
    order = np.random.default_rng(5).permutation(800)
    verbose = [_answers(800, run=2, factor=1.17)[i] for i in order]
    cfg = DriftConfig(**_LENGTH_ONLY)
    first = _first_alarm(cfg, ref, verbose)
    assert first is not None and first <= 300
    mon = DriftMonitor(cfg)
    mon.pin_reference(ref, ts=0)
    found = [f for i, row in enumerate(verbose[:first]) for f in mon.update(row, ts=1 + i)]
    (finding,) = [f for f in found if f.kind == "distribution_drift"]
    assert finding.evidence["drifted"] == ["response_chars_paired"]
    paired = finding.evidence["features"]["response_chars_paired"]
    assert paired["test"] == "paired" and 1.10 < paired["median_ratio"] < 1.25 and paired["pairs"] == first
    unpaired = DriftConfig(**_LENGTH_ONLY, paired_feature="")
    assert _first_alarm(unpaired, ref, verbose) is None  # the two-sample test alone misses it over 800 events


def test_the_same_model_run_again_on_the_same_prompts_does_not_alarm() -> None:
    ref = _answers(800, run=1)
    cfg = DriftConfig(**_LENGTH_ONLY)
    for run in range(2, 22):
        order = np.random.default_rng(run).permutation(800)
        rerun = _answers(800, run=run)
        assert _first_alarm(cfg, ref, [rerun[i] for i in order]) is None, run


def test_prompts_not_in_the_reference_are_not_paired() -> None:
    mon = DriftMonitor(DriftConfig(**_LENGTH_ONLY))
    mon.pin_reference(_answers(600, run=1), ts=0)
    for i, row in enumerate(_answers(200, run=2, factor=1.5, prompts=10_000)):
        mon.update(row, ts=1 + i)
    assert mon.last_result is not None and "response_chars_paired" not in mon.last_result.results
    assert mon.last_result.drift  # the 50 % longer answers are still caught by the two-sample test


def test_pairs_survive_a_snapshot() -> None:
    ref = _answers(800, run=1)
    verbose = _answers(800, run=2, factor=1.17)
    cfg = DriftConfig(**_LENGTH_ONLY)
    whole = DriftMonitor(cfg)
    whole.pin_reference(ref, ts=0)
    resumed = DriftMonitor(cfg)
    resumed.pin_reference(ref, ts=0)
    for i, row in enumerate(verbose[:250]):
        whole.update(row, ts=1 + i)
        resumed.update(row, ts=1 + i)
    snap = json.loads(json.dumps(resumed.snapshot()))
    assert len(snap["pairs"]) == 250 and len(snap["ref_keys"]) == 800
    assert all(PROMPT_KEY not in r for r in resumed.window_samples()["reference"])  # keys stay out of reports
    resumed = DriftMonitor.restore(snap)
    a = [f.finding_id for i, row in enumerate(verbose[250:]) for f in whole.update(row, ts=251 + i)]
    b = [f.finding_id for i, row in enumerate(verbose[250:]) for f in resumed.update(row, ts=251 + i)]
    assert a and a == b


def _sparse_feed(mon, traffic, n, t0, every, **shift):
    """Like ``_feed``, but only every ``every``-th event carries its embedding (a budget per model)."""
    out = []
    for i in range(n):
        f, e = traffic.event(**shift)
        out.extend((t0 + i, x) for x in mon.update(f, e if i % every == 0 else None, ts=t0 + i))
    return out


def test_sparse_embeddings_complete_the_reference_later_and_still_catch_an_embedding_only_shift():
    mon = DriftMonitor(_cfg(embedding_reference_min=60), SUBJECT)
    tr = Traffic(2)
    _sparse_feed(mon, tr, 300, 0, every=10)  # 30 embedded events when the tabular reference pins
    assert mon.phase == "monitoring" and mon.embedding_pending and "response" not in mon._ref_emb
    _sparse_feed(mon, tr, 300, 300, every=10)
    assert not mon.embedding_pending and len(mon._ref_emb["response"]) == 60
    assert _sparse_feed(mon, tr, 500, 600, every=10) == []  # same distribution: no alarm
    found = _sparse_feed(mon, tr, 2000, 1100, every=10, topic=2.5)
    assert found and found[0][1].evidence["drifted"] == ["response_embedding"]
    assert found[0][1].evidence["features"]["response_embedding"]["n_cur"] <= 100


def test_every_event_embedded_tests_the_embeddings_of_the_window():
    mon = DriftMonitor(_cfg(), SUBJECT)
    tr = Traffic(6)
    _feed(mon, tr, 400, 0)
    assert not mon.embedding_pending and len(mon._emb_window) == 100 == len(mon._window)
    assert mon.last_result.results["response_embedding"].as_dict()["n_cur"] == 100


def test_embeddings_survive_a_snapshot_and_an_old_snapshot_restores_them():
    mon = DriftMonitor(_cfg(embedding_reference_min=60), SUBJECT)
    tr = Traffic(7)
    _sparse_feed(mon, tr, 320, 0, every=10)
    snap = json.loads(json.dumps(mon.snapshot()))
    back = DriftMonitor.restore(snap)
    assert back.embedding_pending and len(back._emb_collect) == len(mon._emb_collect)
    _feed(mon, tr, 200, 320)
    old = json.loads(json.dumps(mon.snapshot()))
    # the format before embeddings had their own window: they travelled with the window's rows
    rows = old.pop("emb_window")
    for row, emb in zip(old["window"][-len(rows):], rows):
        row[1] = emb
    for key in ("emb_collect", "embedding_pending"):
        old.pop(key)
    back = DriftMonitor.restore(old)
    assert [np.asarray(e["response"]).round(3).tolist() for e in back._emb_window] == [
        np.asarray(e["response"]).round(3).tolist() for e in mon._emb_window]
