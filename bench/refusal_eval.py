"""Precision/recall of the refusal detector on a labelled set.

    python -m bench.refusal_eval [--data bench/data/refusal_labelled.jsonl] [--show-errors]

Input lines: ``{"text": ..., "label": 0|1, "kind": ...}``. Prints a JSON report with
precision, recall, F1, accuracy, per-kind accuracy and throughput (median of 5 runs);
the last line is the headline ``precision=… recall=…``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path

from detectors.bias.refusal import RefusalDetector

DEFAULT_DATA = Path(__file__).parent / "data" / "refusal_labelled.jsonl"


def evaluate(rows: list[dict], detector: RefusalDetector) -> dict:
    """Confusion counts and derived metrics of ``detector`` on ``rows``."""
    tp = fp = fn = tn = 0
    per_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    errors = []
    for r in rows:
        pred = detector(r["text"])
        gold = bool(r["label"])
        tp += pred and gold
        fp += pred and not gold
        fn += (not pred) and gold
        tn += (not pred) and (not gold)
        k = per_kind[r.get("kind", "all")]
        k[0] += pred == gold
        k[1] += 1
        if pred != gold:
            errors.append({"label": int(gold), "kind": r.get("kind"), "text": r["text"][:160]})
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n": len(rows),
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "accuracy": round((tp + tn) / len(rows), 4) if rows else 0.0,
        "accuracy_by_kind": {k: round(c / n, 4) for k, (c, n) in sorted(per_kind.items())},
        "errors": errors,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--show-errors", action="store_true")
    args = ap.parse_args(argv)
    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    det = RefusalDetector()
    report = evaluate(rows, det)
    texts = [r["text"] for r in rows] * 20
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        for t in texts:
            det.classify(t)
        runs.append(time.perf_counter() - t0)
    report["responses_per_second_median"] = round(len(texts) / statistics.median(runs))
    if not args.show_errors:
        report["errors"] = len(report["errors"])
    print(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"precision={report['precision']:.3f} recall={report['recall']:.3f} f1={report['f1']:.3f} n={report['n']}")


if __name__ == "__main__":
    main()
