import math

import numpy as np
import pytest
from sklearn.metrics import f1_score

from contracts.jobs import GateRule
from jobs.evaluate import gate, macro_f1


def test_macro_f1_matches_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 300)
    p = np.where(rng.random(300) < 0.7, y, rng.integers(0, 5, 300))
    assert macro_f1(y, p, range(5)) == pytest.approx(f1_score(y, p, average="macro"))


def test_gate_requires_every_rule():
    rules = [GateRule(metric="accuracy", direction="higher", min_delta=0.01),
             GateRule(metric="eval_loss", direction="lower")]
    champ = {"accuracy": 0.80, "eval_loss": 0.60}
    ok = gate(champ, {"accuracy": 0.82, "eval_loss": 0.55}, rules)
    assert ok.passed and all(c.passed for c in ok.checks)
    small = gate(champ, {"accuracy": 0.805, "eval_loss": 0.55}, rules)
    assert not small.passed and "accuracy" in small.reason
    worse_loss = gate(champ, {"accuracy": 0.9, "eval_loss": 0.61}, rules)
    assert not worse_loss.passed and [c.metric for c in worse_loss.checks if not c.passed] == ["eval_loss"]


def test_gate_without_champion_and_missing_metrics():
    rules = [GateRule(metric="accuracy")]
    assert gate(None, {"accuracy": 0.3}, rules).passed
    assert not gate(None, {"eval_loss": 0.3}, rules).passed
    assert not gate(None, {"accuracy": math.nan}, rules).passed
    assert gate({"accuracy": float("nan")}, {"accuracy": 0.5}, rules).passed
    assert not gate({"accuracy": 0.5}, {"accuracy": 0.5}, []).passed
