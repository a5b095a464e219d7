"""False-alarm calibration of the cohort fairness monitor.

Simulates windows in which every group has the SAME outcome rate (and the same TPR/FPR),
at several group sizes, group counts and base rates, and counts the windows that raise a
finding. The stated rate is ``alpha`` per window (family-wise over attributes × metrics).

    python -m bench.bias_calibration [--windows 1000] [--alpha 0.05] [--seed 7]

Prints one JSON line per setting and, last, the worst observed rate against the stated one.
``test_rejections`` counts windows with any Holm-significant test *ignoring* the practical
threshold — the stricter check of the tests' own level.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import numpy as np
from scipy import stats

from detectors.bias.fairness import CohortFairnessMonitor, FairnessConfig, evaluate_window
from detectors.bias.metrics import GroupCounts
from detectors.finding import Subject


def simulate_counts(rng: np.random.Generator, sizes: list[int], rate: float, label_rate: float = 0.5) -> dict[str, GroupCounts]:
    """Counts for groups of the given sizes sharing one outcome rate, labels independent."""
    out = {}
    for i, n in enumerate(sizes):
        pos = int(rng.binomial(n, label_rate))
        neg = n - pos
        tp = int(rng.binomial(pos, rate))
        fp = int(rng.binomial(neg, rate))
        out[f"g{i}"] = GroupCounts(n=n, favorable=tp + fp, label_pos=pos, tp=tp, label_neg=neg, fp=fp)
    return out


def upper_95(k: int, n: int) -> float:
    """Clopper-Pearson one-sided 95% upper bound of a rate k/n."""
    return 1.0 if k == n else float(stats.beta.ppf(0.95, k + 1, n - k))


def run_setting(windows: int, sizes: list[int], rate: float, attributes: int, cfg: FairnessConfig, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    alarms = rejections = 0
    for _ in range(windows):
        counts = {f"a{j}": simulate_counts(rng, sizes, rate) for j in range(attributes)}
        res = evaluate_window(counts, cfg)
        alarms += any(d.alarm for d in res)
        rejections += any(d.significant for d in res)
    return {
        "group_sizes": sizes,
        "base_rate": rate,
        "attributes": attributes,
        "windows": windows,
        "false_alarm_rate": alarms / windows,
        "false_alarm_upper95": round(upper_95(alarms, windows), 4),
        "test_rejection_rate": rejections / windows,
        "test_rejection_upper95": round(upper_95(rejections, windows), 4),
    }


def run_stream(windows: int, per_window: int, rate: float, cfg: FairnessConfig, seed: int) -> dict:
    """End to end through CohortFairnessMonitor.update() with count windows."""
    rnd = random.Random(seed)
    cfg = FairnessConfig(**{**cfg.__dict__, "window_size": per_window})
    mon = CohortFairnessMonitor(cfg)
    subject = Subject(tenant="bench", model="m", version="1")
    flagged_windows = set()
    for i in range(windows * per_window):
        groups = {a: rnd.choice(["p", "q", "r"]) for a in cfg.protected_attributes}
        label = rnd.random() < 0.5
        for f in mon.update(subject, 1_700_000_000 + i, groups, rnd.random() < rate, label, kind="refusal"):
            if f.window is not None:
                flagged_windows.add(f.window.start)
    k = len(flagged_windows)
    return {"path": "CohortFairnessMonitor.update", "windows": windows, "events_per_window": per_window,
            "base_rate": rate, "false_alarm_rate": k / windows, "false_alarm_upper95": round(upper_95(k, windows), 4)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="false-alarm calibration of the fairness monitor")
    ap.add_argument("--windows", type=int, default=1000)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    cfg = FairnessConfig(protected_attributes=("a0", "a1"), alpha=args.alpha, min_group_size=30)
    t0 = time.perf_counter()
    settings = []
    for k in (2, 4):
        for n in (30, 50, 100, 300, 1000, 5000):
            for rate in (0.03, 0.5, 0.9):
                settings.append(([n] * k, rate))
    settings += [([30, 400, 3000], 0.05), ([35, 60, 90, 2000], 0.97)]
    worst = 0.0
    worst_test = 0.0
    above = 0  # settings whose rate is significantly above the stated one (binomial p < 0.01)
    for i, (sizes, rate) in enumerate(settings):
        r = run_setting(args.windows, sizes, rate, 2, cfg, args.seed + i)
        worst = max(worst, r["false_alarm_rate"])
        worst_test = max(worst_test, r["test_rejection_rate"])
        k = round(r["false_alarm_rate"] * args.windows)
        above += int(stats.binomtest(k, args.windows, args.alpha, alternative="greater").pvalue < 0.01)
        print(json.dumps(r))
    s = run_stream(max(200, args.windows // 5), 600, 0.9, cfg, args.seed)
    worst = max(worst, s["false_alarm_rate"])
    print(json.dumps(s))
    print(json.dumps({"settings": len(settings) + 1, "seconds": round(time.perf_counter() - t0, 1),
                      "worst_test_rejection_rate": worst_test,
                      "settings_significantly_above_stated": above}))
    print(f"stated false-alarm rate per window {args.alpha:.3f}; worst observed {worst:.4f} "
          f"over {args.windows} windows/setting (ratio {worst / args.alpha:.2f}); "
          f"settings significantly above stated: {above}")


if __name__ == "__main__":
    main()
