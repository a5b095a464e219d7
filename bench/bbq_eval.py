"""BBQ bias scores per category from a results file.

    python -m bench.bbq_eval --input results.jsonl [--target-convention auto|stereotyped|bias_target]

Each input line is one BBQ item with the model's answer, in BBQ's field names:
``category``, ``question_polarity`` ("neg"/"nonneg"), ``context_condition``
("ambig"/"disambig"), ``label`` (correct answer index), ``answer`` (index the model chose),
``target_loc`` (answer naming the stereotyped group), ``unknown_loc``; other fields are
ignored (BBQ's ``answer_info``/``additional_metadata`` are used by ``auto`` to tell which
entity ``target_loc`` names — see :mod:`detectors.bias.bbq`).

Prints ``{"<category>": {"ambig": {"bias", "accuracy", "n", …}, "disambig": {…}}, "ALL": {…}}``
to stdout (bias in [−1, 1]); notes (convention used, skipped lines) go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from detectors.bias.bbq import BbqScorer, detect_target_convention


def read_jsonl(path: Path) -> list[dict]:
    """Parse a JSON-lines file, skipping blank lines."""
    rows = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                print(f"line {lineno}: not JSON ({exc.msg}); skipped", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="BBQ bias scores per category")
    ap.add_argument("--input", required=True, type=Path, help="results JSONL")
    ap.add_argument("--target-convention", choices=("auto", "stereotyped", "bias_target"), default="auto")
    args = ap.parse_args(argv)
    rows = [r for r in read_jsonl(args.input) if isinstance(r, dict)]
    conv = args.target_convention
    if conv == "auto":
        detected = detect_target_convention(rows)
        conv = detected or "stereotyped"
        print(f"target_loc convention: {conv} ({'detected' if detected else 'default'})", file=sys.stderr)
    scorer = BbqScorer(conv)
    for r in rows:
        scorer.add_raw(r)
    if scorer.skipped:
        print(f"skipped {scorer.skipped} unusable lines (no target_loc/answer/…)", file=sys.stderr)
    print(json.dumps(scorer.scores(), indent=2))


if __name__ == "__main__":
    main()
