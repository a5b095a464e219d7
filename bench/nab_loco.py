"""Leave-one-category-out (LOCO) NAB scoring of the anomaly detector: how it does on data it was not fitted to.

usage:
    python -m bench.nab_loco --nab ../shared/nab [--seeds 101,102,103,104] [--set key=value ...] [--profile P]

The categories are NAB's development subset (``--nab``: data/, labels/) plus the synthetic families of
:mod:`bench.nab_synthetic`, generated here for each ``--seeds`` seed (fresh seeds never used for a choice give
the honest figure). A fresh detector with the one default configuration (``--set`` overrides a field, for
experiments) scores every series. Then, for every category C:

* ``loco`` — the alarm threshold is the one that maximises NAB's raw score summed over all OTHER categories
  (as NAB's optimiser does over a corpus); C is scored at that threshold and normalised with NAB's null and
  perfect detectors on C's files. This is the figure a category the detector has not seen would get;
* ``opt`` — C at its own optimised threshold (what NAB's per-category tables report); ``gap`` = opt - loco;
* ``fp@loco`` — rows above the LOCO threshold outside every window (the anomaly-free family has no windows,
  so this is its only figure).

Also printed: the NAB development subset pooled with one optimised threshold (the figure NAB's scorer gives,
``../shared/nab/score.py``) and all categories pooled (a stand-in for the full corpus). Scoring follows NAB
v1.1 (probation 15 % capped at 750 rows, scaled-sigmoid window weights, FP weights scaled by the distance
from the last window), vectorised; :class:`Scorer` reproduces ``score.py`` (a test checks the rules on
hand-computed cases). The last line is the mean LOCO score over the labelled categories.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, replace

import numpy as np

from bench import nab_synthetic
from bench.nab import epoch_seconds, parse_overrides
from detectors.anomaly.detector import AnomalyConfig, AnomalyDetector

PROFILES: dict[str, dict[str, float]] = {
    "standard": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11},
    "reward_low_FP_rate": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.22},
    "reward_low_FN_rate": {"tpWeight": 1.0, "fnWeight": 2.0, "fpWeight": 0.11},
}
DEV_CATEGORIES = ("artificialWithAnomaly", "realAWSCloudwatch", "realAdExchange")


def _scaled_sigmoid(x: np.ndarray) -> np.ndarray:
    out = 2.0 / (1.0 + np.exp(np.minimum(5.0 * x, 50.0))) - 1.0
    return np.where(x > 3.0, -1.0, out)


@dataclass
class Series:
    """One labelled series: category, timestamps (text and epoch seconds), values, windows (row indices)."""

    rel: str
    category: str
    stamps: list[str]
    values: np.ndarray
    windows: list[tuple[int, int]]

    @property
    def seconds(self) -> np.ndarray:
        return epoch_seconds(self.stamps)


def load(root: str, categories: set[str] | None = None) -> list[Series]:
    """The series of a NAB-layout folder (``data/<category>/<file>.csv``, ``labels/combined_windows.json``)."""
    with open(os.path.join(root, "labels", "combined_windows.json")) as f:
        windows = json.load(f)
    out = []
    for rel in sorted(windows):
        cat = rel.split("/")[0]
        if categories and cat not in categories:
            continue
        stamps, vals = [], []
        with open(os.path.join(root, "data", rel), newline="") as f:
            for row in csv.DictReader(f):
                stamps.append(row["timestamp"])
                vals.append(float(row["value"]))
        index = {s: i for i, s in enumerate(stamps)}
        wins = [(index[a.split(".")[0]], index[b.split(".")[0]]) for a, b in windows[rel]]
        out.append(Series(rel, cat, stamps, np.asarray(vals), wins))
    return out


class _File:
    """NAB's per-row weights of one file for one cost profile (independent of the detector)."""

    def __init__(self, s: Series, cost: dict[str, float]) -> None:
        n = len(s.values)
        self.probation = int(min(math.floor(0.15 * n), 0.15 * 5000))
        w = np.zeros(n)
        inwin = np.zeros(n, bool)
        max_tp = float(_scaled_sigmoid(np.array([-1.0]))[0])
        segments: list[tuple[int, int, int | None, int | None]] = []
        last: int = 0
        prev_end: int | None = None
        prev_width: int | None = None
        for a, b in s.windows:
            segments.append((last, a, prev_end, prev_width))
            width = b - a + 1
            i = np.arange(a, b + 1)
            w[a : b + 1] = _scaled_sigmoid(-(b - i + 1) / float(width)) * cost["tpWeight"] / max_tp
            inwin[a : b + 1] = True
            prev_end, prev_width, last = b, width, b + 1
        segments.append((last, n, prev_end, prev_width))
        for lo, hi, pe, pw in segments:
            if hi > lo:
                i = np.arange(lo, hi)
                if pe is None or pw is None:
                    w[lo:hi] = -cost["fpWeight"]
                else:
                    w[lo:hi] = _scaled_sigmoid(np.abs(pe - i) / float(pw - 1)) * cost["fpWeight"]
        self.weights = w
        self.in_window = inwin
        self.windows = s.windows
        self.fn = cost["fnWeight"]
        self.n_windows = len(s.windows)

    def raw(self, scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
        """NAB's raw score of this file at every threshold (detection: score >= threshold)."""
        p = self.probation
        out_s = scores[p:][~self.in_window[p:]]
        out_w = self.weights[p:][~self.in_window[p:]]
        order = np.argsort(-out_s, kind="stable")
        cum = np.concatenate([[0.0], np.cumsum(out_w[order])])
        total = cum[np.searchsorted(-out_s[order], -thresholds, side="right")]
        for a, b in self.windows:
            a2 = max(a, p)
            if b < a2:
                continue  # a window wholly inside the probation period is not scored
            seg = scores[a2 : b + 1]
            first = np.searchsorted(np.maximum.accumulate(seg), thresholds, side="left")
            hit = self.weights[a2 : b + 1][np.minimum(first, len(seg) - 1)]
            total = total + np.where(first < len(seg), hit, -self.fn)
        return total

    def false_positives(self, scores: np.ndarray, threshold: float) -> int:
        p = self.probation
        return int(np.sum((scores[p:] >= threshold) & ~self.in_window[p:]))


class Scorer:
    """NAB scoring of detector outputs over series grouped by category, with leave-one-category-out."""

    def __init__(self, series: list[Series], profile: str = "standard") -> None:
        cost = PROFILES[profile]
        self.series = series
        self.files = [_File(s, cost) for s in series]
        self.categories = sorted({s.category for s in series})
        self.members = {c: [i for i, s in enumerate(series) if s.category == c] for c in self.categories}
        self.tp = cost["tpWeight"]

    def _null(self, ix: list[int]) -> float:
        th = np.array([1.1, 0.5])
        tot = np.zeros(2)
        for i in ix:
            tot += self.files[i].raw(np.full(len(self.series[i].values), 0.5), th)
        return float(np.max(tot))

    def normalised(self, ix: list[int], raw: float) -> float:
        """100 * (raw - null) / (perfect - null) over the files ``ix`` (NaN without windows)."""
        perfect = sum(self.files[i].n_windows for i in ix) * self.tp
        null = self._null(ix)
        return math.nan if perfect <= null else 100.0 * (raw - null) / (perfect - null)

    @staticmethod
    def _grid(scores: list[np.ndarray]) -> np.ndarray:
        allsc = np.concatenate(scores)
        return np.concatenate([np.unique(np.round(allsc, 6)), [1.1]])

    def pooled(self, scores: list[np.ndarray], categories: list[str] | tuple[str, ...]) -> tuple[float, float]:
        """(score, threshold) over the union of ``categories`` with one optimised threshold (NAB's way)."""
        ix = [i for c in categories for i in self.members.get(c, [])]
        grid = self._grid([scores[i][self.files[i].probation :] for i in ix])
        tot = np.zeros(len(grid))
        for i in ix:
            tot += self.files[i].raw(scores[i], grid)
        k = int(np.argmax(tot))
        return self.normalised(ix, float(tot[k])), float(grid[k])

    def loco(self, scores: list[np.ndarray]) -> dict[str, dict[str, float]]:
        """Per category: ``loco``, ``opt``, ``gap``, the two thresholds and ``fp_at_loco``."""
        grid = self._grid([sc[self.files[i].probation :] for i, sc in enumerate(scores)])
        curves = {c: np.zeros(len(grid)) for c in self.categories}
        for c, ix in self.members.items():
            for i in ix:
                curves[c] += self.files[i].raw(scores[i], grid)
        total = sum(curves.values(), np.zeros(len(grid)))
        out = {}
        for c, ix in self.members.items():
            k_loco = int(np.argmax(total - curves[c]))
            k_opt = int(np.argmax(curves[c]))
            loco = self.normalised(ix, float(curves[c][k_loco]))
            opt = self.normalised(ix, float(curves[c][k_opt]))
            out[c] = {
                "loco": loco,
                "opt": opt,
                "gap": opt - loco,
                "threshold_loco": float(grid[k_loco]),
                "threshold_opt": float(grid[k_opt]),
                "fp_at_loco": sum(self.files[i].false_positives(scores[i], float(grid[k_loco])) for i in ix),
            }
        return out


def run(nab: str, seeds: list[int], config: AnomalyConfig, profile: str = "standard",
        workdir: str | None = None) -> tuple[Scorer, list[np.ndarray]]:
    """Load NAB's development subset and the synthetic families for ``seeds``; score every series."""
    series = load(nab, set(DEV_CATEGORIES)) if nab else []
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        for seed in seeds:
            root = os.path.join(tmp, f"seed{seed}")
            nab_synthetic.write(root, seed)
            series += load(root)
    scores = [AnomalyDetector(config).update_many(s.seconds, s.values) for s in series]
    return Scorer(series, profile), scores


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nab", default="", help="NAB folder with the development subset (data/, labels/)")
    ap.add_argument("--seeds", default="101,102,103,104", help="synthetic seeds (comma separated; '' for none)")
    ap.add_argument("--profile", default="standard", choices=sorted(PROFILES))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (experiments)")
    a = ap.parse_args(argv)
    config = replace(AnomalyConfig(), **parse_overrides(a.set))
    seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    t0 = time.perf_counter()
    scorer, scores = run(a.nab, seeds, config, a.profile)
    table = scorer.loco(scores)
    print(f"profile={a.profile} seeds={seeds} series={len(scores)} "
          f"windows={sum(f.n_windows for f in scorer.files)} ({time.perf_counter() - t0:.1f}s)")
    print(f"{'category':24s} {'loco':>7s} {'opt':>7s} {'gap':>6s} {'th_loco':>8s} {'th_opt':>7s} {'fp@loco':>8s}")
    labelled = []
    for c in scorer.categories:
        r = table[c]
        if not math.isnan(r["loco"]):
            labelled.append(c)
        print(f"{c:24s} {r['loco']:7.2f} {r['opt']:7.2f} {r['gap']:6.2f} {r['threshold_loco']:8.3f} "
              f"{r['threshold_opt']:7.3f} {int(r['fp_at_loco']):8d}")
    dev = [c for c in DEV_CATEGORIES if c in scorer.members]
    syn = [c for c in labelled if c not in DEV_CATEGORIES]
    if dev:
        score, th = scorer.pooled(scores, dev)
        print(f"NAB development subset, one optimised threshold: {score:.2f} (threshold {th:.3f})")
    score, th = scorer.pooled(scores, scorer.categories)
    print(f"all categories pooled, one optimised threshold: {score:.2f} (threshold {th:.3f})")
    for name, cats in (("NAB categories", dev), ("synthetic families", syn)):
        if cats:
            print(f"mean LOCO, {name}: {np.mean([table[c]['loco'] for c in cats]):.2f}")
    print(f"mean LOCO over {len(labelled)} labelled categories: {np.mean([table[c]['loco'] for c in labelled]):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
