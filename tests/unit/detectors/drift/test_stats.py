"""Tabular two-sample tests: calibration at the actual sample sizes, power, Holm."""

import numpy as np

from detectors.drift.stats import (
    binned_proportions,
    categorical_test,
    chi2_two_sample,
    holm,
    js_distance,
    numeric_test,
    psi,
    wasserstein_normed,
)


def _counts(values):
    out = {}
    for v in values:
        out[str(v)] = out.get(str(v), 0) + 1
    return out


def test_ks_false_alarm_rate_holds_on_continuous_and_discrete_data():
    rng = np.random.default_rng(0)
    for draw in (lambda n: rng.lognormal(5, 0.6, n), lambda n: rng.poisson(2, n).astype(float)):
        p = np.array([numeric_test("x", draw(500), draw(200)).p_value for _ in range(300)])
        assert np.mean(p < 0.05) <= 0.08  # at most nominal (+ Monte-Carlo slack); ties make KS conservative
        assert np.mean(p < 0.01) <= 0.03


def test_ks_detects_a_length_shift_with_effect_sizes():
    rng = np.random.default_rng(1)
    r = numeric_test("len", rng.lognormal(6, 0.4, 500), rng.lognormal(6.4, 0.4, 200))
    assert r.p_value < 1e-10 and r.effect > 0.3
    assert r.extra["psi"] > 0.2 and r.extra["wasserstein_normed"] > 0.3 and r.extra["js_distance"] > 0.1
    assert r.extra["cur_median"] > r.extra["ref_median"]


def test_chi2_homogeneity_is_calibrated_with_rare_categories():
    rng = np.random.default_rng(2)
    cats = ["stop", "length", "tool_calls", "content_filter", "error"]
    probs = [0.86, 0.08, 0.04, 0.015, 0.005]
    p = np.array([
        categorical_test("fr", _counts(rng.choice(cats, 500, p=probs)), _counts(rng.choice(cats, 200, p=probs))).p_value
        for _ in range(300)
    ])
    assert np.mean(p < 0.05) <= 0.08
    assert np.mean(p < 0.01) <= 0.03


def test_chi2_detects_a_category_shift():
    rng = np.random.default_rng(3)
    ref = _counts(rng.choice(["stop", "length"], 500, p=[0.95, 0.05]))
    cur = _counts(rng.choice(["stop", "length"], 200, p=[0.7, 0.3]))
    r = categorical_test("fr", ref, cur)
    assert r.p_value < 1e-8 and 0.2 < r.effect < 0.3


def test_chi2_degenerate_inputs():
    assert chi2_two_sample({"a": 10}, {"a": 5})[1] == 1.0
    assert chi2_two_sample({}, {"a": 5})[1] == 1.0


def test_distances_are_zero_for_identical_and_grow_with_shift():
    x = np.arange(1000, dtype=float)
    pr, pc = binned_proportions(x, x)
    assert psi(pr, pc) < 1e-9 and js_distance(pr, pc) < 1e-6 and wasserstein_normed(x, x) == 0
    pr2, pc2 = binned_proportions(x, x + 300)
    assert psi(pr2, pc2) > 0.5 and js_distance(pr2, pc2) > 0.3 and wasserstein_normed(x, x + 300) > 1.0


def test_holm_step_down():
    assert holm([0.001, 0.02, 0.04], 0.05) == [True, True, True]  # 0.001<=.0167, .02<=.025, .04<=.05
    assert holm([0.001, 0.03, 0.04], 0.05) == [True, False, False]
    assert holm([0.5, 0.0001], 0.01) == [False, True]
    assert holm([], 0.05) == []
