"""Embedding MMD permutation test: calibrated under the null, powerful under a shift."""

import numpy as np

from detectors.drift.mmd import mmd_test


def _unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_mmd_null_is_calibrated_at_small_sizes():
    rng = np.random.default_rng(0)
    ps = []
    for i in range(120):
        x = _unit(rng.normal(size=(60, 16)))
        y = _unit(rng.normal(size=(40, 16)))
        ps.append(mmd_test("e", x, y, n_perm=100, seed=i).p_value)
    ps = np.array(ps)
    assert np.mean(ps < 0.1) <= 0.17
    assert 0.3 < np.mean(ps) < 0.7  # roughly uniform


def test_mmd_detects_topic_like_shift_and_reports_effect():
    rng = np.random.default_rng(1)
    centre = np.zeros(32)
    centre[0] = 3.0
    x = _unit(rng.normal(size=(300, 32)))
    y = _unit(rng.normal(size=(200, 32)) + centre)
    r = mmd_test("e", x, y, n_perm=200)
    assert r.p_value < 1e-6
    assert r.extra["p_permutation"] == 1 / 201
    assert r.effect > 0.1
    assert r.extra["z"] > 10


def test_cached_reference_gram_gives_same_answer():
    rng = np.random.default_rng(2)
    x = _unit(rng.normal(size=(50, 8))).astype(np.float32)
    y = _unit(rng.normal(size=(30, 8))).astype(np.float32)
    a = mmd_test("e", x, y, n_perm=50, seed=3)
    b = mmd_test("e", x, y, n_perm=50, seed=3, xx=x @ x.T)
    assert abs(a.statistic - b.statistic) < 1e-6 and a.p_value == b.p_value


def test_tail_extrapolation_is_not_anti_conservative_on_clustered_embeddings():
    # Templated prompts embed as tight clusters: the null is a few heavy chi-square terms, where a
    # moment-matched gamma tail gives far too small p-values. The max-weight tail must not.
    rng = np.random.default_rng(5)
    centres = _unit(rng.normal(size=(4, 32)))
    pool = _unit(centres[rng.integers(0, 4, 2000)] + 0.25 * rng.normal(size=(2000, 32)) / np.sqrt(32))
    ps = []
    for i in range(150):
        idx = rng.permutation(len(pool))
        ps.append(mmd_test("e", pool[idx[:150]], pool[idx[150:250]], n_perm=100, seed=i).p_value)
    ps = np.array(ps)
    assert np.mean(ps < 0.02) <= 0.045
    assert np.sum(ps < 1e-3) <= 1  # expected 0.15 of 150
