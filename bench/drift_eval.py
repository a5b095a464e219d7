"""Evaluate the drift detector on two prompt/response files.

    python -m bench.drift_eval --reference ref.jsonl --current cur.jsonl [--no-embeddings]

Lines are JSON objects with ``prompt`` and ``response`` (optional: ``completion_tokens``/``output_tokens``,
``prompt_tokens``/``input_tokens``, ``usage``, ``latency_ms``, ``cost_usd``, ``finish_reason``). The
reference file is pinned as the reference (as an uploaded reference set would be); the current file is
streamed through :class:`~detectors.drift.monitor.DriftMonitor` as live events, in file order. Prints one JSON line:
``{"drift": bool, "first_alarm_at": index|null, "features": {...}, ...}`` where ``first_alarm_at`` is the
0-based index of the current event at which the first alarm fired and ``features`` holds the per-feature
tests of that window (of the last window when there was no alarm).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from detectors.drift.monitor import DriftConfig, DriftMonitor, WindowResult
from detectors.features.tabular import features_from_record


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Records of a JSON-lines file (blank lines skipped; a non-object line is an error)."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if line.strip():
                rec = json.loads(line)
                if not isinstance(rec, dict):
                    raise ValueError(f"{path}:{i + 1}: not a JSON object")
                out.append(rec)
    return out


def embed_records(records: Sequence[dict[str, Any]], embedder: Any) -> list[dict[str, np.ndarray]]:
    """Per-record ``{"prompt": vec, "response": vec}`` from a :class:`MiniLMEmbedder`-like object."""
    if not records:
        return []
    prompts = embedder.embed([str(r.get("prompt") or "") for r in records])
    responses = embedder.embed([str(r.get("response") or "") for r in records])
    return [{"prompt": p, "response": q} for p, q in zip(prompts, responses)]


@dataclass
class ReplayOutcome:
    """What one replay of a current stream against a pinned reference produced."""

    first_alarm_at: int | None
    alarm_result: WindowResult | None
    last_result: WindowResult | None
    windows: int
    alarms: int


def replay(
    config: DriftConfig,
    ref_feats: Sequence[dict[str, Any]],
    ref_embs: Sequence[dict[str, np.ndarray]] | None,
    cur_feats: Sequence[dict[str, Any]],
    cur_embs: Sequence[dict[str, np.ndarray]] | None,
    *,
    stop_at_first: bool = False,
) -> ReplayOutcome:
    """Pin ``ref`` and stream ``cur`` through a fresh monitor (one event per second), then flush."""
    mon = DriftMonitor(config)
    mon.pin_reference(ref_feats, ref_embs, source="uploaded", ts=0)
    first, alarm_res, alarms = None, None, 0
    for i, f in enumerate(cur_feats):
        found = mon.update(f, cur_embs[i] if cur_embs is not None else None, ts=1 + i)
        if any(x.kind == "distribution_drift" for x in found):
            alarms += 1
            if first is None:
                first, alarm_res = i, mon.last_result
                if stop_at_first:
                    break
    if (first is None or not stop_at_first) and any(x.kind == "distribution_drift" for x in mon.flush()):
        alarms += 1
        if first is None:
            first, alarm_res = len(cur_feats) - 1, mon.last_result
    return ReplayOutcome(first, alarm_res, mon.last_result, mon.windows_evaluated, alarms)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.drift_eval", description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", required=True)
    ap.add_argument("--current", required=True)
    ap.add_argument("--no-embeddings", action="store_true", help="tabular features only (no MiniLM)")
    ap.add_argument("--window-size", type=int, default=DriftConfig.window_size)
    ap.add_argument("--step", type=int, default=DriftConfig.step)
    ap.add_argument("--alpha", type=float, default=DriftConfig.alpha)
    ap.add_argument("--horizon", type=int, default=DriftConfig.horizon_windows)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--fp32", action="store_true",
                    help="torch fp32 MiniLM (default: the stream's int8 preset, ONNX Runtime when installed)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)

    ref = read_jsonl(args.reference)
    cur = read_jsonl(args.current)
    ref_feats = [features_from_record(r) for r in ref]
    cur_feats = [features_from_record(r) for r in cur]
    ref_embs = cur_embs = None
    if not args.no_embeddings:
        from detectors.features.embeddings import EmbedderConfig, MiniLMEmbedder

        config = (EmbedderConfig(device="cpu", max_tokens=args.max_tokens, threads=args.threads) if args.fp32
                  else replace(EmbedderConfig.fast_cpu(args.threads), max_tokens=args.max_tokens))
        emb = MiniLMEmbedder(config)
        ref_embs, cur_embs = embed_records(ref, emb), embed_records(cur, emb)
    cfg = DriftConfig(window_size=args.window_size, step=args.step, alpha=args.alpha,
                      horizon_windows=args.horizon, max_reference=max(DriftConfig.max_reference, min(len(ref), 5000)))
    out = replay(cfg, ref_feats, ref_embs, cur_feats, cur_embs)
    shown = out.alarm_result or out.last_result
    print(json.dumps({
        "drift": out.first_alarm_at is not None,
        "first_alarm_at": out.first_alarm_at,
        "features": shown.features_dict() if shown else {},
        "drifted": shown.drifted if shown else [],
        "severity": shown.severity.name if shown else None,
        "windows": out.windows,
        "alarmed_windows": out.alarms,
        "n_reference": len(ref),
        "n_current": len(cur),
        "window_alpha": cfg.window_alpha,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
