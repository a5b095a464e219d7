"""Speed of Warden's PII detector against plain Presidio on the same texts, plus its cost in the stream.

``python -m bench.pii [--n 400] [--quick]``

Texts: ``--n`` texts of the public dev files (``presidio_dev`` and ``wnut17_dev`` shuffled together) plus ``--n``
realistic chat texts of 100-1,000 characters, 20 % of them with PII (:func:`bench.pii_corpus.chat_texts`),
all distinct, so neither side's cache helps (cold). Both detectors see the same texts, chunk by chunk
interleaved (the machine is shared: load swings hit both alike):

- plain Presidio as ``shared/tools/presidio_plain.py`` builds it (:func:`bench.pii_dev.plain_presidio`), one
  ``analyze`` call per text;
- Warden, one ``analyze`` call per text (p50/p99 per text) and ``analyze_batch`` over 64-text chunks (as
  the stream worker calls it).

Then: where Warden's time goes (pattern scanners, featurizer, ONNX tagger, merge and redaction); PII
milliseconds per event in the stream pipeline (``streams.pipeline.Pipeline.process_batch`` on inference
events built from the same texts, PII stage on minus PII stage off, drift embeddings off); and the resident
memory of a fresh process holding each detector (and of a pipeline worker). The last line is the ratio.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.pii_corpus import chat_texts
from bench.pii_dev import find_dev_data, plain_presidio


def _percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def bench_texts(n: int, data: Path) -> list[str]:
    """``n`` dev texts + ``n`` chat texts, distinct, in a fixed order."""
    dev = [json.loads(line)["text"] for f in ("presidio_dev", "wnut17_dev")
           for line in (data / f"{f}.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(17).shuffle(dev)
    texts = list(dict.fromkeys(dev[:n] + chat_texts(n, seed=11, pii_fraction=0.2)))
    return texts


_RSS_CODE = {
    "warden": ("from detectors.pii.detector import PiiDetector; d = PiiDetector(); d.warm_up(); "
               "d.analyze_batch(TEXTS)"),
    "presidio": "from bench.pii_dev import plain_presidio; e = plain_presidio(); [e.analyze(t, language='en') for t in TEXTS]",
    "worker": ("from streams.pipeline import Pipeline, PipelineConfig; from bench.pii import events; "
               "p = Pipeline(PipelineConfig()); p.warm_up(); p.process_batch(events(TEXTS))"),
    "worker_no_pii": ("from streams.pipeline import Pipeline, PipelineConfig; from bench.pii import events; "
                      "p = Pipeline(PipelineConfig(pii=None)); p.warm_up(); p.process_batch(events(TEXTS))"),
}


def rss_of(kind: str, texts: list[str]) -> float:
    """Peak resident set (MiB, VmHWM: ru_maxrss would include the parent's before exec) of a fresh Python
    process that builds ``kind`` and runs it over ``texts``."""
    code = (f"import json, sys; TEXTS = json.loads(sys.stdin.read()); {_RSS_CODE[kind]}; "
            "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')) / 1024)")
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(texts), capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def events(texts: list[str]) -> list:
    """Inference events (prompt = one text, response = the next) as raw items for the pipeline."""
    from streams.pipeline import RawItem

    items = []
    for i in range(0, len(texts) - 1, 2):
        ev = {"schema_version": "1", "event_id": f"bench-{i:06d}", "type": "inference",
              "occurred_at": "2026-11-26T12:00:00Z", "tenant": "acme", "model": {"name": "bot", "version": "1"},
              "inference": {"messages": [{"role": "user", "content": texts[i]}],
                            "response": {"content": texts[i + 1], "finish_reason": "stop"},
                            "latency_ms": 500, "status": "ok"}}
        items.append(RawItem(json.dumps(ev).encode(), "warden.inference", 0, i))
    return items


def pipeline_ms_per_event(texts: list[str], batch: int = 32) -> tuple[float, float, int]:
    """(ms/event with the PII stage, ms/event without, events) through ``Pipeline.process_batch``."""
    from streams.pipeline import Pipeline, PipelineConfig

    items = events(texts)
    times = []
    for cfg in (PipelineConfig(), PipelineConfig(pii=None)):
        pipe = Pipeline(cfg)
        pipe.warm_up()
        pipe.process_batch(events(["warm up text for the pipeline", "and its reply"]))
        t0 = time.perf_counter()
        for i in range(0, len(items), batch):
            pipe.process_batch(items[i : i + batch])
        times.append((time.perf_counter() - t0) * 1000 / len(items))
    return times[0], times[1], len(items)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--n", type=int, default=400, help="dev texts, and as many chat texts")
    ap.add_argument("--data", type=Path, default=find_dev_data())
    ap.add_argument("--quick", action="store_true", help="n=100, no RSS subprocesses")
    args = ap.parse_args(argv)
    if args.quick:
        args.n = 100
    from detectors.pii.detector import PiiDetector, merge_spans  # noqa: F401 - merge timed below
    from detectors.pii.patterns import scan

    texts = bench_texts(args.n, args.data)
    print(f"texts: {len(texts)} distinct ({args.n} dev + {args.n} chat), mean {statistics.mean(map(len, texts)):.0f} chars, "
          f"max {max(map(len, texts))}")
    t = time.perf_counter()
    det = PiiDetector()
    det.warm_up()
    print(f"Warden load {time.perf_counter() - t:.1f}s")
    t = time.perf_counter()
    engine = plain_presidio()
    engine.analyze("warm up: John Smith lives in Paris", language="en")
    print(f"plain Presidio load {time.perf_counter() - t:.1f}s")
    batched = PiiDetector()  # separate cold cache for the batched run
    batched.warm_up()

    w_lat: list[float] = []
    p_lat: list[float] = []
    b_time = 0.0
    chunk = 64
    for i in range(0, len(texts), chunk):
        part = texts[i : i + chunk]
        for x in part:
            s = time.perf_counter()
            engine.analyze(x, language="en")
            p_lat.append((time.perf_counter() - s) * 1000)
        for x in part:
            s = time.perf_counter()
            det.analyze(x)
            w_lat.append((time.perf_counter() - s) * 1000)
        s = time.perf_counter()
        batched.analyze_batch(part)
        b_time += time.perf_counter() - s
    n = len(texts)
    w_tps, p_tps, b_tps = n / (sum(w_lat) / 1000), n / (sum(p_lat) / 1000), n / b_time
    assert det.stats["cache_hits"] == 0 and batched.stats["cache_hits"] == 0  # cold: every text analysed
    print(f"plain Presidio per text: {p_tps:8.1f} texts/s  p50 {statistics.median(p_lat):7.2f} ms  p99 {_percentile(p_lat, 0.99):7.2f} ms")
    print(f"Warden per text:         {w_tps:8.1f} texts/s  p50 {statistics.median(w_lat):7.2f} ms  p99 {_percentile(w_lat, 0.99):7.2f} ms")
    print(f"Warden batched (64):     {b_tps:8.1f} texts/s")
    print(f"pre-filter: none — texts analysed by the tagger {det.stats['analyzed']} of {n} (0 skipped)")

    # where Warden's time goes (batched path, fresh detector, same texts)
    prof = PiiDetector(det.config.model_copy(update={"cache_size": 0}))
    tagger = prof._get_tagger()
    t0 = time.perf_counter()
    for x in texts:
        scan(x)
    t_scan = time.perf_counter() - t0
    t0 = time.perf_counter()
    encs = [tagger.featurizer.encode(x) for x in texts]
    t_feat = time.perf_counter() - t0
    t0 = time.perf_counter()
    probs = []
    for i in range(0, len(encs), chunk):
        probs += tagger.probabilities(encs[i : i + chunk])
    t_onnx = time.perf_counter() - t0
    t0 = time.perf_counter()
    for k in range(0, len(texts), chunk):
        prof.analyze_batch(texts[k : k + chunk])
    t_all = time.perf_counter() - t0
    rest = max(0.0, t_all - t_scan - t_feat - t_onnx)
    print("Warden time per text (batched): " + ", ".join(
        f"{k} {v * 1e6 / n:.0f} us ({v / t_all:.0%})" for k, v in
        (("pattern scanners", t_scan), ("featurizer", t_feat), ("ONNX tagger", t_onnx), ("decode+merge+redact", rest))))

    with_pii, without, n_ev = pipeline_ms_per_event(texts)
    print(f"stream pipeline ({n_ev} inference events, 2 texts each, batches of 32, embeddings off): "
          f"{with_pii:.2f} ms/event with PII, {without:.2f} without -> PII {with_pii - without:.2f} ms/event")
    if not args.quick:
        sample = texts[:200]
        rss = {k: rss_of(k, sample) for k in _RSS_CODE}
        print(f"RSS of a fresh process (MiB, peak): Warden detector {rss['warden']:.0f}, plain Presidio {rss['presidio']:.0f}, "
              f"stream worker pipeline {rss['worker']:.0f} (without the PII stage {rss['worker_no_pii']:.0f})")
    print(f"ratio Warden/plain Presidio texts/s: per text {w_tps / p_tps:.1f}x, batched {b_tps / p_tps:.1f}x")


if __name__ == "__main__":
    main()
