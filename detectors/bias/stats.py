"""Small, exact-enough statistics for group fairness: Wilson intervals, homogeneity tests
of k proportions, and Holm's step-down adjustment.

The homogeneity test answers "could these groups share one rate?" for a k×2 table of
(successes, trials). It is chosen so that its false-alarm rate stays at or below the
nominal level at every sample size:

* k = 2: Fisher's exact test (two-sided; conservative by construction);
* k > 2 and every expected cell count ≥ 5: Pearson's chi-square test;
* k > 2 with small expected counts: a Monte Carlo conditional test — the table is
  resampled under the null with the margins fixed (multivariate hypergeometric) and
  ``p = (1 + #{X²_b ≥ X²}) / (B + 1)``, which is valid at any sample size. The random
  stream is seeded from the table itself, so the same counts always give the same p-value
  (re-processing a window after a crash yields the same finding).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np
from scipy import special, stats

__all__ = ["HomogeneityTest", "holm_adjust", "homogeneity_test", "wilson_interval", "z_for"]


@lru_cache(maxsize=64)
def z_for(alpha: float) -> float:
    """Two-sided standard-normal quantile for confidence ``1 - alpha``."""
    return NormalDist().inv_cdf(1.0 - alpha / 2.0)


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; ``(0, 1)`` when ``n == 0``."""
    if n <= 0:
        return (0.0, 1.0)
    z = z_for(alpha)
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (same order as the input).

    Rejecting every hypothesis whose adjusted p-value is below ``alpha`` controls the
    family-wise error rate at ``alpha`` under any dependence between the tests.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class HomogeneityTest:
    """Outcome of a test that k groups share one success rate."""

    test: str
    p_value: float
    statistic: float | None = None


def _chi2_stat(successes: np.ndarray, trials: np.ndarray) -> np.ndarray:
    """Pearson X² for rows of k×2 tables given as successes (…, k) and fixed trials (k,)."""
    total_n = trials.sum()
    total_s = successes.sum(axis=-1, keepdims=True)
    exp_s = trials * total_s / total_n
    exp_f = trials - exp_s
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(exp_s > 0, (successes - exp_s) ** 2 / exp_s, 0.0)
        b = np.where(exp_f > 0, ((trials - successes) - exp_f) ** 2 / exp_f, 0.0)
    return (a + b).sum(axis=-1)


def _seed_for(successes: Sequence[int], trials: Sequence[int]) -> int:
    digest = hashlib.sha256(repr((list(successes), list(trials))).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def homogeneity_test(
    successes: Sequence[int], trials: Sequence[int], *, mc_draws: int = 1999
) -> HomogeneityTest:
    """Test H0: all groups have the same success probability.

    ``successes[i]`` of ``trials[i]`` in group i. Groups with zero trials are ignored.
    Returns p = 1 when fewer than two groups remain or the outcome never varies.
    """
    pairs = [(int(s), int(n)) for s, n in zip(successes, trials) if n > 0]
    if len(pairs) < 2:
        return HomogeneityTest("none", 1.0)
    s = np.array([p[0] for p in pairs], dtype=np.int64)
    n = np.array([p[1] for p in pairs], dtype=np.int64)
    total_s, total_n = int(s.sum()), int(n.sum())
    if total_s == 0 or total_s == total_n:
        return HomogeneityTest("none", 1.0, 0.0)
    if len(pairs) == 2:
        table = [[int(s[0]), int(n[0] - s[0])], [int(s[1]), int(n[1] - s[1])]]
        res = stats.fisher_exact(table, alternative="two-sided")
        return HomogeneityTest("fisher_exact", float(min(1.0, res.pvalue)), float(res.statistic))
    observed = float(_chi2_stat(s.astype(float), n.astype(float)))
    exp_min = min(float((n * total_s / total_n).min()), float((n * (total_n - total_s) / total_n).min()))
    if exp_min >= 5.0:
        p = float(special.chdtrc(len(pairs) - 1, observed))
        return HomogeneityTest("chi_square", p, observed)
    rng = np.random.default_rng(_seed_for(s.tolist(), n.tolist()))
    draws = rng.multivariate_hypergeometric(n, total_s, size=mc_draws)
    sims = _chi2_stat(draws.astype(float), n.astype(float))
    exceed = int(np.count_nonzero(sims >= observed * (1 - 1e-12)))
    return HomogeneityTest("chi_square_monte_carlo", (1 + exceed) / (mc_draws + 1), observed)
