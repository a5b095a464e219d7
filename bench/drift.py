"""Drift benchmark: calibration, detection delay, cost per window against Evidently, embedding speed.

    python -m bench.drift [--replays 100] [--quick]

Uses the synthetic corpora of ``bench/data/drift_*.jsonl`` (regenerate with
``python bench/data/drift_make.py``). Prints:

1. feature-stage events/s and MiniLM texts/s on ONE thread: torch fp32, torch dynamic int8 and ONNX Runtime
   int8 (the stream's preset) at 64 tokens, with each variant's cosine to torch fp32 and MMD p-values
   (median of interleaved rounds over the same texts);
2. false alarms over shuffled same-distribution replays (reference and current drawn from one pool);
3. detection rate and events-to-first-alarm for verbosity, terseness, model change, topic shift
   (and topic shift with embeddings only); then a model against its own reruns and its verbose variants on
   the same prompts (``drift_paired_*``): alarms over shuffled reruns, how often a length change of x1.05 to
   x1.60 is flagged within 300 events (on the same prompts, and on new prompts where nothing pairs), and the
   smallest change flagged within 300 events in 95 % of replays;
4. per-window cost of Warden's decision (tabular only, and tabular + two MMD embedding tests) next to
   Evidently's DataDriftPreset on the same windows, with both decisions side by side.

The last line is the headline: Evidently's median seconds per window over Warden's (tabular + MMD).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.drift_eval import embed_records, read_jsonl, replay
from detectors.drift.monitor import DriftConfig, DriftMonitor
from detectors.features.tabular import CATEGORICAL_FEATURES, NUMERIC_FEATURES, features_from_record

DATA = Path(__file__).resolve().parent / "data"
SHIFTS = ("verbose", "terse", "mild", "model_b", "topic")
CHANGE_AT = 150


def _median_time(fn: Callable[[], Any], repeats: int = 3, clock: Callable[[], float] = time.perf_counter) -> float:
    times = []
    for _ in range(repeats):
        t = clock()
        fn()
        times.append(clock() - t)
    return statistics.median(times)


def bench_embeddings(texts: list[str], quick: bool) -> dict[str, float]:
    """MiniLM texts per CPU-second on ONE thread: torch fp32 / torch int8 / ONNX Runtime int8 (and more).

    Every variant embeds the same ``texts`` in the same process, in interleaved rounds (round-robin, so a
    noisy neighbour slows all of them alike); the figure is the median over rounds of texts per CPU-second.
    Also prints the tokenizer's share, the cosine of int8 embeddings against torch fp32 on the texts and
    on the corpora's prompts (min / median), and MMD p-values of the drift corpora on ONNX int8 and torch
    fp32 embeddings (the topic shift must still be caught). The last line printed is the headline: the
    stream preset's texts/s per core and its ratio to torch dynamic int8 at 64 tokens (the earlier preset).
    """
    import torch

    from detectors.drift.mmd import mmd_test
    from detectors.features.embeddings import EmbedderConfig, MiniLMEmbedder
    from detectors.features.embeddings_onnx import onnx_available

    torch.set_num_threads(1)
    base = dict(device="cpu", threads=1, max_tokens=64)
    variants: list[tuple[str, dict[str, Any]]] = [
        ("torch fp32", dict(batch_size=32)),
        ("torch int8", dict(batch_size=32, quantize_int8=True)),  # the stream's preset before ONNX
        ("torch int8 b8", dict(batch_size=8, quantize_int8=True)),
    ]
    if onnx_available():
        variants += [("onnx int8", dict(batch_size=8, quantize_int8=True, backend="onnx")),
                     ("onnx int8 b32", dict(batch_size=32, quantize_int8=True, backend="onnx"))]
        if not quick:
            variants += [("onnx fp32", dict(batch_size=8, backend="onnx")),
                         ("onnx int8 pt", dict(batch_size=8, quantize_int8=True, backend="onnx",
                                               onnx_per_channel=False))]
    else:
        print("  embeddings: onnxruntime/onnx not importable, ONNX variants skipped", flush=True)
    variants.append(("stream preset", asdict(EmbedderConfig.fast_cpu(threads=1))))  # what the worker runs
    embedders = {}
    for name, kw in variants:
        t = time.perf_counter()
        embedders[name] = MiniLMEmbedder(EmbedderConfig(**{**base, **kw}))
        if embedders[name].exported:
            what = "exported + quantised" if kw.get("quantize_int8") else "exported"
            print(f"  embeddings {name}: {what} to {getattr(embedders[name].onnx, 'path', '?')} in "
                  f"{time.perf_counter() - t:.1f}s (first use only; later runs load the cached file)", flush=True)
    prompts = [r["prompt"] for r in read_jsonl(DATA / "drift_ref.jsonl")[:300]]
    quality_texts = texts + prompts
    vecs = {name: emb.embed(quality_texts) for name, emb in embedders.items()}  # also the warm-up
    cpu: dict[str, list[float]] = {name: [] for name in embedders}
    wall: dict[str, list[float]] = {name: [] for name in embedders}
    tok = embedders["torch int8"]
    cpu_tok = []
    for _ in range(3 if quick else 5):
        for name, emb in embedders.items():
            w, c = time.perf_counter(), time.process_time()
            emb.embed(texts)
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)
        c = time.process_time()
        tok.tokenize(texts)
        cpu_tok.append(time.process_time() - c)
    out = {name: len(texts) / statistics.median(cpu[name]) for name in embedders}
    n_tokens = sum(len(x) for x in tok.tokenize(texts)) / len(texts)
    print(f"  embeddings: {len(texts)} texts, {n_tokens:.1f} tokens each on average at 64 max; 1 thread; "
          f"median of {len(cpu_tok)} interleaved rounds", flush=True)
    ref = vecs["torch fp32"]
    for name, _ in variants:
        cos = np.sum(vecs[name] * ref, axis=1)
        cfg = embedders[name].config
        print(f"  embeddings {name:>15}: {out[name]:7.1f} texts per CPU-second "
              f"({len(texts) / statistics.median(wall[name]):6.1f}/s wall) | {cfg.max_tokens} tok, batch "
              f"{cfg.batch_size} | cosine vs torch fp32 on {len(ref)} texts: min {cos.min():.4f} "
              f"median {np.median(cos):.4f}", flush=True)
    tok_speed = len(texts) / statistics.median(cpu_tok)
    best = "onnx int8" if "onnx int8" in out else "torch int8 b8"
    print(f"  tokenizer (fast, batch call): {tok_speed:,.0f} texts per CPU-second = "
          f"{100 * out[best] / tok_speed:.1f}% of the {best} stage", flush=True)

    # drift still caught on these embeddings: MMD of reference vs same / shifted corpora (prompt and response)
    ref_recs = read_jsonl(DATA / "drift_ref.jsonl")[:300]
    checks = ("same", "topic") if quick else ("same", "topic", "model_b", "verbose")
    for name in [n for n in ("torch fp32", "onnx int8", "stream preset") if n in embedders]:
        emb = embedders[name]
        ref_e = {f: emb.embed([r[f] for r in ref_recs]) for f in ("prompt", "response")}
        cells = []
        for shift in checks:
            cur = read_jsonl(DATA / f"drift_{shift}.jsonl")[:200]
            ps = [mmd_test(f, ref_e[f], emb.embed([r[f] for r in cur]), n_perm=200, seed=0).p_value
                  for f in ("prompt", "response")]
            cells.append(f"{shift} {ps[0]:.1e}/{ps[1]:.1e}")
        print(f"  MMD p (prompt/response), 300 ref vs 200 current, {name} embeddings: " + ", ".join(cells),
              flush=True)
    if "onnx int8" in out:
        print(f"  at 64 tokens: onnx int8 {out['onnx int8']:.1f} texts/s per core (batch 8) = "
              f"{out['onnx int8'] / out['torch int8']:.2f}x torch dynamic int8 ({out['torch int8']:.1f}, batch 32), "
              f"{out['onnx int8'] / out['torch fp32']:.2f}x torch fp32", flush=True)
    pc = embedders["stream preset"].config
    print(f"  embeddings headline: stream preset ({pc.backend}, {'int8' if pc.quantize_int8 else 'fp32'}, "
          f"{pc.max_tokens} tokens, batch {pc.batch_size}, {pc.threads} thread) {out['stream preset']:.1f} texts/s "
          f"per core = {out['stream preset'] / out['torch int8']:.2f}x the torch int8 preset at 64 tokens",
          flush=True)
    return out


CACHE_DIR = Path(os.environ.get("WARDEN_BENCH_CACHE", "/tmp/warden-bench-cache"))


def cached_embeddings(corpora: dict[str, list[dict[str, Any]]], config: Any) -> dict[str, list[dict[str, np.ndarray]]]:
    """Prompt/response embeddings of every corpus, cached on disk per corpus content hash (float16)."""
    from detectors.features.embeddings import MiniLMEmbedder

    embedder = None
    out = {}
    for name, recs in corpora.items():
        key = hashlib.sha256(json.dumps([recs, repr(config)], sort_keys=True).encode()).hexdigest()[:16]
        path = CACHE_DIR / f"drift-emb-{key}.npz"
        if path.exists():
            z = np.load(path)
            out[name] = [{"prompt": p.astype(np.float32), "response": q.astype(np.float32)}
                         for p, q in zip(z["p"], z["r"])]
            continue
        embedder = embedder or MiniLMEmbedder(config)
        out[name] = embed_records(recs, embedder)
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        np.savez(path, p=np.stack([e["prompt"] for e in out[name]]).astype(np.float16),
                 r=np.stack([e["response"] for e in out[name]]).astype(np.float16))
    return out


def evidently_window(ref_rows: list[dict[str, Any]], cur_rows: list[dict[str, Any]]) -> tuple[bool, float, float]:
    """Evidently DataDriftPreset on the same tabular features: (dataset drift?, drifted share, seconds).

    Evidently's dataset-level decision: drifted-column share ≥ 0.5 (its default ``drift_share``).
    """
    import warnings

    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    warnings.filterwarnings("ignore", category=RuntimeWarning)  # evidently divides by zero on constant columns
    t = time.perf_counter()
    ref, cur = pd.DataFrame(ref_rows), pd.DataFrame(cur_rows)
    num = [c for c in NUMERIC_FEATURES if ref[c].notna().any() and cur[c].notna().any()]
    cat = list(CATEGORICAL_FEATURES)
    dd = DataDefinition(numerical_columns=num, categorical_columns=cat)
    snap = Report([DataDriftPreset()]).run(Dataset.from_pandas(cur[num + cat], data_definition=dd),
                                           Dataset.from_pandas(ref[num + cat], data_definition=dd))
    data = snap.dict()
    sec = time.perf_counter() - t
    share = 0.0
    for m in data.get("metrics", []):
        if "DriftedColumnsCount" in str(m.get("metric_id", m.get("metric_name", ""))):
            share = float(m["value"]["share"])
    return share >= 0.5, share, sec


FACTORS = (1.05, 1.08, 1.10, 1.12, 1.15, 1.17, 1.20, 1.25, 1.30, 1.40, 1.50, 1.60)


def same_prompt_sensitivity(cfg: DriftConfig, replays: int, null_replays: int, within: int = 300
                            ) -> dict[str, Any]:
    """A model against its own reruns and its verbose variants on the same prompts (``drift_paired_*``).

    Tabular features only (a length change; the embedding tests would only add to the multiple-testing
    family). Returns the same-model alarms over ``null_replays`` shuffled reruns, per factor how many of
    ``replays`` shuffled streams alarm within ``within`` events (on the same prompts, and on new prompts where
    nothing can be paired), and the smallest factor flagged within ``within`` events in 95 % of replays.
    """
    from bench.data import drift_make as dm

    prompts = dm.paired_prompts(dm.PAIRED_PROMPTS, seed=4)
    ref = [features_from_record(r) for r in dm.paired_run(prompts, 1)]
    other = dm.paired_prompts(dm.PAIRED_PROMPTS, seed=5)  # new prompts: nothing to pair
    tab = replace(cfg, max_reference=max(cfg.max_reference, len(ref)))

    def first_alarm(cur: list[dict[str, Any]], seed: int) -> int | None:
        order = list(range(len(cur)))
        random.Random(seed).shuffle(order)
        out = replay(replace(tab, seed=seed), ref, None, [cur[i] for i in order], None, stop_at_first=True)
        return None if out.first_alarm_at is None else out.first_alarm_at + 1

    null_alarms = sum(first_alarm([features_from_record(r) for r in dm.paired_run(prompts, 100 + s)], s) is not None
                      for s in range(null_replays))
    table: dict[str, dict[str, int]] = {}
    for f in FACTORS:
        same = [features_from_record(r) for r in dm.paired_run(prompts, 2, factor=f)]
        new = [features_from_record(r) for r in dm.paired_run(other, 2, factor=f)]
        row = {}
        for name, cur in (("same_prompts", same), ("new_prompts", new)):
            firsts = [first_alarm(cur, 1000 + s) for s in range(replays)]
            row[name] = sum(1 for x in firsts if x is not None and x <= within)
        table[f"{f:.2f}"] = row
    need = math.ceil(0.95 * replays)
    smallest = {name: next((f for f in FACTORS if table[f"{f:.2f}"][name] >= need), None)
                for name in ("same_prompts", "new_prompts")}
    return {"null_alarms": null_alarms, "null_replays": null_replays, "replays": replays, "within": within,
            "flagged": table, "smallest_factor_95": smallest}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.drift")
    ap.add_argument("--replays", type=int, default=100, help="shuffled same-distribution replays")
    ap.add_argument("--shift-replays", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="fewer repeats, smaller samples")
    ap.add_argument("--no-evidently", action="store_true")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one core means one core: no tokenizer thread pool

    corpora = {k: read_jsonl(DATA / f"drift_{k}.jsonl") for k in ("ref", "same", *SHIFTS)}
    pool = corpora["ref"] + corpora["same"]
    print(f"corpora: pool {len(pool)} same-distribution records; shifts "
          + ", ".join(f"{k} {len(corpora[k])}" for k in SHIFTS), flush=True)

    # 1. feature and embedding stages
    every = [r for recs in corpora.values() for r in recs]
    sec = _median_time(lambda: [features_from_record(r) for r in every])
    print(f"feature stage: {len(every) / sec:,.0f} events/s (pure Python, 1 thread)", flush=True)
    sample = [r["response"] for r in every[:: max(1, len(every) // (128 if args.quick else 256))]]
    speeds = bench_embeddings(sample, args.quick)

    import torch

    from detectors.features.embeddings import EmbedderConfig

    torch.set_num_threads(max(1, (os.cpu_count() or 1)))
    t = time.perf_counter()
    embs = cached_embeddings(corpora, replace(EmbedderConfig.fast_cpu(), max_tokens=128))  # as bench.drift_eval
    n_texts = 2 * sum(len(v) for v in corpora.values())
    print(f"embeddings of {n_texts} texts (int8, 128 tok, {torch.get_num_threads()} threads, cached in "
          f"{CACHE_DIR}) ready in {time.perf_counter() - t:.1f}s", flush=True)
    feats = {k: [features_from_record(r) for r in v] for k, v in corpora.items()}
    pool_f, pool_e = feats["ref"] + feats["same"], embs["ref"] + embs["same"]

    cfg = DriftConfig()
    n_ref = len(corpora["ref"])

    def split(seed: int) -> tuple[list[int], list[int]]:
        idx = list(range(len(pool)))
        random.Random(seed).shuffle(idx)
        return idx[:n_ref], idx[n_ref:]

    # 2. calibration: shuffled same-distribution replays
    t = time.perf_counter()
    null_alarms = null_windows = 0
    for s in range(args.replays):
        r_idx, c_idx = split(s)
        out = replay(replace(cfg, seed=s), [pool_f[i] for i in r_idx], [pool_e[i] for i in r_idx],
                     [pool_f[i] for i in c_idx], [pool_e[i] for i in c_idx])
        null_alarms += out.first_alarm_at is not None
        null_windows += out.windows
    print(f"same-distribution: {null_alarms} of {args.replays} shuffled replays alarmed "
          f"({null_windows} windows, window alpha {cfg.window_alpha:g}, {time.perf_counter() - t:.1f}s)", flush=True)

    # 2b. the MMD tail on real MiniLM embeddings of same-distribution data
    from scipy import stats as st

    from detectors.drift.mmd import mmd_test

    trials = 200 if args.quick else 1000
    for field in ("prompt", "response"):
        X = np.stack([e[field] for e in pool_e])
        rng = np.random.default_rng(7)
        ours, moment = [], []
        for i in range(trials):
            idx = rng.permutation(len(X))
            r = mmd_test(field, X[idx[:300]], X[idx[300:500]], n_perm=cfg.n_permutations, seed=i % 5)
            mu, sd = r.extra["null_mean"], r.extra["null_sd"]
            beyond = r.extra["p_permutation"] <= 1 / (cfg.n_permutations + 1)
            g = st.gamma.sf(r.statistic, mu * mu / sd**2, scale=sd**2 / mu) if beyond else 1.0
            ours.append(r.p_value)
            moment.append(min(g, r.extra["p_permutation"]))
        o, m = np.array(ours), np.array(moment)
        print(f"MMD null tail, {field} embeddings, {trials} same-distribution windows (300 vs 200): "
              f"p<1e-3 in {np.mean(o < 1e-3):.2%} with the max-weight tail (min p {o.min():.1e}) vs "
              f"{np.mean(m < 1e-3):.2%} with a moment-matched gamma (min p {m.min():.1e}); nominal 0.10%", flush=True)

    # 3. detection: (a) the whole current stream changed; (b) a change point after CHANGE_AT normal events
    detection: dict[str, dict[str, Any]] = {}
    for shift in (*SHIFTS, "topic(embeddings only)"):
        base = shift.split("(")[0]
        c = cfg if base == shift else replace(cfg, numeric_features=(), categorical_features=())
        hits, delays, cp_hits, cp_delays, cp_early = 0, [], 0, [], 0
        for s in range(args.shift_replays):
            r_idx, c_idx = split(1000 + s)
            order = list(range(len(feats[base])))
            random.Random(s).shuffle(order)
            ref_f, ref_e = [pool_f[i] for i in r_idx], [pool_e[i] for i in r_idx]
            out = replay(replace(c, seed=s), ref_f, ref_e, [feats[base][i] for i in order],
                         [embs[base][i] for i in order], stop_at_first=True)
            if out.first_alarm_at is not None:
                hits += 1
                delays.append(out.first_alarm_at + 1)
            head = c_idx[:CHANGE_AT]
            cp_f = [pool_f[i] for i in head] + [feats[base][i] for i in order]
            cp_e = [pool_e[i] for i in head] + [embs[base][i] for i in order]
            out = replay(replace(c, seed=s), ref_f, ref_e, cp_f, cp_e, stop_at_first=True)
            if out.first_alarm_at is not None:
                if out.first_alarm_at < CHANGE_AT:
                    cp_early += 1
                else:
                    cp_hits += 1
                    cp_delays.append(out.first_alarm_at + 1 - CHANGE_AT)
        detection[shift] = {
            "flagged": hits, "of": args.shift_replays,
            "median_events": statistics.median(delays) if delays else None, "max_events": max(delays, default=None),
            "changepoint_flagged": cp_hits, "changepoint_median_events_after_change":
                statistics.median(cp_delays) if cp_delays else None,
            "changepoint_max_events_after_change": max(cp_delays, default=None), "alarms_before_change": cp_early,
        }
        print(f"shift {shift:>24}: flagged {hits}/{args.shift_replays}, events to first alarm median "
              f"{detection[shift]['median_events']}, max {detection[shift]['max_events']} | change after "
              f"{CHANGE_AT} normal events: flagged {cp_hits}/{args.shift_replays}, events after change median "
              f"{detection[shift]['changepoint_median_events_after_change']}, max "
              f"{detection[shift]['changepoint_max_events_after_change']}, alarms before change {cp_early}",
              flush=True)

    # 3b. the verbose variant of a model on the same prompts: calibration and the smallest change flagged
    sens = same_prompt_sensitivity(cfg, args.shift_replays, args.replays)
    print(f"same prompts, the same model run again: {sens['null_alarms']} of {sens['null_replays']} shuffled reruns "
          f"alarmed (tabular features)", flush=True)
    for f, row in sens["flagged"].items():
        print(f"  answers x{f}: flagged within {sens['within']} events in {row['same_prompts']}/{sens['replays']} "
              f"replays on the same prompts, {row['new_prompts']}/{sens['replays']} on new prompts", flush=True)
    print(f"smallest relative length change flagged within {sens['within']} events in 95 % of replays: "
          f"same prompts x{sens['smallest_factor_95']['same_prompts']}, new prompts "
          f"x{sens['smallest_factor_95']['new_prompts']}", flush=True)

    # 4. cost per window and decisions side by side
    windows: list[tuple[str, list[int] | None, str]] = []
    for s in range(3 if args.quick else 5):
        windows.append(("same", None, f"null{s}"))
    for shift in SHIFTS:
        windows.append((shift, None, shift))
    r_idx, c_idx = split(4242)
    ref_f, ref_e = [pool_f[i] for i in r_idx], [pool_e[i] for i in r_idx]
    rows = []
    ours_tab, ours_all, evid = [], [], []
    for w, (kind, _, label) in enumerate(windows):
        if kind == "same":
            sel = c_idx[(w * 80) % 200: (w * 80) % 200 + cfg.window_size]
            cur_f, cur_e = [pool_f[i] for i in sel], [pool_e[i] for i in sel]
        else:
            cur_f, cur_e = feats[kind][: cfg.window_size], embs[kind][: cfg.window_size]
        res: dict[str, Any] = {}
        for mode, c in (("tab", replace(cfg, step=10**9)), ("all", replace(cfg, step=10**9))):
            mon = DriftMonitor(c)
            mon.pin_reference(ref_f, ref_e if mode == "all" else None, ts=0)
            for i, f in enumerate(cur_f):
                mon.update(f, cur_e[i] if mode == "all" else None, ts=1 + i)
            t = time.perf_counter()
            mon.flush()
            res[mode] = (time.perf_counter() - t, mon.last_result)
        ours_tab.append(res["tab"][0])
        ours_all.append(res["all"][0])
        ev = evidently_window(ref_f, cur_f) if not args.no_evidently else (None, float("nan"), float("nan"))
        evid.append(ev[2])
        r = res["all"][1]
        rows.append((label, r.drift, ",".join(r.drifted[:3]) + ("…" if len(r.drifted) > 3 else ""),
                     res["tab"][1].drift, ev[0], ev[1], res["tab"][0], res["all"][0], ev[2]))
    print("window        truth  warden(tab+emb) warden(tab) evidently(share)  ms: tab  tab+emb  evidently")
    for label, d_all, which, d_tab, d_ev, share, t_tab, t_all, t_ev in rows:
        truth = "drift" if not label.startswith("null") else "same"
        print(f"{label:<12} {truth:<6} {str(d_all):<15} {str(d_tab):<11} {str(d_ev)}({share:.2f})"
              f"{'':<6} {1e3 * t_tab:7.1f} {1e3 * t_all:8.1f} {1e3 * t_ev:10.1f}   {which}")
    any_col = sum(1 for r in rows if (r[5] > 0) == (not r[0].startswith("null")))
    if not args.no_evidently:
        print(f"evidently 'any column drifted' (share > 0) would be correct on {any_col}/{len(rows)} windows")
    agree = sum(1 for r in rows if r[1] == r[4])
    correct_w = sum(1 for r in rows if r[1] == (not r[0].startswith("null")))
    correct_e = sum(1 for r in rows if r[4] == (not r[0].startswith("null")))
    med_tab, med_all, med_ev = (statistics.median(x) for x in (ours_tab, ours_all, evid))
    print(f"decisions: warden correct {correct_w}/{len(rows)}, evidently correct {correct_e}/{len(rows)}, "
          f"agree {agree}/{len(rows)}")
    print(f"median per window: warden tabular {1e3 * med_tab:.1f} ms, warden tabular+2xMMD {1e3 * med_all:.1f} ms, "
          f"evidently {1e3 * med_ev:.1f} ms")
    summary = {
        "null_replays": args.replays, "null_replays_alarmed": null_alarms,
        "detection": detection, "same_prompt_sensitivity": sens,
        "embed_texts_per_s_1thread": {k: round(v, 1) for k, v in speeds.items()},
        "ms_per_window": {"warden_tabular": round(1e3 * med_tab, 2), "warden_tabular_mmd": round(1e3 * med_all, 2),
                          "evidently": round(1e3 * med_ev, 2)},
    }
    print("summary " + json.dumps(summary))
    print(f"evidently/warden cost per window: {med_ev / med_tab:.1f}x (tabular), "
          f"{med_ev / med_all:.1f}x (tabular + 2 MMD embedding tests)")


if __name__ == "__main__":
    main()
