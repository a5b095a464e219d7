"""Checkpoints of per-model detector state, so a restarted or rebalanced worker resumes where it was.

The stream worker keeps each model's detector state in memory: drift monitors (pinned reference, current
window), operational-metric buckets with their anomaly detectors, open fairness windows, training-run
monitors, waiting skew samples and evaluation baselines (``Pipeline.model_state``). Every
``interval_s`` of processing time per model, it writes a compressed snapshot to a changelogged table
(faust), in the changelog partition of the model's events; the worker that owns that partition next —
after a crash, a restart or a rebalance — loads the snapshot the first time it sees the model. What
happened since the last checkpoint (at most ``interval_s`` of events) is missing from the restored
windows; the findings of those events were already published.

Pure bookkeeping here: no Kafka, no faust.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any

#: the largest compressed snapshot written (the changelog topic is created to accept it)
MAX_STATE_BYTES = 16 * 1024 * 1024


def encode_state(state: dict[str, Any]) -> bytes:
    """Compressed JSON of a model's state (drift snapshots hold base64 float16 embeddings)."""
    return zlib.compress(json.dumps(state, separators=(",", ":")).encode(), 6)


def decode_state(raw: bytes) -> dict[str, Any]:
    """The state :func:`encode_state` wrote (raises ``ValueError`` on anything else)."""
    try:
        state = json.loads(zlib.decompress(raw))
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a detector-state checkpoint: {exc}") from exc
    if not isinstance(state, dict):
        raise ValueError("not a detector-state checkpoint: not an object")
    return state


def state_key(tenant: str, model: str) -> bytes:
    """The table key of a model's checkpoint."""
    return f"{tenant}/{model}".encode()


@dataclass
class Checkpointer:
    """Which models are due for a checkpoint, and in which partition their events (and state) live."""

    interval_s: float = 15.0
    _models: dict[tuple[str, str], list[Any]] = field(default_factory=dict)  # → [partition, last write, dirty]

    def seen(self, tenant: str, model: str, partition: int | None, now: float) -> None:
        """A batch had events of ``tenant``/``model`` from ``partition``."""
        entry = self._models.get((tenant, model))
        if entry is None:
            # the first checkpoint comes one interval after the model is first seen here
            self._models[(tenant, model)] = [partition, now, True]
        else:
            entry[0], entry[2] = partition, True

    def due(self, now: float) -> list[tuple[str, str, int | None]]:
        """Models with events since their last checkpoint whose interval has passed."""
        return [(t, m, e[0]) for (t, m), e in self._models.items() if e[2] and now - e[1] >= self.interval_s]

    def written(self, tenant: str, model: str, now: float) -> None:
        """A checkpoint of the model was written (or skipped) at ``now``."""
        entry = self._models.get((tenant, model))
        if entry is not None:
            entry[1], entry[2] = now, False

    def oldest_unsaved(self, now: float) -> float:
        """Seconds since the last checkpoint of the model whose new events have waited longest (0: none wait)."""
        return max((now - e[1] for e in self._models.values() if e[2]), default=0.0)

    def keep_only(self, partitions: set[int]) -> list[tuple[str, str]]:
        """After a rebalance: forget the models whose partition is not among ``partitions``; returns them."""
        gone = [k for k, e in self._models.items() if e[0] not in partitions]
        for k in gone:
            del self._models[k]
        return gone

    def __len__(self) -> int:
        return len(self._models)
