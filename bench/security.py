"""Benchmark of the security detectors (issue 21).

    python -m bench.security [--dev DIR] [--events N] [--repeats R]

Prints, on one core (``OMP_NUM_THREADS=1``; the lead re-measures on an idle machine):

1. texts/s per core of each detector alone on realistic chat texts (``bench/data/pii_labelled.jsonl``,
   100-1,000 characters), lexical path (no embedding) — the cost of scanning a text the drift stage did not
   embed and the gate did not pass — with the stream's MiniLM embedding of the same texts as the baseline
   measured in the same run (a ratio that survives a loaded machine);
2. in-stream cost per event: the same inference events through the pipeline (PII off, drift with the stream's
   MiniLM preset at its default embedding fraction) with and without the security stage, median of
   ``repeats`` runs, difference in ms per event, and the share of scanned texts the embedding gate sent to
   MiniLM;
3. the dev figures (when ``shared/dev-data/security`` is found): ``bench.security_eval`` predictions scored by
   the data's own ``score.py`` (TPR, FPR, F1, AUROC, TPR at 1 % FPR), vectors for every text and lexical only;
4. last, each detector's own texts/s (median of ``repeats``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from detectors.features.embeddings import EmbedderConfig
from detectors.security import InjectionDetector, SecurityConfig, ToxicityDetector, prepare
from streams.pipeline import Pipeline, PipelineConfig, RawItem
from tests.events import inference, raw

CORPUS = Path(__file__).resolve().parent / "data" / "pii_labelled.jsonl"
DEV_CANDIDATES = (Path(__file__).resolve().parents[1] / ".." / "shared" / "dev-data" / "security",
                  Path("/work/shared/dev-data/security"))


def texts() -> list[str]:
    return [json.loads(line)["text"] for line in CORPUS.read_text().splitlines() if line.strip()]


def detector_rate(detector: InjectionDetector | ToxicityDetector, corpus: list[str], repeats: int) -> float:
    """texts/s of ``detector.score`` (normalisation included) on ``corpus``, median of ``repeats``."""
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for t in corpus:
            detector.score(t)
        rates.append(len(corpus) / (time.perf_counter() - started))
    return statistics.median(rates)


def stream_cost(corpus: list[str], n: int, repeats: int) -> dict[str, float]:
    """ms/event the security stage adds to the pipeline (PII off, drift embeddings on), timed inside the
    pipeline (its batch scan, gated embedding included, and its per-event findings and windows), median of
    ``repeats`` runs on fresh pipelines; plus the whole pipeline's ms/event with and without the stage."""
    payloads = [raw(inference(f"s-{i}", messages=[{"role": "user", "content": corpus[(2 * i) % len(corpus)]}],
                              response={"content": corpus[(2 * i + 1) % len(corpus)], "finish_reason": "stop"}))
                for i in range(n)]
    items = [RawItem(p, "warden.inference", 0, i) for i, p in enumerate(payloads)]
    emb = EmbedderConfig.fast_cpu(threads=1)
    out: dict[str, float] = {}
    inside: list[float] = []
    gated_share: list[float] = []
    for name, security in (("without", None), ("with", SecurityConfig())):
        times = []
        for _ in range(repeats):
            pipe = Pipeline(PipelineConfig(pii=None, embeddings=emb, security=security))
            pipe.warm_up()
            started = time.perf_counter()
            spent = 0.0
            for k in range(0, n, 200):
                pipe.process_batch(items[k:k + 200])
                spent += pipe.timings.detectors.get("security", 0.0)  # batch scan + per-event findings/windows
            times.append((time.perf_counter() - started) / n * 1000)
            if pipe.security is not None:
                inside.append(spent / n * 1000)
                gated_share.append(pipe.text_stats["security_embedded"] / (3 * n))  # three scanned texts per event
        out[name] = statistics.median(times)
    out["added_ms"] = statistics.median(inside)
    out["gated_share"] = statistics.median(gated_share)
    return out


def dev_figures(dev: Path) -> list[str]:
    lines = []
    for task in ("injection", "toxicity"):
        data = dev / f"{task}_dev.jsonl"
        if not data.exists():
            continue
        for vectors in ("all", "none"):
            with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as fh:
                pred = Path(fh.name)
            subprocess.run([sys.executable, "-m", "bench.security_eval", "--task", task, "--input", str(data),
                            "--output", str(pred), "--vectors", vectors], check=True, capture_output=True)
            res = subprocess.run([sys.executable, str(dev / "score.py"), str(data), str(pred)], check=True,
                                 capture_output=True, text=True).stdout.strip().splitlines()[-1]
            lines.append(f"  {task:9s} vectors={vectors:4s} {res}")
            pred.unlink()
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description="security detectors benchmark")
    ap.add_argument("--dev", type=Path, default=None, help="shared/dev-data/security (found automatically)")
    ap.add_argument("--events", type=int, default=600)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    corpus = texts()
    inj, tox = InjectionDetector(), ToxicityDetector()
    for t in corpus[:20]:  # warm caches (model load, regex compile)
        inj.score(t)
        tox.score(t)
    print(f"corpus: {len(corpus)} realistic chat texts, median {statistics.median(map(len, corpus)):.0f} chars; "
          f"threads=1")
    p = [prepare(t) for t in corpus]
    started = time.perf_counter()
    for x in p:
        inj.score(x)
        tox.score(x)
    both = len(corpus) / (time.perf_counter() - started)
    from detectors.features.embeddings import MiniLMEmbedder

    embedder = MiniLMEmbedder(EmbedderConfig.fast_cpu(threads=1))
    embedder.embed(corpus[:8])
    started = time.perf_counter()
    embedder.embed(corpus[:300])
    minilm = 300 / (time.perf_counter() - started)
    print(f"1. per core, lexical path: injection {detector_rate(inj, corpus, a.repeats):.0f} texts/s, "
          f"toxicity {detector_rate(tox, corpus, a.repeats):.0f} texts/s, both on a shared normalisation "
          f"{both:.0f} texts/s; baseline in the same run: the stream's MiniLM embedding (int8, 48 tokens) "
          f"{minilm:.0f} texts/s -> both detectors cost {minilm / both:.2f}x one embedding of the same text")
    cost = stream_cost(corpus, a.events, a.repeats)
    print(f"2. in-stream, {a.events} events (prompt + response, drift embeddings at fraction "
          f"{PipelineConfig().embedding_fraction}): the security stage adds {cost['added_ms']:.2f} ms/event per core "
          f"(timed inside the pipeline; {cost['gated_share']:.1%} of scanned texts embedded by the gate); whole "
          f"pipeline {cost['without']:.2f} ms/event without it, {cost['with']:.2f} with it")
    dev = a.dev or next((d for d in DEV_CANDIDATES if d.exists()), None)
    if dev is not None:
        print(f"3. dev figures ({dev}, scored by its score.py):")
        for line in dev_figures(dev):
            print(line)
    else:
        print("3. dev figures: shared/dev-data/security not found (pass --dev)")
    print(f"injection texts/s per core: {detector_rate(inj, corpus, a.repeats):.0f}; "
          f"toxicity texts/s per core: {detector_rate(tox, corpus, a.repeats):.0f}")


if __name__ == "__main__":
    main()
