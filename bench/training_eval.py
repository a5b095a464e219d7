"""Detection delay and false alarms of :class:`~detectors.training.monitor.TrainingRunMonitor` on simulated runs.

usage: python -m bench.training_eval [--seeds 200] [--steps 1500] [--with-anomaly]

Healthy runs: a power-law loss curve (warm-up, then ``L_inf + A (1 + t/tau)^-alpha``) with
multiplicative step noise (log-scale sigma 0.02..0.12, Gaussian or Student-t with 3 dof), benign
one-step loss spikes (x1.5..x4, p = 0.003 per step)
and a gradient norm with log-normal noise and benign one-step spikes (x2..x6). Faulty runs, one
fault per run at a random onset step ``t0`` in [200, 1000):

* ``jump``  — the loss steps up x3.5..x10 and stays there;
* ``exp``   — the loss grows by a factor 1.03..1.3 per step from ``t0``;
* ``nan``   — the loss grows x1.5 per step for 0..3 steps, then is NaN;
* ``slow``  — the loss grows 0.5..1.5 % per step (a slow divergence);
* ``grad``  — the gradient norm jumps x20..x100 and stays there (loss unchanged);
* ``plateau`` — the loss stops improving at ``t0`` (flat plus noise).

Delay is counted in logged steps. For ``jump``/``exp``/``nan`` it is measured from the goal's onset:
the first step where the noise-free loss exceeds 3x the running median of the previous K noise-free
values (or the first NaN); for ``slow`` and ``grad`` from ``t0``; for ``plateau`` from
``t0 + plateau_patience`` (the earliest the rule may fire by definition). A false alarm is a
``loss_nan``, ``loss_divergence`` or ``grad_explosion`` finding on a healthy run, or one raised before
the fault's onset on a faulty run. Plateau findings on healthy runs are counted separately (healthy
curves flatten late in a run, so some of them are right).

The last line is the headline: the share of diverging runs (jump/exp/nan) flagged within 5 steps of
onset, their median delay, and the false-alarm rate on healthy runs.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from detectors.finding import Subject
from detectors.training.monitor import TrainingMonitorConfig, TrainingRunMonitor

FAULTS = ("jump", "exp", "nan", "slow", "grad", "plateau")
ALARM_KINDS = {"loss_nan", "loss_divergence", "grad_explosion"}
_T0 = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass
class Run:
    """One simulated run: per-step loss, grad norm, lr; the fault and its onset (index) if any."""

    loss: np.ndarray
    grad: np.ndarray
    lr: np.ndarray
    fault: str | None = None
    start: int | None = None  # first faulty step
    onset: int | None = None  # where the delay is measured from


def healthy_run(rng: np.random.Generator, steps: int) -> tuple[Run, np.ndarray]:
    """A healthy run and its noise-free loss curve."""
    t = np.arange(steps, dtype=np.float64)
    l_inf, amp = rng.uniform(0.5, 2.0), rng.uniform(2.0, 8.0)
    tau, alpha = rng.uniform(50, 300), rng.uniform(0.4, 1.2)
    warm = int(rng.integers(0, 100))
    clean = l_inf + amp * (1 + np.maximum(t - warm, 0) / tau) ** (-alpha)
    sigma = rng.uniform(0.02, 0.12)
    # half the runs get heavy-tailed (Student t, 3 degrees of freedom) step noise
    z = rng.standard_t(3, steps) / math.sqrt(3.0) if rng.random() < 0.5 else rng.normal(0, 1, steps)
    loss = clean * np.exp(sigma * z)
    spikes = rng.random(steps) < 0.003
    loss[spikes] *= rng.uniform(1.5, 4.0, int(spikes.sum()))
    g_level = rng.uniform(0.5, 5.0) * (1 + t / 500) ** -0.3
    grad = g_level * np.exp(rng.normal(0, 0.25, steps))
    gs = rng.random(steps) < 0.003
    grad[gs] *= rng.uniform(2.0, 6.0, int(gs.sum()))
    peak = rng.uniform(1e-5, 5e-4)
    lr = np.where(t < warm, peak * (t + 1) / max(warm, 1), peak * np.cos(0.5 * np.pi * t / steps) ** 2)
    return Run(loss, grad, lr), clean


def _x3_onset(clean: np.ndarray, start: int, k: int, factor: float = 3.0) -> int:
    """First index >= start where the noise-free loss exceeds factor x the median of the previous k."""
    for i in range(max(start, 1), len(clean)):
        if not math.isfinite(clean[i]):
            return i
        if clean[i] > factor * float(np.median(clean[max(0, i - k) : i])):
            return i
    return len(clean)


def faulty_run(rng: np.random.Generator, steps: int, fault: str, k: int, patience: int) -> Run:
    """A run with one fault; ``onset`` is where its delay is measured from (see the module doc)."""
    run, clean = healthy_run(rng, steps)
    t0 = int(rng.integers(200, 1000))
    noise = run.loss / clean
    n_after = steps - t0
    if fault == "jump":
        clean[t0:] *= rng.uniform(3.5, 10.0)
    elif fault == "exp":
        clean[t0:] *= rng.uniform(1.03, 1.3) ** np.arange(1, n_after + 1)
    elif fault == "nan":
        ramp = int(rng.integers(0, 4))
        clean[t0 : t0 + ramp] *= 1.5 ** np.arange(1, ramp + 1)
        clean[t0 + ramp :] = np.nan
    elif fault == "slow":
        clean[t0:] *= rng.uniform(1.005, 1.015) ** np.arange(1, n_after + 1)
    elif fault == "plateau":
        clean[t0:] = clean[t0]
    elif fault == "grad":
        run.grad[t0:] *= rng.uniform(20.0, 100.0)
    else:
        raise ValueError(fault)
    with np.errstate(invalid="ignore", over="ignore"):
        run.loss = clean * noise
    run.fault = fault
    run.start = t0
    if fault in ("jump", "exp", "nan"):
        run.onset = _x3_onset(clean, t0, k)
    elif fault == "plateau":
        run.onset = t0 + patience
    else:
        run.onset = t0
    return run


def monitor_run(run: Run, config: TrainingMonitorConfig) -> list[tuple[int, str]]:
    """Feed a run step by step; the (step, kind) of every finding."""
    mon = TrainingRunMonitor("bench-run", Subject(tenant="bench", model="m", version="1"), config)
    out: list[tuple[int, str]] = []
    loss, grad, lr = run.loss.tolist(), run.grad.tolist(), run.lr.tolist()
    for i in range(len(loss)):
        m = {"loss": loss[i], "grad_norm": grad[i], "learning_rate": lr[i]}
        for f in mon.update(i, m, _T0 + timedelta(seconds=i)):
            out.append((i, f.kind))
    return out


def _expected_kind(fault: str) -> set[str]:
    return {"grad": {"grad_explosion"}, "plateau": {"loss_plateau"}, "nan": {"loss_nan", "loss_divergence"}}.get(
        fault, {"loss_divergence"}
    )


def evaluate(seeds: int, steps: int, config: TrainingMonitorConfig) -> dict[str, Any]:
    """Run the healthy and faulty simulations; return the figures."""
    healthy_alarm_runs = 0
    healthy_alarms: Counter[str] = Counter()
    healthy_plateau = 0
    delays: dict[str, list[float]] = defaultdict(list)
    missed: Counter[str] = Counter()
    early: Counter[str] = Counter()
    for seed in range(seeds):
        rng = np.random.default_rng(10_000 + seed)
        run, _ = healthy_run(rng, steps)
        found = monitor_run(run, config)
        alarms = [k for _, k in found if k in ALARM_KINDS]
        healthy_alarm_runs += bool(alarms)
        healthy_alarms.update(alarms)
        healthy_plateau += any(k == "loss_plateau" for _, k in found)
        for fault in FAULTS:
            rng = np.random.default_rng([seed, FAULTS.index(fault)])
            run = faulty_run(rng, steps, fault, config.median_window, config.plateau_patience)
            found = monitor_run(run, config)
            assert run.onset is not None and run.start is not None
            # an alarm before the fault starts is a false alarm on that run
            early[fault] += any(k in ALARM_KINDS for s, k in found if s < run.start)
            hits = [s for s, k in found if k in _expected_kind(fault) and s >= run.start]
            if hits:
                delays[fault].append(hits[0] - run.onset)
            else:
                missed[fault] += 1
    return {
        "healthy_alarm_runs": healthy_alarm_runs,
        "healthy_alarms": dict(healthy_alarms),
        "healthy_plateau_runs": healthy_plateau,
        "delays": delays,
        "missed": dict(missed),
        "early": dict(early),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--with-anomaly", action="store_true", help="also run the anomaly-detector rule (two gates)")
    a = ap.parse_args(argv)
    configs = []
    if a.with_anomaly:
        configs.append(("anomaly rule on, gate 1.2x", TrainingMonitorConfig(use_anomaly=True)))
        configs.append(("anomaly rule on, gate 1.05x", TrainingMonitorConfig(use_anomaly=True, anomaly_min_rise=1.05)))
    configs.append(("default", TrainingMonitorConfig()))  # last: the headline is its figure
    headline = ""
    for name, cfg in configs:
        t0 = time.perf_counter()
        r = evaluate(a.seeds, a.steps, cfg)
        el = time.perf_counter() - t0
        n_points = a.seeds * (1 + len(FAULTS)) * a.steps
        print(f"== {name}: {a.seeds} seeds x {a.steps} steps, {n_points / el:,.0f} steps/s")
        print(
            f"healthy runs with a false alarm: {r['healthy_alarm_runs']}/{a.seeds} "
            f"({r['healthy_alarms'] or 'none'}); healthy runs with a plateau finding: "
            f"{r['healthy_plateau_runs']}/{a.seeds}"
        )
        delays: dict[str, list[float]] = r["delays"]
        for fault in FAULTS:
            d = delays.get(fault, [])
            miss = r["missed"].get(fault, 0)
            early = r["early"].get(fault, 0)
            if d:
                within5 = sum(1 for x in d if x <= 5)
                print(
                    f"{fault:8s} detected {len(d)}/{a.seeds}, missed {miss}, alarms before the fault {early}; delay steps "
                    f"median {statistics.median(d):.0f}, p95 {np.percentile(d, 95):.0f}, max {max(d):.0f}, "
                    f"within 5: {within5}/{a.seeds}"
                )
            else:
                print(f"{fault:8s} detected 0/{a.seeds}, missed {miss}")
        div = [x for f in ("jump", "exp", "nan") for x in delays.get(f, [])]
        n_div = 3 * a.seeds
        within = sum(1 for x in div if x <= 5)
        headline = (
            f"[{name}] diverging runs flagged within 5 steps of onset: {within}/{n_div} "
            f"({100 * within / n_div:.1f}%), median delay {statistics.median(div) if div else float('nan'):.0f} steps; "
            f"false alarms on healthy runs: {r['healthy_alarm_runs']}/{a.seeds} "
            f"({100 * r['healthy_alarm_runs'] / a.seeds:.1f}%)"
        )
    print(headline)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
