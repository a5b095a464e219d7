"""Fairness metrics against fairlearn (the oracle) and the fairness_eval CLI."""

from __future__ import annotations

import csv
import json
import math
import warnings

import numpy as np
import pytest

fairlearn_metrics = pytest.importorskip("fairlearn.metrics")

from bench import fairness_eval  # noqa: E402
from detectors.bias.metrics import GroupCounts, count_groups, disparities, fairness_report  # noqa: E402


def _close(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9


def _oracle(y_true, y_pred, groups):
    fm = fairlearn_metrics
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "demographic_parity_difference": fm.demographic_parity_difference(y_true, y_pred, sensitive_features=groups),
            "demographic_parity_ratio": fm.demographic_parity_ratio(y_true, y_pred, sensitive_features=groups),
            "equal_opportunity_difference": fm.equal_opportunity_difference(y_true, y_pred, sensitive_features=groups),
            "equalized_odds_difference": fm.equalized_odds_difference(y_true, y_pred, sensitive_features=groups),
        }


@pytest.mark.parametrize("seed", range(14))
def test_disparities_equal_fairlearn_on_random_data(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 400))
    k = int(rng.integers(2, 7))
    groups = rng.integers(0, k, n).astype(str)
    p = rng.uniform(0.05, 0.95, k)
    y_pred = (rng.random(n) < p[groups.astype(int)]).astype(int)
    y_true = rng.integers(0, 2, n)
    if seed % 5 == 0:  # a group with only positive labels (its FPR is 0 by convention)
        y_true[groups == "0"] = 1
    if seed % 7 == 0:  # a group never selected
        y_pred[groups == "1"] = 0
    ours = disparities(count_groups(groups, y_pred, y_true), with_labels=True)
    for name, expected in _oracle(y_true, y_pred, groups).items():
        assert _close(ours[name], float(expected)), (name, ours[name], expected)


def test_ratio_undefined_when_nobody_selected():
    g = np.array(["a", "a", "b", "b"])
    y = np.zeros(4, dtype=int)
    ours = disparities(count_groups(g, y), with_labels=False)
    assert ours["demographic_parity_difference"] == 0.0
    assert math.isnan(ours["demographic_parity_ratio"])
    assert math.isnan(float(_oracle(y, y, g)["demographic_parity_ratio"]))


def test_group_counts_roundtrip_and_merge():
    c = GroupCounts()
    for o, lab in [(True, True), (False, True), (True, False), (False, None)]:
        c.add(o, lab)
    assert c.to_list() == [4, 2, 2, 1, 1, 1]
    assert GroupCounts.from_list(c.to_list()) == c
    c.merge(GroupCounts(1, 1, 0, 0, 0, 0))
    assert (c.n, c.favorable) == (5, 3)


def test_report_four_fifths_and_significance():
    counts = {"a": GroupCounts(n=400, favorable=240), "b": GroupCounts(n=400, favorable=160), "tiny": GroupCounts(n=5, favorable=0)}
    r = fairness_report(counts, min_group_size=30)
    assert r["disparate_impact_ratio"] == 0.0  # tiny has rate 0: metrics use every group
    assert r["four_fifths_rule"]["passes"] is False
    assert r["four_fifths_rule"]["lowest_group"] == "tiny"
    assert r["groups"]["tiny"]["tested"] is False
    assert r["significance"]["groups_tested"] == ["a", "b"]
    assert r["significance"]["selection_rate"]["significant"] is True
    lo, hi = r["groups"]["a"]["rate_ci"]
    assert lo < 0.6 < hi


def _write_csv(path, rows, header):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cli_matches_fairlearn(tmp_path, capsys, seed):
    rng = np.random.default_rng(seed)
    n = 300
    g = rng.choice(["north", "south", "east"], n)
    dec = rng.choice(["hire", "reject"], n, p=[0.4, 0.6])
    truth = rng.choice(["hire", "reject"], n)
    path = tmp_path / "d.csv"
    _write_csv(path, zip(g, dec, truth), ["region", "decision", "truth"])
    fairness_eval.main(["--csv", str(path), "--group", "region", "--outcome", "decision", "--label", "truth", "--favorable", "hire"])
    out = json.loads(capsys.readouterr().out)
    y_pred, y_true = (dec == "hire").astype(int), (truth == "hire").astype(int)
    for name, expected in _oracle(y_true, y_pred, g).items():
        assert abs(out[name] - float(expected)) <= 1e-9, name
    assert out["disparate_impact_ratio"] == out["demographic_parity_ratio"]
    assert set(out["groups"]) == {"north", "south", "east"}
    for grp in out["groups"]:
        sel = y_pred[g == grp]
        assert out["groups"][grp]["n"] == len(sel)
        assert abs(out["groups"][grp]["rate"] - sel.mean()) <= 1e-12


def test_cli_default_favorable_and_dropped_rows(tmp_path, capsys):
    path = tmp_path / "d.csv"
    rows = [("a", "1"), ("a", "0"), ("a", "true"), ("b", "0"), ("b", "no"), ("b", ""), ("", "1")]
    _write_csv(path, rows, ["g", "y"])
    fairness_eval.main(["--csv", str(path), "--group", "g", "--outcome", "y"])
    out = json.loads(capsys.readouterr().out)
    assert out["rows_dropped"] == 2
    assert out["groups"]["a"]["rate"] == pytest.approx(2 / 3)
    assert out["groups"]["b"]["rate"] == 0.0
    assert out["demographic_parity_difference"] == pytest.approx(2 / 3)
    assert out["disparate_impact_ratio"] == 0.0
    assert "equalized_odds_difference" not in out
