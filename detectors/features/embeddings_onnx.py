"""ONNX Runtime backend of the MiniLM embedder: export once, quantise, cache, run.

The bundled MiniLM (see :func:`detectors.features.embeddings.model_dir`) is exported with torch's TorchScript
exporter (``dynamo=False``: it needs neither ``onnxscript`` nor network access) together with the mean
pooling over the attention mask and the L2 normalisation, so the graph maps ``input_ids`` and
``attention_mask`` (``int64``, dynamic batch and sequence axes) straight to unit ``(batch, 384)``
embeddings. The fp32 graph is then quantised with ``onnxruntime.quantization.quantize_dynamic``
(int8 weights, per output channel by default; activations quantised per call) and written to a cache
directory keyed by the model files' digest and the export options. Later constructions, in this or any
other process, load the cached file and never re-export.

Writes are atomic (temporary directory in the cache root, then ``os.replace``) and serialised with an
advisory file lock, so two workers starting together export once and never read a half-written file.

Measured on the 2-core development machine (``python -m bench.drift``; ~550 texts, 64 tokens): per-channel
int8 keeps cosine ≥ 0.98 against torch fp32 (median 0.993), where per-tensor int8 drops to min 0.87–0.90
(per-tensor with ``reduce_range``: 0.67) and torch's own dynamic int8 to min 0.85. Graphs pre-fused with
``onnxruntime.transformers`` (Attention → QAttention, SkipLayerNorm, BiasGelu, FastGelu) ran no faster or
slower at these shapes than ORT's own ``ORT_ENABLE_ALL`` fusions of the plain export, so the plain export
is kept; of ORT's own fusions, SkipLayerNormalization is left off (faster without, see
:data:`DISABLED_OPTIMIZERS`). Batches of 8 ran faster than 16–64 (activations stay in L2). 8/4-bit
``MatMulNBits`` weights and int8 attention MatMuls were slower.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from detectors.onnx import onnx_providers

log = logging.getLogger(__name__)

#: bump when the exported graph changes shape or semantics (invalidates every cached file)
EXPORT_FORMAT = 1
OPSET = 17
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "embedding"
MODEL_FILES = ("config.json", "model.safetensors")
#: ORT graph rewrites left off: the fused SkipLayerNormalization CPU kernel ran ~15% slower end to end than
#: the Add + LayerNormalization it replaces (MiniLM int8, 1 thread, batches of 8 × ≤64 tokens; ORT 1.32)
DISABLED_OPTIMIZERS = ("SkipLayerNormFusion",)


def onnx_available() -> bool:
    """True when the ONNX backend can run here (``onnxruntime`` and ``onnx`` both importable)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/warden/onnx`` (``~/.cache/warden/onnx`` when the variable is unset)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "warden" / "onnx"


@dataclass(frozen=True)
class ExportOptions:
    """What determines the exported file (with the model files' digest: the cache key)."""

    quantize_int8: bool = True
    per_channel: bool = True
    reduce_range: bool = False
    opset: int = OPSET


