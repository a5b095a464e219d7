"""Seeded synthetic families shaped like the NAB categories that ``../shared/nab`` does not hold.

usage:
    python -m bench.nab_synthetic --out /tmp/synth --seed 101     # data/, labels/ in NAB's layout
    python -m bench.nab_loco --nab ../shared/nab --seeds 101,102   # leave-one-category-out (generates its own)

Each family is a *distribution* of series: every series draws its own shape parameters (levels, cycles,
noise, sampling, incident kinds and sizes) from broad ranges, so leave-one-category-out judges a detector
on shapes it was not fitted to. Nothing is fitted to any real file; the shapes follow the published,
general descriptions of the kinds of data:

* ``synthTraffic``   irregularly sampled speed / occupancy / travel time (5-10 min, jitter, gaps of up to
                     6 h, stretches at another rate), weekday rush hours, ordinary short blips; anomalies:
                     incidents, stuck or zeroed sensors, lasting level shifts;
* ``synthMachine``   temperatures every 5 min or hourly: a slowly wandering AR(1) level, daily (and yearly)
                     cycles; anomalies: shutdowns (ramp down, stay, ramp up), slow failures (a ramp, then a
                     drop), sudden failures, hot / cold spells sized by the series' own variability;
* ``synthDemand``    request-rate / taxi-like demand with a random daily shape, a weekend shape, trend and
                     noise; anomalies: holidays (a weekday like a weekend), storms (a day far below),
                     surges, unusual night activity, outages;
* ``synthTweets``    5-min over-dispersed counts with daily and weekly cycles, a wandering level and many
                     ordinary (unlabelled) bursts; anomalies: large bursts with decays, sustained busy days;
* ``synthCloud``     EC2-like CPU % with batch-job rhythms, request latency, network bytes; anomalies:
                     saturation plateaus, lasting level changes, idle drops, oscillations, latency spikes,
                     slow degradations, failures;
* ``synthNoAnomaly`` flat, noisy, clean / noisy sines and square waves with random parameters (no windows:
                     every alarm after the probation period is a false positive).

Labels follow NAB: one window per anomaly, 10 % of the series length divided by the number of anomalies,
centred on the anomaly's first point (overlapping windows merged). Everything is deterministic for a seed;
each series has its own generator (``[seed, family, index]``), so adding a family changes no other series.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Callable

import numpy as np

T0 = 1_420_070_400.0  # 2015-01-01 00:00:00 UTC (a Thursday)
DAY = 86400.0
Series = tuple[np.ndarray, np.ndarray, list[int]]


def _dow(t: np.ndarray) -> np.ndarray:
    return ((t // DAY) + 3) % 7  # 0 = Monday


def _hour(t: np.ndarray) -> np.ndarray:
    return (t % DAY) / 3600.0


def _pick_starts(rng: np.random.Generator, n: int, k: int, lo: float = 0.2, gap: int = 0) -> list[int]:
    """k anomaly starts after the first ``lo`` of the series, at least ``gap`` points apart."""
    gap = gap or max(50, int(0.1 * n / max(k, 1)))
    for _ in range(200):
        s = np.sort(rng.integers(int(lo * n), int(0.95 * n), k))
        if k == 1 or np.min(np.diff(s)) >= gap:
            return [int(v) for v in s]
    return [int(v) for v in np.linspace(int(lo * n), int(0.95 * n), k)]


def _start(rng: np.random.Generator) -> float:
    return T0 + float(rng.integers(0, 300)) * DAY


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    e = rng.normal(0.0, sd, n)
    out = np.empty(n)
    acc = 0.0
    for i in range(n):
        acc = phi * acc + e[i]
        out[i] = acc
    return out


# --------------------------------------------------------------------------------------------- traffic
def traffic(rng: np.random.Generator) -> Series:
    n = int(rng.integers(1500, 3000))
    base_step = float(rng.choice([300.0, 300.0, 300.0, 600.0]))
    steps = base_step + rng.normal(0.0, 0.1 * base_step, n)
    gaps = rng.random(n) < rng.uniform(0.003, 0.03)
    steps[gaps] += rng.uniform(900.0, 6 * 3600.0, int(gaps.sum()))
    if rng.random() < 0.3:  # a stretch sampled at another rate
        a = int(rng.integers(0, n // 2))
        steps[a : a + int(rng.integers(100, 500))] *= rng.choice([0.5, 2.0, 3.0])
    t = _start(rng) + np.cumsum(np.abs(steps))
    hour, weekday = _hour(t), _dow(t) < 5
    am, pm = rng.uniform(6.5, 9.0), rng.uniform(15.5, 18.5)
    wa, wb = rng.uniform(0.6, 1.6), rng.uniform(0.6, 1.6)
    rush = (0.3 + 0.7 * weekday) * (
        rng.uniform(0.4, 1.0) * np.exp(-((hour - am) ** 2) / (2 * wa**2))
        + rng.uniform(0.4, 1.0) * np.exp(-((hour - pm) ** 2) / (2 * wb**2))
    )
    kind = str(rng.choice(["speed", "occupancy", "traveltime"]))
    k = int(rng.integers(1, 4))
    starts = _pick_starts(rng, n, k)
    inc = np.zeros(n)  # incident intensity
    shift = np.zeros(n)  # lasting relative level change
    stuck: list[tuple[int, int, float | None]] = []
    for s in starts:
        what = rng.choice(["incident", "incident", "fault", "shift"])
        if what == "incident":
            d = int(rng.integers(3, 40))
            inc[s : s + d] = rng.uniform(0.5, 1.0) * np.exp(-np.arange(min(d, n - s)) / max(d, 1) * rng.uniform(0, 2))
        elif what == "fault":
            stuck.append((s, int(rng.integers(15, 200)), None if rng.random() < 0.6 else 0.0))
        else:
            shift[s:] += rng.choice([-1.0, 1.0]) * rng.uniform(0.15, 0.4)
    # ordinary short blips (not labelled)
    blips = np.zeros(n)
    for b in rng.integers(0, n, int(rng.integers(3, 12))):
        blips[b : b + int(rng.integers(1, 3))] = rng.uniform(0.1, 0.35)
    if kind == "speed":
        free = rng.uniform(50, 72)
        x = free * (1 + shift) - rng.uniform(10, 30) * rush - free * 0.6 * inc - free * blips
        x = x + rng.normal(0, rng.uniform(1.5, 5.0), n)
        x = np.clip(x, 3, None)
    elif kind == "occupancy":
        basev = rng.uniform(2, 10)
        x = basev * (1 + shift) + rng.uniform(5, 20) * rush + rng.uniform(15, 40) * inc + 20 * blips
        x = x + np.abs(rng.normal(0, rng.uniform(0.5, 3.0), n)) * rng.gamma(1.5, 0.7, n)
        x = np.clip(x, 0, 100)
    else:
        basev = rng.uniform(120, 450)
        x = basev * (1 + shift) * (1 + rng.uniform(0.4, 1.5) * rush + rng.uniform(1.0, 4.0) * inc + 2 * blips)
        x = x * rng.lognormal(0, rng.uniform(0.05, 0.2), n)
    for s, d, val in stuck:
        e = min(n, s + d)
        x[s:e] = x[s] if val is None else val
    dec = 0 if kind == "traveltime" else int(rng.integers(0, 3))
    return t, np.round(x, dec), starts


# --------------------------------------------------------------------------------------------- machine
def machine(rng: np.random.Generator) -> Series:
    hourly = rng.random() < 0.35
    step = 3600.0 if hourly else 300.0
    n = int(rng.integers(5000, 7500)) if hourly else int(rng.integers(8000, 22000))
    t = _start(rng) + step * np.arange(n)
    per_day = int(DAY / step)
    mean = rng.uniform(20, 95)
    amp_d = rng.uniform(0.0, 3.0) if not hourly else rng.uniform(1.0, 5.0)
    phi = 1 - rng.uniform(0.005, 0.05) * (step / 300.0) ** 0.5
    ar = _ar1(rng, n, min(phi, 0.995), rng.uniform(0.1, 0.8))
    psd = float(np.std(ar))
    x = mean + ar + amp_d * np.sin(2 * np.pi * _hour(t) / 24 - rng.uniform(0, 6.3))
    if hourly:
        x += rng.uniform(0, 4) * np.sin(2 * np.pi * np.arange(n) / (365 * 24) + rng.uniform(0, 6.3))
    x += rng.normal(0, rng.uniform(0.05, 0.6), n)
    psd = float(np.std(x))  # natural variability: anomalies of temperature spells / ramps are sized by it
    k = int(rng.integers(2, 5))
    starts = _pick_starts(rng, n, k)
    for s in starts:
        what = rng.choice(["shutdown", "slow_failure", "sudden_failure", "spell"])
        level = float(x[s])
        if what == "shutdown":
            down = int(rng.integers(per_day // 12 + 2, per_day + 2))
            stay = int(rng.integers(0, per_day))
            low = rng.uniform(0.2, 0.6) * mean
            seg = np.concatenate([np.linspace(level, low, down), np.full(stay, low), np.linspace(low, level, down)])
            e = min(n, s + len(seg))
            x[s:e] = seg[: e - s] + rng.normal(0, 0.5, e - s)
        elif what == "slow_failure":
            ramp = int(rng.integers(per_day // 4 + 2, 2 * per_day + 2))
            e = min(n, s + ramp)
            x[s:e] += np.linspace(0, rng.uniform(3.0, 6.0) * psd, e - s)
            d = int(rng.integers(per_day // 24 + 2, per_day // 2 + 3))
            x[e : min(n, e + d)] -= rng.uniform(0.2, 0.5) * mean
        elif what == "sudden_failure":
            d = int(rng.integers(per_day // 24 + 2, per_day + 2))
            x[s : min(n, s + d)] = rng.uniform(0.05, 0.4) * mean + rng.normal(0, 0.5, min(n, s + d) - s)
        else:
            d = int(rng.integers(per_day // 4 + 2, 2 * per_day + 2))
            e = min(n, s + d)
            bump = np.sin(np.linspace(0, np.pi, e - s)) * rng.choice([-1, 1]) * rng.uniform(3.0, 6.0) * psd
            x[s:e] += bump
    return t, np.round(x, 3), starts


# --------------------------------------------------------------------------------------------- demand
def demand(rng: np.random.Generator) -> Series:
    step = float(rng.choice([1800.0, 1800.0, 900.0, 600.0]))
    per_day = int(DAY / step)
    n = int(rng.integers(60, 150)) * per_day if step >= 900 else int(rng.integers(40, 70)) * per_day
    t = _start(rng) + step * np.arange(n)
    h = _hour(t)
    dow = _dow(t)

    def profile(hh: np.ndarray) -> np.ndarray:
        p = rng.uniform(0.05, 0.3) * np.ones_like(hh)
        for _ in range(int(rng.integers(1, 4))):
            c, w, a = rng.uniform(7, 22), rng.uniform(1.0, 4.0), rng.uniform(0.4, 1.0)
            p = p + a * np.exp(-(((hh - c + 12) % 24 - 12) ** 2) / (2 * w**2))
        return p

    weekday_p = profile(h)
    weekend_p = profile(h) * rng.uniform(0.5, 1.2) if rng.random() < 0.7 else weekday_p
    scale = rng.uniform(50, 30000)
    lvl = np.exp(np.cumsum(rng.normal(0, 0.002, n)) + np.linspace(0, rng.uniform(-0.3, 0.3), n))
    base = scale * lvl * np.where(dow >= 5, weekend_p, weekday_p)
    x = base * rng.lognormal(0, rng.uniform(0.02, 0.1), n)
    k = int(rng.integers(2, 6))
    starts = []
    for s in _pick_starts(rng, n, k, gap=2 * per_day):
        what = rng.choice(["holiday", "storm", "surge", "night", "outage"])
        day0 = (s // per_day) * per_day
        if what == "holiday":
            e = min(n, day0 + per_day)
            hp = weekend_p[day0:e] if not np.array_equal(weekend_p, weekday_p) else weekday_p[day0:e] * 0.55
            x[day0:e] = scale * lvl[day0:e] * hp * rng.uniform(0.7, 1.0) * rng.lognormal(0, 0.05, e - day0)
            starts.append(day0 + int(rng.integers(0, per_day // 3)))
        elif what == "storm":
            e = min(n, day0 + int(rng.integers(per_day // 2, 2 * per_day)))
            x[day0:e] *= rng.uniform(0.25, 0.6)
            starts.append(day0 + per_day // 4)
        elif what == "surge":
            d = int(rng.integers(max(2, per_day // 24), per_day // 4 + 3))
            x[s : min(n, s + d)] *= rng.uniform(1.5, 2.5)
            starts.append(s)
        elif what == "night":
            s2 = day0 + int(rng.uniform(0.5, 4.5) * per_day / 24)
            d = int(rng.integers(max(2, per_day // 24), per_day // 6 + 3))
            x[s2 : min(n, s2 + d)] += rng.uniform(0.5, 1.5) * scale * lvl[s2]
            starts.append(s2)
        else:
            d = int(rng.integers(max(2, per_day // 24), per_day // 3 + 3))
            x[s : min(n, s + d)] *= rng.uniform(0.0, 0.15)
            starts.append(s)
    return t, np.round(np.maximum(x, 0)), sorted(starts)


# --------------------------------------------------------------------------------------------- tweets
def tweets(rng: np.random.Generator) -> Series:
    n = int(rng.integers(14000, 16000))
    t = _start(rng) + 300.0 * np.arange(n)
    h = _hour(t)
    level = rng.uniform(3, 200) * np.exp(np.cumsum(rng.normal(0, 0.006, n)))
    lam = level * (1 + rng.uniform(0.2, 0.8) * np.sin(2 * np.pi * (h - rng.uniform(6, 12)) / 24)) * np.where(_dow(t) >= 5, rng.uniform(0.6, 1.0), 1.0)
    for _ in range(int(rng.integers(15, 45))):  # ordinary bursts, not labelled
        s = int(rng.integers(0, n - 40))
        d = int(rng.integers(2, 30))
        lam[s : s + d] *= 1 + rng.uniform(0.5, 2.5) * np.exp(-np.arange(d) / max(1.0, d / 3))
    k = int(rng.integers(2, 5))
    starts = _pick_starts(rng, n, k)
    for s in starts:
        if rng.random() < 0.75:  # a big burst with a decay
            d = int(rng.integers(6, 80))
            e = min(n, s + d)
            lam[s:e] *= 1 + rng.uniform(4.0, 20.0) * np.exp(-np.arange(e - s) / max(1.0, d / rng.uniform(2, 5)))
        else:  # a sustained elevated day
            d = int(rng.integers(100, 400))
            lam[s : min(n, s + d)] *= rng.uniform(2.0, 4.0)
    r = rng.uniform(2, 20)  # negative-binomial dispersion
    x = rng.poisson(rng.gamma(r, lam / r))
    return t, x.astype(float), starts


# --------------------------------------------------------------------------------------------- cloud
def cloud(rng: np.random.Generator) -> Series:
    n = int(rng.integers(3000, 4800))
    t = _start(rng) + 300.0 * np.arange(n)
    kind = str(rng.choice(["cpu", "cpu", "latency", "network"]))
    k = int(rng.integers(1, 4))
    starts = _pick_starts(rng, n, k)
    if kind == "cpu":
        base = rng.uniform(1, 60)
        x = base + _ar1(rng, n, 0.9, rng.uniform(0.05, 0.1) * base) + np.abs(rng.normal(0, 0.05 * base, n))
        if rng.random() < 0.5:  # a batch job every few hours (not labelled)
            every = int(rng.integers(12, 289))
            for b in range(int(rng.integers(0, every)), n, every):
                x[b : b + int(rng.integers(1, 4))] += rng.uniform(0.5, 1.5) * base
        for s in starts:
            what = rng.choice(["saturate", "shift", "idle", "oscillate"])
            d = int(rng.integers(5, 150))
            e = min(n, s + d)
            if what == "saturate":
                x[s:e] = rng.uniform(92, 100) + rng.normal(0, 1, e - s)
            elif what == "shift":
                x[s:] += rng.choice([-0.5, 1.0]) * rng.uniform(0.3, 1.0) * base
            elif what == "idle":
                x[s:e] = rng.uniform(0.0, 0.1) * base + np.abs(rng.normal(0, 0.01 * base, e - s))
            else:
                x[s:e] += rng.uniform(0.5, 1.5) * base * (np.arange(e - s) % 4 < 2)
        x = np.clip(x, 0, 100)
    elif kind == "latency":
        base = rng.uniform(20, 300)
        x = base * (1 + 0.3 * _ar1(rng, n, 0.95, 0.05)) + rng.gamma(2.0, base * rng.uniform(0.02, 0.15), n)
        for s in starts:
            what = rng.choice(["spike", "degrade", "failure"])
            if what == "spike":
                d = int(rng.integers(2, 20))
                x[s : min(n, s + d)] *= rng.uniform(3, 10)
            elif what == "degrade":
                d = int(rng.integers(50, 400))
                e = min(n, s + d)
                x[s:e] *= np.linspace(1, rng.uniform(1.5, 3), e - s)
            else:
                d = int(rng.integers(10, 100))
                x[s : min(n, s + d)] = base * rng.uniform(5, 20) + rng.normal(0, base * 0.2, min(n, s + d) - s)
    else:
        base = rng.uniform(1e4, 1e7)
        x = base * rng.lognormal(0, rng.uniform(0.1, 0.5), n) * (1 + 0.3 * np.sin(2 * np.pi * _hour(t) / 24))
        for s in starts:
            d = int(rng.integers(1, 30))
            x[s : min(n, s + d)] *= rng.uniform(5, 50)
    return t, np.round(x, 3), starts


# --------------------------------------------------------------------------------------------- no anomaly
NO_ANOMALY_KINDS = ("flat", "noisy", "sine", "square", "sine_noise")


def noanomaly(rng: np.random.Generator, kind: str | None = None) -> Series:
    """An anomaly-free series of ``kind`` (drawn at random when None), NAB's artificialNoAnomaly shapes."""
    n = 4032
    t = _start(rng) + 300.0 * np.arange(n)
    kind = kind or str(rng.choice(list(NO_ANOMALY_KINDS)))
    ph = 2 * np.pi * _hour(t) / 24 + rng.uniform(0, 6.3)
    if kind == "flat":
        x = np.full(n, rng.uniform(-50, 100))
    elif kind == "noisy":
        x = rng.uniform(0, 100) + rng.normal(0, rng.uniform(1, 20), n)
    elif kind == "sine":
        x = rng.uniform(0, 100) + rng.uniform(5, 50) * np.sin(ph)
    elif kind == "square":
        lo = rng.uniform(0, 50)
        x = np.where(np.sin(ph) > 0, lo + rng.uniform(10, 80), lo)
    else:
        x = rng.uniform(0, 100) + rng.uniform(5, 50) * np.sin(ph) + rng.normal(0, rng.uniform(0.2, 3), n)
    return t, np.round(x, 3), []


