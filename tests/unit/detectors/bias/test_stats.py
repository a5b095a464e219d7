"""Wilson intervals, Holm adjustment and the k-group homogeneity test."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from detectors.bias.stats import holm_adjust, homogeneity_test, wilson_interval


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (57, 200), (1, 1000)])
def test_wilson_matches_scipy(k, n):
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = wilson_interval(k, n, 0.05)
    assert lo == pytest.approx(ref.low, abs=1e-12)
    assert hi == pytest.approx(ref.high, abs=1e-12)


def test_wilson_empty_group_is_uninformative():
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_holm_known_values():
    # worked example: p = (0.01, 0.04, 0.03, 0.005), m = 4
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([]) == []
    assert holm_adjust([0.9, 0.8]) == pytest.approx([1.0, 1.0])
    assert holm_adjust([0.02, 0.3]) == pytest.approx([0.04, 0.3])


def test_two_groups_use_fisher_exact():
    t = homogeneity_test([12, 30], [50, 55])
    ref = stats.fisher_exact([[12, 38], [30, 25]])
    assert t.test == "fisher_exact"
    assert t.p_value == pytest.approx(ref.pvalue)


def test_many_groups_large_counts_use_chi_square():
    s, n = [40, 52, 61, 35], [100, 110, 120, 90]
    t = homogeneity_test(s, n)
    table = np.array([s, np.array(n) - np.array(s)]).T
    chi2, p, *_ = stats.chi2_contingency(table, correction=False)
    assert t.test == "chi_square"
    assert t.p_value == pytest.approx(p)
    assert t.statistic == pytest.approx(chi2)


def test_small_counts_use_deterministic_monte_carlo():
    s, n = [0, 1, 4], [20, 20, 20]
    a, b = homogeneity_test(s, n), homogeneity_test(s, n)
    assert a.test == "chi_square_monte_carlo"
    assert a.p_value == b.p_value  # same table, same p-value
    assert 0 < a.p_value < 1


def test_degenerate_tables_do_not_reject():
    assert homogeneity_test([0, 0, 0], [30, 40, 50]).p_value == 1.0
    assert homogeneity_test([30, 40], [30, 40]).p_value == 1.0
    assert homogeneity_test([3], [10]).p_value == 1.0
    assert homogeneity_test([3, 0], [10, 0]).p_value == 1.0


def test_monte_carlo_test_holds_its_level_under_the_null():
    rng = np.random.default_rng(11)
    rejections = 0
    trials = 300
    for _ in range(trials):
        n = [25, 25, 25]
        s = rng.binomial(n, 0.08)
        rejections += homogeneity_test(s.tolist(), n, mc_draws=499).p_value < 0.1
    # nominal 0.1; binomial(300, 0.1) exceeds 45 with probability < 0.5%
    assert rejections / trials <= 0.15


def test_detects_a_real_difference():
    assert homogeneity_test([20, 60, 60], [100, 100, 100]).p_value < 1e-6
