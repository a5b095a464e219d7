"""TrainingRunMonitor: NaN, explosion, trend, plateau and grad-norm rules; episodes; snapshot/restore."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from detectors.finding import Severity, Subject
from detectors.training.monitor import KINDS, TrainingMonitorConfig, TrainingRunMonitor

SUBJECT = Subject(tenant="acme", model="summariser", version="7")
T0 = datetime(2025, 3, 1, tzinfo=UTC)


def healthy_losses(n: int, seed: int = 0, sigma: float = 0.08) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (1.0 + 5.0 * (1 + t / 150.0) ** -0.7) * np.exp(rng.normal(0, sigma, n))


def feed(mon: TrainingRunMonitor, losses, grads=None, start: int = 0, **extra):
    """Feed losses (and grad norms) from step ``start``; return [(step, finding)]."""
    out = []
    for i, x in enumerate(losses):
        step = start + i
        m = {"loss": None if x is None else float(x), **extra}
        if grads is not None:
            m["grad_norm"] = float(grads[i])
        for f in mon.update(step, m, T0 + timedelta(seconds=step), event_id=f"ev-{step}"):
            out.append((step, f))
    return out


def monitor(**cfg) -> TrainingRunMonitor:
    return TrainingRunMonitor("run-1", SUBJECT, TrainingMonitorConfig(**cfg))


def test_healthy_runs_raise_no_alarm():
    for seed in range(5):
        mon = monitor()
        rng = np.random.default_rng(100 + seed)
        grads = 2.0 * np.exp(rng.normal(0, 0.25, 1200))
        found = feed(mon, healthy_losses(1200, seed), grads)
        assert [f.kind for _, f in found if f.kind != "loss_plateau"] == []
        assert mon.n == 1200


def test_loss_jump_flagged_within_five_steps_once():
    losses = healthy_losses(600, seed=1)
    losses[300:] *= 4.0
    found = feed(monitor(), losses)
    div = [(s, f) for s, f in found if f.kind == "loss_divergence"]
    assert len(div) == 1, "a diverged run gives one finding, not one per step"
    step, f = div[0]
    assert 300 <= step <= 305
    assert f.detector == "training" and f.severity == Severity.high
    assert f.evidence["rule"] == "explosion"
    assert f.evidence["onset_step"] == 300
    assert f.evidence["ratio_to_median"] > 3.0
    assert f.subject == SUBJECT
    json.loads(f.model_dump_json())  # evidence is plain JSON


def test_exponential_growth_flagged_within_five_steps_of_x3():
    base = healthy_losses(800, seed=2, sigma=0.05)
    clean = base.copy()
    clean[400:] *= 1.08 ** np.arange(1, 401)
    found = feed(monitor(), clean)
    div = [s for s, f in found if f.kind == "loss_divergence"]
    assert div
    # first step whose (noisy) loss exceeds 3x the median of the previous 50
    x3 = next(i for i in range(400, 800) if clean[i] > 3 * np.median(clean[i - 50 : i]))
    assert div[0] <= x3 + 5


def test_single_spike_is_not_a_divergence_but_two_in_a_row_are():
    losses = healthy_losses(400, seed=3, sigma=0.03)
    losses[200] *= 5.0
    assert [f for _, f in feed(monitor(), losses) if f.kind == "loss_divergence"] == []
    losses[201] *= 5.0
    div = [(s, f) for s, f in feed(monitor(), losses) if f.kind == "loss_divergence"]
    assert [s for s, _ in div] == [201]
    assert div[0][1].evidence["onset_step"] == 200
    # with explosion_confirm=1 the first spike is flagged by itself
    assert [s for s, f in feed(monitor(explosion_confirm=1), losses) if f.kind == "loss_divergence"] == [200]


def test_nan_and_inf_loss_flagged_at_once_and_once():
    losses = list(healthy_losses(300, seed=4))
    losses[150:] = [math.nan] * 150
    found = feed(monitor(), losses)
    assert [(s, f.kind) for s, f in found] == [(150, "loss_nan")]
    f = found[0][1]
    assert f.severity == Severity.critical and f.evidence["loss"] == "nan"

    losses = list(healthy_losses(100, seed=4))
    losses[5] = math.inf  # even before any history
    found = feed(monitor(), losses)
    assert [(s, f.kind) for s, f in found] == [(5, "loss_nan")]


def test_null_loss_ignored_unless_configured():
    losses = list(healthy_losses(60, seed=5))
    losses[30] = None
    assert feed(monitor(), losses) == []
    found = feed(monitor(null_is_nan=True), losses)
    assert [(s, f.kind, f.evidence["loss"]) for s, f in found] == [(30, "loss_nan", "null")]


def test_episode_rearms_after_recovery():
    losses = list(healthy_losses(400, seed=6, sigma=0.03))
    losses[100] = math.nan
    losses[300] = math.nan
    found = feed(monitor(rearm_steps=10), losses)
    nan = [(s, f) for s, f in found if f.kind == "loss_nan"]
    assert [s for s, _ in nan] == [100, 300]
    assert nan[0][1].finding_id != nan[1][1].finding_id


def test_slow_divergence_caught_by_trend_rule():
    losses = healthy_losses(900, seed=7, sigma=0.05)
    losses[500:] *= 1.01 ** np.arange(1, 401)
    div = [(s, f) for s, f in feed(monitor(), losses) if f.kind == "loss_divergence"]
    assert len(div) == 1
    s, f = div[0]
    assert 500 < s < 650
    assert f.evidence["rule"] == "trend"
    assert f.evidence["smoothed_loss"] > 1.5 * f.evidence["best_smoothed_loss"]


def test_plateau_after_patience_not_before():
    rng = np.random.default_rng(8)
    flat = 2.0 * np.exp(rng.normal(0, 0.02, 600))
    found = feed(monitor(plateau_patience=200), flat)
    plat = [(s, f) for s, f in found if f.kind == "loss_plateau"]
    assert len(plat) == 1
    s, f = plat[0]
    assert 200 <= s <= 450
    assert f.severity == Severity.low
    assert f.evidence["steps_without_improvement"] >= 200
    # a steadily improving run (1 % every 20 steps or better) never plateaus
    improving = 5.0 * 0.999 ** np.arange(2000)
    assert [f for _, f in feed(monitor(plateau_patience=200), improving) if f.kind == "loss_plateau"] == []


def test_grad_norm_explosion_and_non_finite():
    rng = np.random.default_rng(9)
    losses = healthy_losses(400, seed=9)
    grads = 1.5 * np.exp(rng.normal(0, 0.25, 400))
    grads[250:] *= 50
    found = feed(monitor(), losses, grads)
    g = [(s, f) for s, f in found if f.kind == "grad_explosion"]
    assert len(g) == 1 and 250 <= g[0][0] <= 252
    assert g[0][1].severity == Severity.high and g[0][1].evidence["ratio_to_median"] > 10

    grads = 1.5 * np.exp(rng.normal(0, 0.25, 400))
    grads[120] = math.inf
    g = [(s, f) for s, f in feed(monitor(), losses, grads) if f.kind == "grad_explosion"]
    assert [(s, f.severity) for s, f in g] == [(120, Severity.critical)]


def test_metric_key_aliases_and_learning_rate_in_evidence():
    mon = monitor()
    for i, x in enumerate(healthy_losses(100, seed=10)):
        assert mon.update(i, {"train/loss": float(x), "lr": 1e-4}, T0) == []
    found = mon.update(100, {"train/loss": math.nan, "lr": 1e-4}, T0)
    assert [f.kind for f in found] == ["loss_nan"]
    assert found[0].evidence["learning_rate"] == 1e-4


def test_stale_and_duplicate_steps_ignored():
    mon = monitor()
    losses = healthy_losses(100, seed=11)
    feed(mon, losses)
    assert mon.update(50, {"loss": math.nan}, T0) == []  # a redelivered old step
    assert mon.update(99, {"loss": math.nan}, T0) == []
    assert mon.stale == 2 and mon.n == 100


def test_snapshot_restore_continues_identically():
    losses = healthy_losses(700, seed=12)
    losses[450:] *= 6.0
    grads = np.full(700, 2.0)
    grads[600:] = 300.0
    straight = feed(monitor(), losses, grads)

    mon = monitor()
    first = feed(mon, losses[:300], grads[:300])
    snap = json.loads(json.dumps(mon.snapshot()))  # through JSON, as a faust table would hold it
    restored = TrainingRunMonitor.restore(snap)
    assert restored.running_median == mon.running_median
    assert restored.snapshot() == mon.snapshot()
    second = feed(restored, losses[300:], grads[300:], start=300)
    got = [(s, f.kind, f.finding_id) for s, f in first + second]
    want = [(s, f.kind, f.finding_id) for s, f in straight]
    assert got == want
    assert {k for _, k, _ in want} >= {"loss_divergence", "grad_explosion"}


def test_replay_after_crash_gives_same_finding_ids():
    losses = healthy_losses(400, seed=13)
    losses[200] = math.nan
    a = feed(monitor(), losses)
    b = feed(monitor(), losses)
    assert [f.finding_id for _, f in a] == [f.finding_id for _, f in b] and a
    other = TrainingRunMonitor("run-2", SUBJECT)
    c = feed(other, losses)
    assert c[0][1].finding_id != a[0][1].finding_id  # another run, another id


def test_config_round_trip_and_validation():
    cfg = TrainingMonitorConfig(median_window=20, explosion_factor=4.0, use_anomaly=True)
    assert TrainingMonitorConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError):
        TrainingMonitorConfig(explosion_factor=1.0)
    with pytest.raises(ValueError):
        TrainingMonitorConfig(min_history=100, median_window=50)
    with pytest.raises(ValueError):
        TrainingMonitorConfig.from_dict({"nope": 1})


def test_anomaly_rule_state_survives_snapshot():
    mon = monitor(use_anomaly=True)
    feed(mon, healthy_losses(120, seed=14))
    snap = mon.snapshot()
    assert snap["anomaly"] is not None and snap["anomaly"]["state"]
    restored = TrainingRunMonitor.restore(json.loads(json.dumps(snap)))
    assert restored.snapshot() == snap
    assert set(KINDS) == {"loss_nan", "loss_divergence", "loss_plateau", "grad_explosion"}
