"""Tests of the leave-one-category-out NAB scorer (bench.nab_loco) and the synthetic families."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from bench import nab_synthetic
from bench.nab_loco import PROFILES, Scorer, Series, load


def _series(cat: str, n: int, windows: list[tuple[int, int]], name: str = "f") -> Series:
    stamps = [f"2015-01-{1 + i // 288:02d} {(i % 288) * 5 // 60:02d}:{(i % 288) * 5 % 60:02d}:00" for i in range(n)]
    return Series(f"{cat}/{name}.csv", cat, stamps, np.zeros(n), windows)


def _reference_raw(series: list[Series], scores: list[np.ndarray], cost: dict[str, float]) -> float:
    """NAB's optimiser written out point by point as NAB's own scorer does it (the oracle)."""
    def ss(x: float) -> float:
        return -1.0 if x > 3.0 else 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0

    points = []
    for s, sc in zip(series, scores, strict=True):
        n = len(sc)
        prob = min(math.floor(0.15 * n), 0.15 * 5000)
        wins = list(s.windows)
        cur = prev = None
        for i, v in enumerate(sc):
            if wins and i == wins[0][0]:
                cur = wins.pop(0)
            if cur is not None:
                width = cur[1] - cur[0] + 1
                w, wid = ss(-(cur[1] - i + 1) / width) * cost["tpWeight"] / ss(-1.0), (s.rel, cur[0])
            else:
                w = (-1.0 if prev is None else ss(abs(prev[0] - i) / (prev[1] - 1))) * cost["fpWeight"]
                wid = None
            if i >= prob:
                points.append((v, w, wid))
            if cur is not None and i == cur[1]:
                prev, cur = (cur[1], cur[1] - cur[0] + 1), None
    parts: dict[object, float] = {"fp": 0.0}
    for _, _, wid in points:
        if wid is not None:
            parts[wid] = -cost["fnWeight"]
    best, cur_t = -math.inf, 1.1
    for v, w, wid in sorted(points, key=lambda p: -p[0]):
        if v != cur_t:
            best, cur_t = max(best, sum(parts.values())), v
        if wid is None:
            parts["fp"] += w
        else:
            parts[wid] = max(parts[wid], w)
    return max(best, sum(parts.values()))


def test_hand_computed_cases() -> None:
    s = _series("c", 1000, [(500, 599)])
    scorer = Scorer([s])
    first = np.zeros(1000)
    first[500] = 1.0  # detected on the window's first row: weight exactly tpWeight
    assert scorer.pooled([first], ["c"])[0] == pytest.approx(100.0)
    assert scorer.pooled([np.zeros(1000)], ["c"])[0] == pytest.approx(0.0)  # nothing detected: the null score
    assert scorer.pooled([np.full(1000, 0.5)], ["c"])[0] == pytest.approx(0.0)  # NAB's null detector
    fp = first.copy()
    fp[300] = 1.0  # one false positive before any window costs fpWeight (0.11): (1 - 0.11 + 1) / 2
    assert scorer.pooled([fp], ["c"])[0] == pytest.approx(100.0 * (1.89 / 2.0))
    early = np.zeros(1000)
    early[100] = 1.0  # inside the probation period (150 rows): not scored at all
    assert scorer.pooled([early], ["c"])[0] == pytest.approx(0.0)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_optimised_score_matches_nabs_pointwise_optimiser(profile: str) -> None:
    rng = np.random.default_rng(4)
    series = [_series("a", 1500, [(400, 499), (1100, 1199)], "a1"), _series("a", 900, [], "a2"),
              _series("b", 2000, [(1500, 1649)], "b1")]
    scores = [np.round(rng.random(len(s.values)) ** 8, 3) for s in series]
    scores[0][1130] = 0.999  # a late detection in a window
    scorer = Scorer(series, profile)
    cost = PROFILES[profile]
    for cats, ix in ((["a", "b"], [0, 1, 2]), (["a"], [0, 1])):
        ref = _reference_raw([series[i] for i in ix], [scores[i] for i in ix], cost)
        assert scorer.pooled(scores, cats)[0] == pytest.approx(scorer.normalised(ix, ref), abs=1e-9)


def test_leave_one_category_out_uses_the_other_categories_threshold() -> None:
    # category a is best served by a low threshold (its window's detection scores 0.3), category b by a high one
    # (its false positives score 0.4): a's LOCO threshold comes from b and misses a's window
    a = _series("a", 1000, [(500, 599)], "a")
    b = _series("b", 1000, [(500, 599)], "b")
    sa = np.zeros(1000)
    sa[520] = 0.3
    sb = np.zeros(1000)
    sb[[200, 250, 300, 350, 400, 700, 800, 900]] = 0.4
    sb[510] = 0.9
    table = Scorer([a, b]).loco([sa, sb])
    assert table["a"]["threshold_opt"] == pytest.approx(0.3) and table["a"]["opt"] > 80.0
    assert table["a"]["threshold_loco"] > 0.4 and table["a"]["loco"] == pytest.approx(0.0)
    assert table["b"]["threshold_loco"] <= 0.3 and table["b"]["fp_at_loco"] == 8
    assert table["b"]["gap"] > 0.0


def test_synthetic_families_are_seeded_and_labelled_like_nab(tmp_path: os.PathLike[str]) -> None:
    w1 = nab_synthetic.write(str(tmp_path / "a"), seed=7)
    w2 = nab_synthetic.write(str(tmp_path / "b"), seed=7)
    assert w1 == w2
    assert w1 != nab_synthetic.write(str(tmp_path / "c"), seed=8)
    series = load(str(tmp_path / "a"))
    cats = {s.category for s in series}
    assert cats == set(nab_synthetic.FAMILIES)
    for s in series:
        assert np.all(np.isfinite(s.values))
        assert np.all(np.diff(s.seconds) > 0)  # strictly increasing timestamps (irregular ones included)
        if s.category == "synthNoAnomaly":
            assert s.windows == []
        else:
            assert s.windows and all(a < b for a, b in s.windows)
            assert all(b1 < a2 for (_, b1), (a2, _) in zip(s.windows, s.windows[1:], strict=False))
