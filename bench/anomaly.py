"""Throughput of the streaming anomaly detector and of the in-stream ops-metrics stage (single core).

usage: python -m bench.anomaly [--points 2000000] [--repeats 5]

Prints medians over repeats, all measured in this run on one core:

* the same per-point step run as plain Python (numba's ``py_func``; the baseline for the speed-up ratios);
* per-point ``AnomalyDetector.update()`` (what the ops-metrics stage calls), and the same per-point kernel
  called through numba's dispatcher (with its per-call argument typing, which ``update()`` skips);
* batch ``AnomalyDetector.update_many`` (the compiled loop);
* ``OpsMetricsMonitor.observe`` events/s and the metric points/s it turns them into.

The last line is the headline: per-point and batch points/s per core (goal 1,000,000 each).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np

from detectors.anomaly import kernel as K
from detectors.anomaly.detector import AnomalyConfig, AnomalyDetector
from detectors.anomaly.opsmetrics import METRICS, OpsMetricsMonitor
from detectors.finding import Subject


def _series(n: int, seed: int = 11) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = 100 + 20 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 3, n)
    x[rng.integers(0, n, n // 5000)] += 80
    return x


def _median_rate(fn: Callable[[], object], n: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n / statistics.median(times)


def _fresh_state() -> np.ndarray:
    st = np.zeros(K.SIZE)
    st[: K.N_PARAMS] = AnomalyConfig().as_params()
    return st


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--points", type=int, default=2_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args(argv)
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    x = _series(a.points)
    ts = 1.7e9 + 300.0 * np.arange(len(x))  # 5-minute points
    AnomalyDetector().update_many(ts[:1000], x[:1000])  # compile / load the kernel cache outside the timing

    batch = _median_rate(lambda: AnomalyDetector().update_many(ts, x), len(x), a.repeats)

    m = min(len(x), 200_000)
    xs = x[:m].tolist()
    tl = ts[:m].tolist()

    def per_point() -> None:
        up = AnomalyDetector().update
        for t, v in zip(tl, xs, strict=True):
            up(t, v)

    single = _median_rate(per_point, m, a.repeats)

    def dispatched() -> None:
        st = _fresh_state()
        step = K.step
        for t, v in zip(tl, xs, strict=True):
            step(st, t, v)

    via_dispatcher = _median_rate(dispatched, m, a.repeats) if K.HAVE_NUMBA else math.nan

    mp = min(len(x), 20_000)

    def plain_python() -> None:
        fn = K._step.py_func if K.HAVE_NUMBA else K._step
        st = _fresh_state()
        for t, v in zip(ts[:mp].tolist(), x[:mp].tolist(), strict=True):
            fn(st, t, v)

    baseline = _median_rate(plain_python, mp, max(1, a.repeats // 2))

    # ops-metrics stage: 20 (tenant, model) subjects, 20 events per subject-minute, 6 metrics per closed minute
    subjects = [Subject(tenant=f"t{i % 4}", model=f"m{i}") for i in range(20)]
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    r = random.Random(5)
    events = []
    minutes = 240
    for k in range(minutes * 20):
        when = t0 + timedelta(seconds=k * 3)
        for s in subjects:
            events.append((s, when, r.gauss(120, 10), r.random() < 0.01, 150, 0.002))

    closed = {}

    def ops() -> None:
        mon = OpsMetricsMonitor()
        obs = mon.observe
        for ev in events:
            obs(*ev)
        closed["n"] = mon.closed_intervals

    ev_rate = _median_rate(ops, len(events), max(1, a.repeats // 2))
    metric_points = closed["n"] * len(METRICS)
    metric_rate = ev_rate * metric_points / len(events)

    print(f"numba={K.HAVE_NUMBA} points={len(x)} repeats={a.repeats} (medians, one core)")
    print(f"plain-python step (baseline):   {baseline:,.0f} points/s")
    print(f"per-point kernel via dispatcher:{via_dispatcher:,.0f} points/s")
    print(f"per-point update():             {single:,.0f} points/s  ({single / baseline:.1f}x baseline)")
    print(f"ops-metrics observe():          {ev_rate:,.0f} events/s, {metric_rate:,.0f} metric points/s")
    print(f"batch update_many():            {batch:,.0f} points/s  ({batch / baseline:.1f}x baseline)")
    print(f"detector points/s per core: per-point {single:,.0f}, batch {batch:,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
