"""Two-sample tests and effect sizes for tabular drift (pure numpy/scipy).

Decisions use tests whose null distribution is known at the actual sample sizes:

* numeric features: two-sample Kolmogorov–Smirnov (exact for small samples, asymptotic
  otherwise; conservative when values tie, so discrete counts never inflate false alarms);
* categorical features: two-sample chi-square on the 2×k contingency table, with rare
  categories pooled so every expected count is ≥ 5 (Yates-corrected when 2×2) — a test of
  *homogeneity*, not a goodness-of-fit against reference proportions taken as exact (the
  latter is what makes some monitors flag unshifted columns).

PSI, normalised Wasserstein and Jensen–Shannon distances are computed as effect sizes for
people; they carry no p-value and never decide alone. :func:`holm` controls the family-wise
error across all features of a window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

_EPS = 1e-4


@dataclass(frozen=True)
class TestResult:
    """One feature's two-sample comparison."""

    feature: str
    test: str  # "ks" | "chi2" | "mmd" | "paired"
    statistic: float
    p_value: float
    effect: float  # in [0, 1]-ish: KS D, total-variation distance, or MMD
    n_ref: int
    n_cur: int
    extra: dict[str, float]

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-friendly dict."""
        return {
            "test": self.test,
            "statistic": _r(self.statistic),
            "p_value": float(f"{self.p_value:.4g}"),
            "effect": _r(self.effect),
            "n_ref": self.n_ref,
            "n_cur": self.n_cur,
            **{k: _r(v) for k, v in self.extra.items()},
        }


def _r(x: float) -> float:
    return float(round(float(x), 6))


def ks_test(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """Two-sample, two-sided KS statistic D and p-value (NaN-free inputs).

    The p-value is first taken from Kolmogorov's limiting distribution at the effective size
    ``n·m/(n+m)`` (a fast ufunc; conservative at finite sizes); where that is below 0.01 — the only
    region where a decision can happen — and the samples are not huge, scipy's exact two-sample
    distribution replaces it.
    """
    n, m = len(ref), len(cur)
    if n == 0 or m == 0:
        return 0.0, 1.0
    d = _ks_d(np.sort(ref), np.sort(cur))
    p = float(special.kolmogorov(math.sqrt(n * m / (n + m)) * d))
    if p < 0.01 and max(n, m) <= 10_000:
        p = float(stats.ks_2samp(ref, cur, alternative="two-sided", method="exact").pvalue)
    return d, p


def _ks_d(a: np.ndarray, b: np.ndarray) -> float:
    """KS D of two sorted samples."""
    allv = np.concatenate([a, b])
    fa = np.searchsorted(a, allv, side="right") / len(a)
    fb = np.searchsorted(b, allv, side="right") / len(b)
    return float(np.max(np.abs(fa - fb))) if len(allv) else 0.0


def _quantile_edges(ref: np.ndarray, bins: int) -> np.ndarray:
    """Inner bin edges at reference quantiles (ties collapse to fewer bins)."""
    qs = np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(qs)


def binned_proportions(ref: np.ndarray, cur: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Proportions of ``ref`` and ``cur`` in bins cut at reference quantiles."""
    edges = _quantile_edges(ref, bins)
    k = len(edges) + 1
    pr = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=k) / max(len(ref), 1)
    pc = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=k) / max(len(cur), 1)
    return pr, pc


def psi(p_ref: np.ndarray, p_cur: np.ndarray) -> float:
    """Population stability index of two proportion vectors (bins with ε smoothing)."""
    a = np.clip(p_ref, _EPS, None)
    b = np.clip(p_cur, _EPS, None)
    return float(np.sum((b - a) * np.log(b / a)))


