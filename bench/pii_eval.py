"""Evaluation CLI for the PII detector, and the span metrics the benchmark shares.

Predict::

    python -m bench.pii_eval --input texts.jsonl --output predictions.jsonl

Input lines ``{"id", "text"}``; output lines ``{"id", "entities": [{"start", "end", "type",
"score"}]}`` with Presidio type names. Input lines that also carry gold ``spans``
(``[{"start", "end", "type"}]``, as in ``bench/data/pii_labelled.jsonl``) are scored and
a report is printed (``--no-score`` to skip).

Matching: a gold span is *found* when predicted spans (any type) cover at least half of
its characters; typed recall needs the same type. A prediction is correct when at least
half of its characters lie in gold spans of its type.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from detectors.pii.detector import DEFAULT_ENTITIES, PiiConfig, PiiDetector

__all__ = ["score", "format_report", "main", "with_values"]


def _covered(span: tuple[int, int], others: Iterable[tuple[int, int]]) -> int:
    s, e = span
    marks = bytearray(e - s)
    for os_, oe in others:
        lo, hi = max(s, os_), min(e, oe)
        for k in range(lo - s, hi - s):
            marks[k] = 1
    return sum(marks)


def _leaks(value: str, span: tuple[int, int], preds: Iterable[tuple[int, int]]) -> bool:
    s, _e = span
    covered = bytearray(len(value))
    for ps, pe in preds:
        for k in range(max(s, ps) - s, min(s + len(value), pe) - s):
            covered[k] = 1
    return any(c.isalnum() and not covered[k] for k, c in enumerate(value))


def with_values(rows: Sequence[dict]) -> list[list[dict]]:
    """Gold spans of labelled rows with their ``text`` value attached (enables the leak count)."""
    return [[dict(g, text=r["text"][g["start"] : g["end"]]) for g in r["spans"]] for r in rows]


def score(gold: Sequence[Sequence[dict]], pred: Sequence[Sequence[dict]], types: Iterable[str] | None = None) -> dict[str, Any]:
    """Span metrics over aligned lists of gold and predicted spans per text.

    Returns ``{"any_recall", "n_gold", "per_type": {type: {"tp", "fn", "fp", "precision", "recall", "f1", "leaked"}}}``;
    ``leaked`` counts gold spans with a letter or digit left uncovered by every prediction
    (part of the value would stay in clear text, as in "Priya <PERSON>").
    ``types`` restricts which predicted types count (gold types are always all counted).
    """
    keep = set(types) if types is not None else None
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"tp": 0, "fn": 0, "fp": 0, "pred_tp": 0, "leaked": 0})
    found = total = 0
    for g_spans, p_spans in zip(gold, pred):
        p_spans = [p for p in p_spans if keep is None or p["type"] in keep]
        p_all = [(p["start"], p["end"]) for p in p_spans]
        for g in g_spans:
            total += 1
            span = (g["start"], g["end"])
            glen = max(1, span[1] - span[0])
            if _covered(span, p_all) * 2 >= glen:
                found += 1
            if g.get("text") is not None and _leaks(g["text"], span, p_all):
                counts[g["type"]]["leaked"] += 1
            same = [(p["start"], p["end"]) for p in p_spans if p["type"] == g["type"]]
            c = counts[g["type"]]
            if _covered(span, same) * 2 >= glen:
                c["tp"] += 1
            else:
                c["fn"] += 1
        for p in p_spans:
            span = (p["start"], p["end"])
            same = [(g["start"], g["end"]) for g in g_spans if g["type"] == p["type"]]
            c = counts[p["type"]]
            if _covered(span, same) * 2 >= max(1, span[1] - span[0]):
                c["pred_tp"] += 1
            else:
                c["fp"] += 1
    per_type = {}
    for t, c in sorted(counts.items()):
        n_gold = c["tp"] + c["fn"]
        n_pred = c["pred_tp"] + c["fp"]
        recall = c["tp"] / n_gold if n_gold else None
        precision = c["pred_tp"] / n_pred if n_pred else None
        f1 = 2 * precision * recall / (precision + recall) if precision and recall else (0.0 if n_gold else None)
        per_type[t] = {"n_gold": n_gold, "n_pred": n_pred, "tp": c["tp"], "fn": c["fn"], "fp": c["fp"],
                       "precision": precision, "recall": recall, "f1": f1, "leaked": c["leaked"]}
    return {"any_recall": found / total if total else None, "n_gold": total, "per_type": per_type}


def _fmt(x: float | None) -> str:
    return "  -  " if x is None else f"{x:.3f}"


def format_report(metrics: dict[str, Any], title: str = "") -> str:
    """Human-readable table of :func:`score` output."""
    lines = [title] if title else []
    lines.append(f"labelled spans found (any type): {_fmt(metrics['any_recall'])} of {metrics['n_gold']}")
    lines.append(f"{'type':<20}{'gold':>6}{'pred':>6}{'prec':>8}{'recall':>8}{'f1':>8}{'leaked':>8}")
    for t, m in metrics["per_type"].items():
        lines.append(f"{t:<20}{m['n_gold']:>6}{m['n_pred']:>6}{_fmt(m['precision']):>8}{_fmt(m['recall']):>8}{_fmt(m['f1']):>8}"
                     f"{m.get('leaked', 0):>8}")
    return "\n".join(lines)


def predict(rows: Sequence[dict], detector: PiiDetector, batch: int = 256) -> list[list[dict]]:
    """Entities per row, as plain dicts."""
    out: list[list[dict]] = []
    for i in range(0, len(rows), batch):
        chunk = rows[i : i + batch]
        for res in detector.analyze_batch([r["text"] for r in chunk]):
            out.append([e.to_dict() for e in res.entities])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run Warden's PII detector over JSONL texts.")
    ap.add_argument("--input", type=Path, required=True, help='JSONL lines {"id", "text"} (optional gold "spans")')
    ap.add_argument("--output", type=Path, required=True, help='JSONL lines {"id", "entities": [...]}')
    ap.add_argument("--entities", default=",".join(DEFAULT_ENTITIES), help="comma-separated entity types")
    ap.add_argument("--threshold", type=float, default=0.4, help="score threshold")
    ap.add_argument("--no-score", action="store_true", help="do not score rows that carry gold spans")
    args = ap.parse_args(argv)

    rows = [json.loads(line) for line in args.input.read_text(encoding="utf-8").splitlines() if line.strip()]
    config = PiiConfig(entities=tuple(e.strip() for e in args.entities.split(",") if e.strip()), score_threshold=args.threshold)
    detector = PiiDetector(config)
    preds = predict(rows, detector)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", encoding="utf-8") as fh:
        for row, ents in zip(rows, preds):
            fh.write(json.dumps({"id": row.get("id"), "entities": ents}) + "\n")
    print(f"wrote {len(rows)} predictions to {args.output}", file=sys.stderr)
    labelled = [(r, p) for r, p in zip(rows, preds) if "spans" in r]
    gold_rows = list(zip(with_values([r for r, _ in labelled]), [p for _, p in labelled]))
    if gold_rows and not args.no_score:
        print(format_report(score([g for g, _ in gold_rows], [p for _, p in gold_rows]), f"scored {len(gold_rows)} labelled rows"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