FAMILIES: dict[str, tuple[Callable[[np.random.Generator], Series], int]] = {
    "synthTraffic": (traffic, 10),
    "synthMachine": (machine, 6),
    "synthDemand": (demand, 6),
    "synthTweets": (tweets, 10),
    "synthCloud": (cloud, 12),
    "synthNoAnomaly": (noanomaly, 6),
}


def _stamp(t: np.ndarray) -> list[str]:
    return [str(s).replace("T", " ") for s in np.round(t).astype("datetime64[s]")]


def write(out: str, seed: int, families: list[str] | None = None, nab_config: str | None = None) -> dict[str, list]:
    """Write ``out/data/<family>/<name>.csv`` and ``out/labels/combined_windows.json``."""
    windows: dict[str, list] = {}
    for fi, (fam, (make, count)) in enumerate(sorted(FAMILIES.items())):
        if families and fam not in families:
            continue
        os.makedirs(os.path.join(out, "data", fam), exist_ok=True)
        for si in range(count):
            rng = np.random.default_rng([seed, fi, si])
            t, x, starts = make(rng)
            stamps = _stamp(t)
            # drop duplicate timestamps (irregular sampling may collide after rounding)
            keep = np.concatenate([[True], np.array(stamps[1:]) != np.array(stamps[:-1])])
            idx_map = np.cumsum(keep) - 1
            stamps = [s for s, k in zip(stamps, keep) if k]
            x = x[keep]
            starts = sorted({int(idx_map[s]) for s in starts})
            name = f"{fam[5:].lower()}_{seed}_{si}.csv"
            with open(os.path.join(out, "data", fam, name), "w") as f:
                f.write("timestamp,value\n")
                for s, v in zip(stamps, x.tolist()):
                    f.write(f"{s},{v!r}\n")
            wins = []
            if starts:
                half = max(1, int(0.1 * len(stamps) / len(starts)) // 2)
                for a in starts:
                    wins.append([stamps[max(0, a - half)] + ".000000", stamps[min(len(stamps) - 1, a + half)] + ".000000"])
                # merge overlapping windows (NAB's windows never overlap)
                merged = [wins[0]]
                for w in wins[1:]:
                    if w[0] <= merged[-1][1]:
                        merged[-1][1] = max(merged[-1][1], w[1])
                    else:
                        merged.append(w)
                wins = merged
            windows[f"{fam}/{name}"] = wins
    os.makedirs(os.path.join(out, "labels"), exist_ok=True)
    with open(os.path.join(out, "labels", "combined_windows.json"), "w") as f:
        json.dump(windows, f, indent=1)
    if nab_config:
        os.makedirs(os.path.join(out, "config"), exist_ok=True)
        shutil.copy(os.path.join(nab_config, "profiles.json"), os.path.join(out, "config", "profiles.json"))
    return windows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder to write data/, labels/ (and config/) into")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--nab-config", default="", help="NAB config folder to copy profiles.json from")
    a = ap.parse_args(argv)
    w = write(a.out, a.seed, nab_config=a.nab_config or None)
    print(f"series={len(w)} windows={sum(len(v) for v in w.values())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