def js_distance(p_ref: np.ndarray, p_cur: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2, in [0, 1]) of two proportion vectors."""
    m = 0.5 * (p_ref + p_cur)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(p_ref > 0, p_ref * np.log2(p_ref / m), 0.0)
        b = np.where(p_cur > 0, p_cur * np.log2(p_cur / m), 0.0)
    return float(np.sqrt(max(0.5 * (a.sum() + b.sum()), 0.0)))


def wasserstein_normed(ref: np.ndarray, cur: np.ndarray) -> float:
    """Wasserstein-1 distance divided by the reference standard deviation (0 if both are one constant)."""
    a, b = np.sort(ref), np.sort(cur)
    allv = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(a, allv[:-1], side="right") / len(a)
    fb = np.searchsorted(b, allv[:-1], side="right") / len(b)
    w = float(np.sum(np.abs(fa - fb) * np.diff(allv)))
    sd = float(np.std(ref))
    if sd <= 0:
        return 0.0 if w == 0 else float("inf")
    return w / sd


def numeric_test(feature: str, ref: np.ndarray, cur: np.ndarray, bins: int = 10) -> TestResult:
    """KS decision plus PSI / Wasserstein / JS effect sizes for one numeric feature (NaNs dropped)."""
    ref = ref[~np.isnan(ref)]
    cur = cur[~np.isnan(cur)]
    d, p = ks_test(ref, cur)
    pr, pc = binned_proportions(ref, cur, bins)
    w = wasserstein_normed(ref, cur)
    return TestResult(
        feature=feature,
        test="ks",
        statistic=d,
        p_value=p,
        effect=d,
        n_ref=len(ref),
        n_cur=len(cur),
        extra={
            "psi": psi(pr, pc),
            "wasserstein_normed": w if np.isfinite(w) else 1e6,
            "js_distance": js_distance(pr, pc),
            "ref_median": float(np.median(ref)),
            "cur_median": float(np.median(cur)),
        },
    )


def chi2_two_sample(ref_counts: dict[str, int], cur_counts: dict[str, int], min_expected: float = 5.0
                    ) -> tuple[float, float, int, np.ndarray, np.ndarray]:
    """Chi-square test of homogeneity on two category-count dicts.

    Categories whose expected count falls below ``min_expected`` in either row are pooled into
    one "other" cell (pooling keeps the test valid at small samples). Returns statistic, p-value,
    degrees of freedom and the (pooled) proportion vectors of reference and current.
    """
    cats = sorted(set(ref_counts) | set(cur_counts))
    r = np.array([ref_counts.get(c, 0) for c in cats], dtype=float)
    c = np.array([cur_counts.get(k, 0) for k in cats], dtype=float)
    nr, nc = r.sum(), c.sum()
    if nr == 0 or nc == 0:
        return 0.0, 1.0, 0, np.zeros(1), np.zeros(1)
    tot = r + c
    exp_min = np.minimum(tot * nr, tot * nc) / (nr + nc)
    small = exp_min < min_expected
    if small.any():
        r = np.append(r[~small], r[small].sum())
        c = np.append(c[~small], c[small].sum())
        tot = r + c
        exp_min = np.minimum(tot * nr, tot * nc) / (nr + nc)
        if exp_min[-1] < min_expected and len(r) > 2:
            # fold the still-small pooled cell into the smallest regular one
            j = int(np.argmin(tot[:-1]))
            r[j] += r[-1]
            c[j] += c[-1]
            r, c = r[:-1], c[:-1]
    keep = (r + c) > 0
    r, c = r[keep], c[keep]
    if len(r) < 2:
        return 0.0, 1.0, 0, r / nr, c / nc
    chi2, p, dof = _chi2_homogeneity(np.vstack([r, c]))
    return chi2, p, dof, r / nr, c / nc


def _chi2_homogeneity(obs: np.ndarray) -> tuple[float, float, int]:
    """Pearson chi-square of a 2×k table, Yates-corrected when 2×2 (as scipy's ``chi2_contingency``)."""
    expected = np.outer(obs.sum(1), obs.sum(0)) / obs.sum()
    dof = obs.shape[1] - 1
    diff = obs - expected
    if dof == 1:
        diff = np.sign(diff) * np.minimum(0.5, np.abs(diff))
        diff = (obs - expected) - diff
    chi2 = float(np.sum(diff * diff / expected))
    return chi2, float(special.chdtrc(dof, chi2)), dof


def categorical_test(feature: str, ref_counts: dict[str, int], cur_counts: dict[str, int]) -> TestResult:
    """Chi-square homogeneity decision plus total-variation / PSI / JS effect sizes."""
    chi2, p, dof, pr, pc = chi2_two_sample(ref_counts, cur_counts)
    cats = sorted(set(ref_counts) | set(cur_counts))
    nr = max(sum(ref_counts.values()), 1)
    nc = max(sum(cur_counts.values()), 1)
    fr = np.array([ref_counts.get(k, 0) / nr for k in cats])
    fc = np.array([cur_counts.get(k, 0) / nc for k in cats])
    tv = 0.5 * float(np.abs(fr - fc).sum())
    return TestResult(
        feature=feature,
        test="chi2",
        statistic=chi2,
        p_value=p,
        effect=tv,
        n_ref=int(sum(ref_counts.values())),
        n_cur=int(sum(cur_counts.values())),
        extra={"dof": float(dof), "psi": psi(pr, pc), "js_distance": js_distance(fr, fc)},
    )


def paired_test(feature: str, differences: np.ndarray, n_keys: int) -> TestResult:
    """Wilcoxon signed-rank test that paired log-ratios (current vs reference, same prompt) centre on 0.

    Under no drift a response and a reference response to the same prompt are exchangeable, so their log-ratio
    is symmetric about 0 whatever the prompt; pairing removes the between-prompt spread that dominates a
    two-sample comparison of lengths. Exact ties (identical lengths) carry no sign and are dropped. The effect
    is the relative change of the median ratio, ``exp(median) - 1`` (0.17: responses 17 % longer).
    """
    d = differences[np.isfinite(differences)]
    nz = d[d != 0.0]
    if len(nz) < 2:
        stat, p = 0.0, 1.0
    else:
        res = stats.wilcoxon(nz, zero_method="wilcox", alternative="two-sided")
        stat, p = float(res.statistic), float(res.pvalue)
    med = float(np.median(d)) if len(d) else 0.0
    return TestResult(
        feature=feature,
        test="paired",
        statistic=stat,
        p_value=p,
        effect=abs(math.expm1(med)),
        n_ref=n_keys,
        n_cur=len(d),
        extra={"median_ratio": math.exp(med), "pairs": float(len(d)), "ties": float(len(d) - len(nz))},
    )


def holm(p_values: Sequence[float], alpha: float) -> list[bool]:
    """Holm's step-down procedure: which hypotheses are rejected at family-wise level ``alpha``.

    Valid under any dependence between the tests.
    """
    m = len(p_values)
    order = np.argsort(np.asarray(p_values, dtype=float), kind="stable")
    reject = [False] * m
    for rank, idx in enumerate(order):
        if p_values[idx] <= alpha / (m - rank):
            reject[idx] = True
        else:
            break
    return reject
