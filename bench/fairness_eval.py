"""Group fairness of a decision column in a CSV file.

    python -m bench.fairness_eval --csv data.csv --group COL --outcome COL [--label COL]
                                  [--favorable VALUE] [--alpha 0.05] [--min-group-size 30]

``--outcome`` is the decision/prediction column, ``--label`` the ground truth (optional),
``--favorable`` the value that counts as the favourable / positive outcome in both
(default: 1, also accepting true/yes). Rows with an empty group, outcome or label are
dropped. Prints JSON: per-group ``n``, ``rate`` (selection rate) with a Wilson interval,
``demographic_parity_difference`` (max − min rate), ``demographic_parity_ratio`` =
``disparate_impact_ratio`` (min / max), the four-fifths rule, significance tests and, with
``--label``, per-group TPR/FPR, ``equal_opportunity_difference`` and
``equalized_odds_difference`` (fairlearn's definitions; undefined values are null).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

from detectors.bias.metrics import count_groups, fairness_report

_TRUE = {"1", "true", "yes", "y", "t"}


def _same(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except ValueError:
        return a.lower() == b.lower()


def make_parser(favorable: str | None):
    """Return a function mapping a cell to True (favourable) / False."""
    if favorable is None:
        return lambda v: v.strip().lower() in _TRUE or _same(v.strip(), "1")
    fav = favorable.strip()
    return lambda v: _same(v.strip(), fav)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="group fairness of a decision column")
    ap.add_argument("--csv", required=True, type=Path)
    ap.add_argument("--group", required=True)
    ap.add_argument("--outcome", required=True)
    ap.add_argument("--label")
    ap.add_argument("--favorable")
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--min-group-size", type=int, default=30)
    args = ap.parse_args(argv)
    parse = make_parser(args.favorable)
    groups, outcomes, labels = [], [], []
    dropped = 0
    with args.csv.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in (args.group, args.outcome, args.label) if c and c not in (reader.fieldnames or [])]
        if missing:
            sys.exit(f"column(s) not in CSV: {', '.join(missing)}; have {reader.fieldnames}")
        for row in reader:
            g, o = row.get(args.group), row.get(args.outcome)
            lab = row.get(args.label) if args.label else "x"
            if g is None or o is None or lab is None or "" in (g.strip(), o.strip(), lab.strip()):
                dropped += 1
                continue
            groups.append(g)
            outcomes.append(parse(o))
            labels.append(parse(lab) if args.label else None)
    counts = count_groups(groups, outcomes, labels if args.label else None)
    report = fairness_report(counts, with_labels=bool(args.label), alpha=args.alpha, min_group_size=args.min_group_size)
    report["rows_dropped"] = dropped
    print(json.dumps(report, indent=2, allow_nan=False, default=lambda x: None if isinstance(x, float) and math.isnan(x) else str(x)))


if __name__ == "__main__":
    main()
