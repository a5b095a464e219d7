"""Evaluation CLI of the security detectors.

    python -m bench.security_eval --task injection|toxicity --input texts.jsonl --output predictions.jsonl
                                  [--vectors all|gated|none]

Input lines ``{"id", "text"}`` (other keys ignored); output lines ``{"id", "score", "flagged"}``: the calibrated
score in [0, 1] and the flag at the detector's configured threshold (``WARDEN_SECURITY_*_THRESHOLD`` defaults,
see :class:`detectors.security.SecurityConfig`). Score them with ``shared/dev-data/security/score.py``.

``--vectors`` says which texts get a MiniLM embedding (the stream's preset: int8 ONNX, first 48 tokens):
``all`` (default: the detector with every input it can use, as in the stream when the drift stage embedded the
text), ``gated`` (only texts whose lexical score reaches the embedding gate, as in the stream for texts the
drift stage skipped) or ``none`` (lexical only). Threads: 1 unless ``OMP_NUM_THREADS`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from detectors.features.embeddings import EmbedderConfig, MiniLMEmbedder
from detectors.security import InjectionDetector, SecurityConfig, ToxicityDetector, prepare

__all__ = ["predict", "main"]


def _embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder(EmbedderConfig.fast_cpu(threads=int(os.environ.get("OMP_NUM_THREADS", "1"))))


def predict(task: str, texts: list[str], vectors: str = "all",
            config: SecurityConfig | None = None) -> list[tuple[float, bool]]:
    """(score, flagged) per text."""
    config = config or SecurityConfig()
    detector = InjectionDetector(config) if task == "injection" else ToxicityDetector(config)
    model = detector.model
    prepared = [prepare(t) for t in texts]
    lexical = [model.lexical_logit(p) for p in prepared]
    vecs: list[np.ndarray | None] = [None] * len(texts)
    gate = config.embed_gate if task == "injection" else config.toxicity_embed_gate
    if vectors != "none" and model.has_embedding_head:
        want = [i for i, lx in enumerate(lexical)
                if vectors == "all" or model.lexical_score(lx, prepared[i]) >= gate]
        if want:
            embedded = _embedder().embed([texts[i] for i in want])
            for i, v in zip(want, embedded):
                vecs[i] = v
    out = []
    for p, v, lx in zip(prepared, vecs, lexical):
        verdict = model.score(p, v, lx)
        out.append((verdict.score, verdict.flagged))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", required=True, choices=["injection", "toxicity"])
    ap.add_argument("--input", required=True, type=Path)
    ap.add_argument("--output", required=True, type=Path)
    ap.add_argument("--vectors", default="all", choices=["all", "gated", "none"])
    a = ap.parse_args(argv)
    rows = []
    for n, line in enumerate(a.input.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            rows.append((str(row["id"]), str(row["text"])))
        except (ValueError, KeyError, TypeError) as exc:
            print(f"{a.input}:{n}: not a {{\"id\", \"text\"}} line ({exc})", file=sys.stderr)
            return 2
    started = time.perf_counter()
    results = predict(a.task, [t for _, t in rows], a.vectors)
    elapsed = time.perf_counter() - started
    with a.output.open("w", encoding="utf-8") as fh:
        for (rid, _), (score, flagged) in zip(rows, results):
            fh.write(json.dumps({"id": rid, "score": score, "flagged": flagged}) + "\n")
    n_flagged = sum(f for _, f in results)
    print(f"{a.task}: {len(rows)} texts, {n_flagged} flagged, {len(rows) / max(elapsed, 1e-9):.0f} texts/s "
          f"(vectors={a.vectors})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
