"""A per-model budget of embedded events: the drift stage's MiniLM cost bounded by the number of models, not
by the event rate.

Drift needs a few hundred embeddings per model per window, not one per event: the MMD test compares a
reference sample of at most ``embedding_reference_size`` vectors with the last ``window_size`` embedded ones
(:class:`~detectors.drift.monitor.DriftMonitor` keeps them apart from the tabular window). So the stream embeds
an event only when its model still has budget: a token bucket per (tenant, model) refilled at ``rate`` events
per second up to ``burst``. A quiet model keeps embedding every sampled event; a model at 1,000 events/s embeds
``rate`` of them per second, and its embedding windows simply span more time.

Pure: the caller passes the clock.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass
class EmbeddingBudget:
    """Token buckets of embedded events per key (``rate`` per second, at most ``burst`` saved up)."""

    rate: float
    burst: float = 50.0
    max_keys: int = 100_000
    _buckets: OrderedDict[tuple[str, str], tuple[float, float]] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")

    def allow(self, key: tuple[str, str], now: float) -> bool:
        """Take one token of ``key``'s bucket at time ``now`` (seconds); False when none is left."""
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - last) * self.rate)
        ok = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if ok else tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return ok
