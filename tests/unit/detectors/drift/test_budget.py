"""The per-model embedding budget: a token bucket per key."""

import pytest

from detectors.drift.budget import EmbeddingBudget


def test_a_burst_then_the_rate():
    budget = EmbeddingBudget(rate=2.0, burst=5)
    key = ("acme", "chat")
    assert sum(budget.allow(key, 0.0) for _ in range(20)) == 5
    assert sum(budget.allow(key, 10.0 + i / 100) for i in range(1000)) == pytest.approx(5 + 20, abs=1)


def test_keys_have_their_own_buckets_and_a_quiet_key_embeds_everything():
    budget = EmbeddingBudget(rate=0.5, burst=3)
    busy, quiet = ("acme", "busy"), ("acme", "quiet")
    assert sum(budget.allow(busy, t / 100) for t in range(1000)) <= 3 + 5 + 1
    assert all(budget.allow(quiet, t * 2.0) for t in range(50))  # one event per 2 s: at the rate


def test_rate_must_be_positive():
    with pytest.raises(ValueError):
        EmbeddingBudget(rate=0)
