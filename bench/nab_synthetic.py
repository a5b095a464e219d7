"""Synthetic series shaped like NAB's held-out categories, written as a NAB-layout folder.

usage:
    python -m bench.nab_synthetic --out /tmp/nab_synth [--seed 1]
    python -m bench.nab --data /tmp/nab_synth/data --out /tmp/nab_synth_results
    python ../shared/nab/score.py --nab /tmp/nab_synth --results /tmp/nab_synth_results

The development subset of NAB covers 3 of its 7 categories; this generator gives stand-ins for the other
four, so a change to the detector can be checked for generalisation (never for tuning to NAB itself):

* ``synthTweets``      5-minute bursty counts with a daily cycle, ~55 days, unlabelled ordinary bursts and
                       labelled large bursts (Twitter-volume-like);
* ``synthTraffic``     irregularly sampled speed / occupancy / travel time with weekday rush hours and gaps,
                       labelled incidents (realTraffic-like);
* ``synthKnownCause``  machine temperature with a shutdown and a slow failure, a taxi-demand-like series
                       with daily and weekly cycles and a holiday, request latency with spikes;
* ``synthNoAnomaly``   flat, noisy, clean daily sine, daily square wave, daily sine with small noise
                       (no windows: every alarm after the probation period is a false positive).

Labels follow NAB's convention: each anomaly gets a window of 10 % of the file length divided by the number
of anomalies, centred on it. Everything is deterministic for a given seed. ``alarm_counts`` reports how
many alarms a detector raises on the anomaly-free series.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Callable

import numpy as np

T0 = 1_420_070_400.0  # 2015-01-01 00:00:00 UTC, a Thursday
DAY = 86400.0


def _stamp(t: np.ndarray) -> list[str]:
    return [str(s).replace("T", " ") for s in t.astype("datetime64[s]")]


def _regular(n: int, step: float) -> np.ndarray:
    return T0 + step * np.arange(n)


def _windows(t: np.ndarray, anomalies: list[int]) -> list[tuple[float, float]]:
    """NAB-style windows: 10 % of the length over the number of anomalies, centred on each anomaly."""
    if not anomalies:
        return []
    half = max(1, int(0.1 * len(t) / len(anomalies)) // 2)
    return [(t[max(0, a - half)], t[min(len(t) - 1, a + half)]) for a in sorted(anomalies)]


def tweets(rng: np.random.Generator, n: int = 15_800) -> tuple[np.ndarray, np.ndarray, list[int]]:
    t = _regular(n, 300.0)
    hour = (t % DAY) / 3600.0
    base = rng.uniform(20, 120) * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    lam = base * (1.0 + 0.6 * np.sin(2 * np.pi * (hour - 9.0) / 24.0))
    for _ in range(25):  # ordinary news bursts (not labelled)
        s = int(rng.integers(0, n - 40))
        lam[s : s + int(rng.integers(3, 30))] *= rng.uniform(1.5, 3.0)
    anomalies = sorted(int(a) for a in rng.choice(np.arange(int(0.2 * n), n - 50), 3, replace=False))
    for a in anomalies:  # labelled large bursts
        lam[a : a + int(rng.integers(4, 24))] *= rng.uniform(6.0, 15.0)
    return t, rng.poisson(lam).astype(float), anomalies


def traffic(rng: np.random.Generator, kind: str, n: int = 2_500) -> tuple[np.ndarray, np.ndarray, list[int]]:
    steps = rng.choice([300.0, 300.0, 300.0, 600.0, 900.0], n) + rng.normal(0, 20, n)
    gaps = rng.random(n) < 0.01
    steps[gaps] += rng.uniform(1800, 7200, gaps.sum())
    t = T0 + np.cumsum(np.abs(steps))
    hour = (t % DAY) / 3600.0
    weekday = ((t // DAY + 3) % 7) < 5
    rush = weekday * (np.exp(-((hour - 8.0) ** 2) / 2.0) + np.exp(-((hour - 17.5) ** 2) / 2.0))
    anomalies = sorted(int(a) for a in rng.choice(np.arange(int(0.2 * n), n - 60), 2, replace=False))
    inc = np.zeros(n)
    for a in anomalies:
        inc[a : a + int(rng.integers(10, 30))] = 1.0
    if kind == "speed":
        x = 65 - 25 * rush - 35 * inc + rng.normal(0, 3, n)
    elif kind == "occupancy":
        x = 5 + 15 * rush + 25 * inc + np.abs(rng.normal(0, 1.5, n))
    else:  # travel time
        x = 200 + 150 * rush + 400 * inc + rng.gamma(2.0, 15.0, n)
    return t, np.round(np.maximum(x, 0.0), 2), anomalies


def machine_temperature(rng: np.random.Generator, n: int = 22_000) -> tuple[np.ndarray, np.ndarray, list[int]]:
    t = _regular(n, 300.0)
    ar = np.zeros(n)
    e = rng.normal(0, 0.6, n)
    for i in range(1, n):
        ar[i] = 0.98 * ar[i - 1] + e[i]
    x = 85 + ar + 2 * np.sin(2 * np.pi * t / DAY)
    shut, fail, crash = int(0.35 * n), int(0.7 * n), int(0.9 * n)
    x[shut : shut + 300] = np.linspace(85, 25, 300) + rng.normal(0, 1, 300)  # planned shutdown
    x[shut + 300 : shut + 600] = np.linspace(25, 85, 300) + rng.normal(0, 1, 300)
    x[fail : fail + 800] += np.linspace(0, 12, 800)  # slow failure: drift upwards ...
    x[fail + 800 : fail + 900] -= 30.0  # ... then drop
    x[crash : crash + 150] = 10 + rng.normal(0, 1, 150)  # catastrophic failure
    return t, np.round(x, 3), [shut, fail, crash]


def taxi(rng: np.random.Generator, n: int = 10_300) -> tuple[np.ndarray, np.ndarray, list[int]]:
    t = _regular(n, 1800.0)
    hour = (t % DAY) / 3600.0
    dow = (t // DAY + 3) % 7
    daily = 1.0 + 0.8 * np.sin(2 * np.pi * (hour - 11.0) / 24.0) ** 3 + 0.3 * np.cos(2 * np.pi * hour / 12.0)
    weekly = np.where(dow >= 5, 0.85, 1.0)
    x = 15000 * np.clip(daily, 0.1, None) * weekly * (1 + rng.normal(0, 0.05, n))
    holiday = int(0.5 * n) // 48 * 48
    x[holiday : holiday + 48] *= 0.55  # a holiday: one day far below the usual pattern
    spike = int(0.8 * n)
    x[spike : spike + 6] *= 1.8  # a one-off event
    return t, np.round(x), [holiday + 24, spike]


def latency(rng: np.random.Generator, n: int = 4_032) -> tuple[np.ndarray, np.ndarray, list[int]]:
    t = _regular(n, 300.0)
    x = 40 + rng.gamma(2.0, 2.0, n)
    anomalies = sorted(int(a) for a in rng.choice(np.arange(int(0.2 * n), n - 20), 3, replace=False))
    for a in anomalies:
        x[a : a + int(rng.integers(2, 8))] += rng.uniform(60, 150)
    return t, np.round(x, 3), anomalies


def no_anomaly(rng: np.random.Generator, kind: str, n: int = 4_032) -> tuple[np.ndarray, np.ndarray, list[int]]:
    t = _regular(n, 300.0)
    ph = 2 * np.pi * t / DAY
    if kind == "flatline":
        x = np.full(n, 46.0)
    elif kind == "noisy":
        x = 40 + rng.normal(0, 10, n)
    elif kind == "daily_no_noise":
        x = 50 + 30 * np.sin(ph)
    elif kind == "daily_square":
        x = np.where(np.sin(ph) > 0, 80.0, 20.0)
    else:  # daily sine with small noise
        x = 50 + 30 * np.sin(ph) + rng.normal(0, 1.0, n)
    return t, np.round(x, 3), []


SERIES: dict[str, list[tuple[str, Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray, list[int]]]]]] = {
    "synthTweets": [(f"tweets_{k}", tweets) for k in range(4)],
    "synthTraffic": [
        (f"{kind}_{k}", lambda r, kind=kind: traffic(r, kind))
        for kind in ("speed", "occupancy", "traveltime")
        for k in range(2)
    ],
    "synthKnownCause": [
        ("machine_temperature", machine_temperature),
        ("taxi", taxi),
        ("latency_0", latency),
        ("latency_1", latency),
    ],
    "synthNoAnomaly": [
        (kind, lambda r, kind=kind: no_anomaly(r, kind))
        for kind in ("flatline", "noisy", "daily_no_noise", "daily_square", "daily_small_noise")
    ],
}


def write(out: str, seed: int = 1, nab_config: str | None = None) -> dict[str, list[list[str]]]:
    """Write ``data/``, ``labels/combined_windows.json`` (and ``config/profiles.json`` copied from
    ``nab_config`` when given) under ``out``; returns the windows."""
    windows: dict[str, list[list[str]]] = {}
    for ci, (cat, items) in enumerate(sorted(SERIES.items())):
        os.makedirs(os.path.join(out, "data", cat), exist_ok=True)
        for si, (name, make) in enumerate(items):
            rng = np.random.default_rng([seed, ci, si])
            t, x, anomalies = make(rng)
            stamps = _stamp(t)
            with open(os.path.join(out, "data", cat, name + ".csv"), "w") as f:
                f.write("timestamp,value\n")
                for s, v in zip(stamps, x.tolist()):
                    f.write(f"{s},{v!r}\n")
            idx = {v: i for i, v in enumerate(t.tolist())}
            windows[f"{cat}/{name}.csv"] = [
                [stamps[idx[a]] + ".000000", stamps[idx[b]] + ".000000"] for a, b in _windows(t, anomalies)
            ]
    os.makedirs(os.path.join(out, "labels"), exist_ok=True)
    with open(os.path.join(out, "labels", "combined_windows.json"), "w") as f:
        json.dump(windows, f, indent=1)
    if nab_config:
        os.makedirs(os.path.join(out, "config"), exist_ok=True)
        shutil.copy(os.path.join(nab_config, "profiles.json"), os.path.join(out, "config", "profiles.json"))
    return windows


def alarm_counts(data_dir: str, config: object | None = None) -> dict[str, int]:
    """Alarms (scores >= ``config.alarm``) after NAB's probation period on each anomaly-free series."""
    from bench.nab import epoch_seconds, read_series
    from detectors.anomaly.detector import AnomalyConfig, AnomalyDetector

    cfg = config or AnomalyConfig()
    counts: dict[str, int] = {}
    cdir = os.path.join(data_dir, "synthNoAnomaly")
    for name in sorted(os.listdir(cdir)):
        stamps, values = read_series(os.path.join(cdir, name))
        s = AnomalyDetector(cfg).update_many(epoch_seconds(stamps), values)
        prob = min(int(0.15 * len(s)), 750)
        counts[name] = int(np.sum(s[prob:] >= cfg.alarm))  # type: ignore[attr-defined]
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--nab-config", default="", help="NAB config folder to copy profiles.json from")
    a = ap.parse_args(argv)
    w = write(a.out, a.seed, a.nab_config or None)
    counts = alarm_counts(os.path.join(a.out, "data"))
    print(f"series={len(w)} windows={sum(len(v) for v in w.values())}")
    for name, c in counts.items():
        print(f"anomaly-free {name}: {c} alarms")
    print(f"alarms on anomaly-free series: {sum(counts.values())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
