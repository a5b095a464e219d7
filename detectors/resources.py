"""Package data of the detectors: word lists and tables kept as data files, not Python literals."""

from __future__ import annotations

import gzip
from functools import cache
from importlib import resources


@cache
def read_words(package: str, name: str) -> tuple[str, ...]:
    """The entries of the data file ``name`` in ``package`` (e.g. ``"detectors.pii"``, ``"data/first_names.txt.gz"``), in file order.

    One entry per line; blank lines and lines starting with ``#`` are skipped; a ``.gz`` file is
    decompressed. Cached: each file is read once per process.
    """
    raw = resources.files(package).joinpath(name).read_bytes()
    if name.endswith(".gz"):
        raw = gzip.decompress(raw)
    lines = (line.strip() for line in raw.decode("utf-8").splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))
