"""Run Warden's streaming anomaly detector over a NAB data folder and write NAB results files.

usage:
    python -m bench.nab --data <NAB data folder> --out <results folder> [--set key=value ...]

For every ``<category>/<file>.csv`` (``timestamp,value``) under ``--data`` a fresh detector with the one
default configuration scores the series in order (no look-ahead, no labels) and
``<out>/<category>/warden_<file>.csv`` gets ``timestamp,value,anomaly_score``. ``--set`` overrides a
configuration field (for experiments only; the published figures use the defaults). Score the folder with
NAB's rules: ``python ../shared/nab/score.py --nab ../shared/nab --results <out>``.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from dataclasses import fields
from typing import Any

import numpy as np

from detectors.anomaly.detector import AnomalyConfig, AnomalyDetector


def read_series(path: str) -> tuple[list[str], np.ndarray]:
    """The timestamps (as text, NAB's ``YYYY-MM-DD HH:MM:SS``) and values of one NAB csv file."""
    stamps: list[str] = []
    vals: list[float] = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            stamps.append(row["timestamp"])
            vals.append(float(row["value"]))
    return stamps, np.asarray(vals, dtype=np.float64)


def epoch_seconds(stamps: list[str]) -> np.ndarray:
    """NAB timestamps (naive, taken as UTC) as float64 seconds since the epoch."""
    return np.array([s.replace(" ", "T") for s in stamps], dtype="datetime64[s]").astype(np.int64).astype(np.float64)


def score_series(stamps: list[str], values: np.ndarray, config: AnomalyConfig) -> np.ndarray:
    """Scores of one series from a fresh detector (points fed in file order, no look-ahead)."""
    return AnomalyDetector(config).update_many(epoch_seconds(stamps), values)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``key=value`` strings to typed AnomalyConfig overrides."""
    types = {f.name: f.type for f in fields(AnomalyConfig)}
    out: dict[str, Any] = {}
    for item in items:
        key, _, raw = item.partition("=")
        if key not in types:
            raise SystemExit(f"unknown config field {key!r}")
        if types[key] in (bool, "bool"):
            out[key] = raw.strip().lower() in ("1", "true", "yes")
        elif types[key] in (int, "int"):
            out[key] = int(raw)
        else:
            out[key] = float(raw)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="NAB data folder (<category>/<file>.csv)")
    ap.add_argument("--out", required=True, help="results folder to write")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (experiments)")
    a = ap.parse_args(argv)
    config = AnomalyConfig(**parse_overrides(a.set))
    files = 0
    points = 0
    t0 = time.perf_counter()
    for cat in sorted(os.listdir(a.data)):
        cdir = os.path.join(a.data, cat)
        if not os.path.isdir(cdir):
            continue
        for name in sorted(os.listdir(cdir)):
            if not name.endswith(".csv"):
                continue
            stamps, values = read_series(os.path.join(cdir, name))
            scores = score_series(stamps, values, config)
            os.makedirs(os.path.join(a.out, cat), exist_ok=True)
            with open(os.path.join(a.out, cat, "warden_" + name), "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(["timestamp", "value", "anomaly_score"])
                for ts, v, s in zip(stamps, values.tolist(), scores.tolist()):
                    w.writerow([ts, repr(v), f"{s:.6f}"])
            files += 1
            points += len(values)
    dt = time.perf_counter() - t0
    print(f"files={files} points={points} seconds={dt:.2f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