@lru_cache(maxsize=8)
def _digest(path: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    h = hashlib.sha256()
    for name, _, _ in stamp:
        h.update(name.encode() + b"\0")
        with open(os.path.join(path, name), "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def model_digest(model_path: Path) -> str:
    """SHA-256 over the model's config and weights (memoised per file size and mtime in this process)."""
    stamp = tuple((n, (st := os.stat(model_path / n)).st_size, st.st_mtime_ns) for n in MODEL_FILES
                  if (model_path / n).exists())
    return _digest(str(model_path), stamp)


def cache_key(model_path: Path, options: ExportOptions) -> str:
    """Directory name for ``options`` applied to the model at ``model_path``."""
    from importlib.metadata import version

    # package versions from metadata: a cache hit must not pay for importing torch
    payload = json.dumps({"model": model_digest(model_path), "format": EXPORT_FORMAT, **asdict(options),
                          "torch": version("torch"), "onnxruntime": version("onnxruntime")}, sort_keys=True)
    kind = "int8" if options.quantize_int8 else "fp32"
    return f"minilm-{kind}-{hashlib.sha256(payload.encode()).hexdigest()[:20]}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Advisory exclusive lock on ``path`` (no-op where ``fcntl`` is missing: the rename stays atomic)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    with open(path, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def export_fp32(model_path: Path, dest: Path, opset: int = OPSET) -> None:
    """Export MiniLM + mean pooling + L2 normalisation to ``dest`` (fp32, dynamic batch/sequence axes)."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_path), local_files_only=True, attn_implementation="eager")
    model.eval()

    class _Pooled(torch.nn.Module):
        def __init__(self, encoder: torch.nn.Module) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    ids = torch.ones((2, 8), dtype=torch.long)
    mask = torch.ones((2, 8), dtype=torch.long)
    axes = {"batch": 0, "sequence": 1}
    dynamic = {name: {v: k for k, v in axes.items()} for name in INPUT_NAMES}
    dynamic[OUTPUT_NAME] = {0: "batch"}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # TorchScript exporter deprecation + tracer warnings on constant masks
        torch.onnx.export(_Pooled(model), (ids, mask), str(dest), input_names=list(INPUT_NAMES),
                          output_names=[OUTPUT_NAME], dynamic_axes=dynamic, opset_version=opset,
                          do_constant_folding=True, dynamo=False)


def quantize_int8(src: Path, dest: Path, *, per_channel: bool, reduce_range: bool) -> None:
    """Dynamic int8 quantisation of the MatMul weights of ``src`` into ``dest``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    class _DropHint(logging.Filter):  # the quantiser logs a "consider pre-processing" hint at every call
        def filter(self, record: logging.LogRecord) -> bool:
            return "pre-processing before quantization" not in record.getMessage()

    hint = _DropHint()
    logging.getLogger().addFilter(hint)
    try:
        quantize_dynamic(str(src), str(dest), weight_type=QuantType.QInt8, per_channel=per_channel,
                         reduce_range=reduce_range)
    finally:
        logging.getLogger().removeFilter(hint)


def ensure_model(model_path: Path, options: ExportOptions, cache_dir: Path | None = None) -> tuple[Path, bool]:
    """Path of the cached ONNX file for ``options`` (exporting it first if missing) and whether it was built now."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = cache_key(model_path, options)
    final = root / key / "model.onnx"
    if final.exists():
        return final, False
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        if cache_dir is not None:
            raise
        root = Path(tempfile.gettempdir()) / "warden-onnx"  # read-only home: cache for this machine's lifetime
        log.warning("cannot create %s; caching the ONNX model under %s instead", default_cache_dir(), root)
        root.mkdir(parents=True, exist_ok=True)
        final = root / key / "model.onnx"
        if final.exists():
            return final, False
    with _locked(root / ".export.lock"):
        if final.exists():  # another worker exported while we waited for the lock
            return final, False
        log.info("exporting MiniLM to ONNX (%s) under %s", "int8" if options.quantize_int8 else "fp32", final.parent)
        tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=root))
        try:
            fp32 = tmp / "fp32.onnx"
            export_fp32(model_path, fp32, options.opset)
            out = tmp / "model.onnx"
            if options.quantize_int8:
                quantize_int8(fp32, out, per_channel=options.per_channel, reduce_range=options.reduce_range)
                fp32.unlink()
            else:
                fp32.rename(out)
            (tmp / "options.json").write_text(json.dumps(asdict(options), sort_keys=True))
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / "options.json", final.parent / "options.json")
            os.replace(out, final)  # atomic: readers see no file or the whole file
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final, True


def load_tokenizer(model_path: Path, max_tokens: int):
    """The model's fast tokenizer (``tokenizers``, no transformers/torch import): [CLS]/[SEP], truncation, no padding.

    Gives the same ids as ``AutoTokenizer(...)(texts, truncation=True, max_length=max_tokens)``.
    """
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_path / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=max_tokens)
    return tok


class OnnxMiniLM:
    """An ONNX Runtime session over the cached MiniLM graph: ``(ids, mask) -> (batch, 384)`` unit vectors."""

    def __init__(self, model_path: Path, options: ExportOptions, *, threads: int | None = None,
                 cache_dir: Path | None = None, device: str | None = None) -> None:
        import onnxruntime as ort

        self.path, self.exported = ensure_model(model_path, options, cache_dir)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if threads:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        so.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.path), so, providers=onnx_providers(device),
                                            disabled_optimizers=list(DISABLED_OPTIMIZERS))

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Embeddings of one padded batch (``int64`` arrays of shape ``(batch, width)``)."""
        return self.session.run([OUTPUT_NAME], {INPUT_NAMES[0]: input_ids, INPUT_NAMES[1]: attention_mask})[0]
