"""EvalRegressionDetector: direction, tolerance, paired significance tests, state."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import numpy as np
import pytest

from detectors.finding import Severity, Subject
from detectors.training.metrics import score_predictions
from detectors.training.regression import (
    EvalRegressionConfig,
    EvalRegressionDetector,
    EvalResult,
    MetricRule,
    compare_results,
    metric_direction,
    paired_test,
)

TS = datetime(2025, 3, 1, tzinfo=UTC)


def subj(version: str) -> Subject:
    return Subject(tenant="acme", model="qa", version=version)


def detector(**cfg) -> EvalRegressionDetector:
    det = EvalRegressionDetector(EvalRegressionConfig(**cfg))
    det.set_production("acme", "qa", "6")
    return det


def test_metric_direction():
    higher = ("bleu", "sacrebleu", "rougeL", "rouge_l", "rougeLsum", "f1", "token_f1", "exact_match", "accuracy", "eval/acc")
    for name in higher:
        assert metric_direction(name) is True, name
    for name in ("perplexity", "eval_loss", "val/ppl", "nll", "wer", "error_rate"):
        assert metric_direction(name) is False, name
    assert metric_direction("toxicity_index") is None


def test_tolerance_without_items():
    det = detector(rel_tol=0.01)
    assert det.update(subj("6"), EvalResult("rougeL", 0.42, "cnn", "test"), TS) == []
    assert det.update(subj("7"), EvalResult("rougeL", 0.419, "cnn", "test"), TS) == []  # within 1 %
    assert det.update(subj("8"), EvalResult("rougeL", 0.45, "cnn", "test"), TS) == []  # better
    found = det.update(subj("9"), EvalResult("rougeL", 0.40, "cnn", "test"), TS, event_id="e9")
    assert len(found) == 1
    f = found[0]
    assert (f.detector, f.kind, f.subject.version) == ("training", "eval_regression", "9")
    ev = f.evidence
    assert ev["candidate"] == 0.40 and ev["production"] == 0.42
    assert ev["delta"] == pytest.approx(-0.02)
    assert ev["tolerance"] == pytest.approx(0.0042)
    assert ev["p_value"] is None and ev["test"] is None and ev["n"] == 0
    assert ev["production_version"] == "6" and ev["candidate_version"] == "9"
    assert f.severity == Severity.high  # 0.02 > 3 x 0.0042
    # another dataset/split is not paired with this one
    assert det.update(subj("9"), EvalResult("rougeL", 0.10, "xsum", "test"), TS) == []


def test_lower_is_better_and_absolute_tolerance():
    det = detector(metrics={"perplexity": MetricRule(abs_tol=0.5, rel_tol=0.0)})
    det.update(subj("6"), EvalResult("perplexity", 10.0), TS)
    assert det.update(subj("7"), EvalResult("perplexity", 10.4), TS) == []
    assert det.update(subj("8"), EvalResult("perplexity", 9.0), TS) == []
    found = det.update(subj("9"), EvalResult("perplexity", 12.0), TS)
    assert len(found) == 1 and found[0].evidence["direction"] == "lower_is_better"
    assert found[0].evidence["delta"] == pytest.approx(2.0)


def test_unknown_direction_is_not_judged_unless_configured():
    a, b = EvalResult("toxicity_index", 0.1), EvalResult("toxicity_index", 0.5)
    assert compare_results(b, a) is None
    cfg = EvalRegressionConfig(metrics={"toxicity_index": MetricRule(higher_is_better=False)})
    c = compare_results(b, a, cfg)
    assert c is not None and c.regressed


def _binary_items(n: int, prod_correct: int, right_to_wrong: int, wrong_to_right: int):
    prod = {f"q{i}": 1.0 if i < prod_correct else 0.0 for i in range(n)}
    cand = dict(prod)
    for i in range(right_to_wrong):
        cand[f"q{i}"] = 0.0
    for i in range(wrong_to_right):
        cand[f"q{prod_correct + i}"] = 1.0
    return prod, cand


def test_mcnemar_exact_on_binary_items():
    prod, cand = _binary_items(200, 150, right_to_wrong=30, wrong_to_right=5)
    det = detector()
    det.update(subj("6"), EvalResult("accuracy", 0.75, "mmlu", "test", items=prod), TS)
    found = det.update(subj("7"), EvalResult("accuracy", sum(cand.values()) / 200, "mmlu", "test", items=cand), TS)
    assert len(found) == 1
    ev = found[0].evidence
    assert ev["test"] == "mcnemar" and ev["n"] == 200
    # exact one-sided binomial tail P(X >= 30 | n = 35, 1/2), computed independently
    want = sum(math.comb(35, k) for k in range(30, 36)) / 2**35
    assert ev["p_value"] == pytest.approx(want, rel=1e-9)


def test_not_significant_means_no_finding():
    prod, cand = _binary_items(200, 150, right_to_wrong=6, wrong_to_right=3)
    c = compare_results(
        EvalResult("accuracy", sum(cand.values()) / 200, items=cand), EvalResult("accuracy", 0.75, items=prod)
    )
    assert c is not None and c.beyond_tolerance and c.test == "mcnemar"
    assert c.p_value == pytest.approx(sum(math.comb(9, k) for k in range(6, 10)) / 2**9)
    assert c.significant is False and not c.regressed


def test_too_few_items_fall_back_to_tolerance():
    prod, cand = _binary_items(5, 4, right_to_wrong=2, wrong_to_right=0)
    c = compare_results(EvalResult("accuracy", 0.4, items=cand), EvalResult("accuracy", 0.8, items=prod))
    assert c is not None and c.n == 5 and c.p_value is None and c.regressed


def test_bootstrap_on_continuous_items():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 1.0, 300)
    prod = {f"i{k}": float(v) for k, v in enumerate(base)}
    worse = {f"i{k}": float(np.clip(v - 0.05 + rng.normal(0, 0.1), 0, 1)) for k, v in enumerate(base)}
    c = compare_results(
        EvalResult("f1", float(np.mean(list(worse.values()))), items=worse),
        EvalResult("f1", float(base.mean()), items=prod),
    )
    assert c is not None and c.test == "bootstrap" and c.p_value < 0.01 and c.regressed
    # same distribution, tiny difference: beyond a zero tolerance but not significant
    noisy = {k: float(np.clip(v + rng.normal(0, 0.1), 0, 1)) for k, v in prod.items()}
    mean_noisy = float(np.mean(list(noisy.values())))
    if mean_noisy >= base.mean():  # make the candidate nominally worse by a hair
        noisy = {k: v - (mean_noisy - base.mean()) - 1e-4 for k, v in noisy.items()}
        mean_noisy = float(np.mean(list(noisy.values())))
    c = compare_results(
        EvalResult("f1", mean_noisy, items=noisy), EvalResult("f1", float(base.mean()), items=prod),
        EvalRegressionConfig(rel_tol=0.0),
    )
    assert c is not None and c.beyond_tolerance and c.p_value > 0.05 and not c.regressed


def test_bootstrap_false_positive_rate_is_calibrated():
    rng = np.random.default_rng(1)
    ps = [paired_test(rng.normal(0, 1, 80), "bootstrap", n_bootstrap=400, seed=i)[1] for i in range(300)]
    rate = float(np.mean(np.asarray(ps) < 0.05))
    assert 0.015 <= rate <= 0.10, rate


def test_wilcoxon_and_sign_options():
    d = np.r_[np.full(20, 0.1), np.full(5, -0.05)]
    name, p = paired_test(d, "sign")
    assert name == "sign" and p == pytest.approx(sum(math.comb(25, k) for k in range(20, 26)) / 2**25)
    name, p = paired_test(d, "wilcoxon")
    assert name == "wilcoxon" and p < 0.01
    assert paired_test(np.zeros(30), "wilcoxon")[1] == 1.0


def test_corpus_bleu_paired_bootstrap():
    rng = np.random.default_rng(2)
    vocab = [f"w{i}" for i in range(50)]
    refs = [" ".join(rng.choice(vocab, 12)) for _ in range(120)]
    good = [r if k % 4 else " ".join(r.split()[:-2]) for k, r in enumerate(refs)]
    bad = [" ".join(w if rng.random() > 0.3 else "x" for w in r.split()) for r in refs]
    sg, sb = score_predictions(good, refs, ["bleu"])["bleu"], score_predictions(bad, refs, ["bleu"])["bleu"]
    ids = [f"s{k}" for k in range(120)]
    prod = EvalResult("bleu", sg.value, item_stats=dict(zip(ids, sg.item_stats)))
    cand = EvalResult("bleu", sb.value, item_stats=dict(zip(ids, sb.item_stats)))
    c = compare_results(cand, prod, EvalRegressionConfig(n_bootstrap=300))
    assert c is not None and c.test == "bootstrap_corpus_bleu" and c.n == 120
    assert c.p_value < 0.01 and c.regressed
    assert compare_results(prod, cand, EvalRegressionConfig(n_bootstrap=300)).regressed is False


def test_redelivery_gives_same_id_and_production_change_a_new_one():
    det = detector()
    det.update(subj("6"), EvalResult("f1", 0.8), TS)
    a = det.update(subj("7"), EvalResult("f1", 0.7), TS, event_id="e1")
    b = det.update(subj("7"), EvalResult("f1", 0.7), TS, event_id="e1")
    assert a and a[0].finding_id == b[0].finding_id
    det.set_production("acme", "qa", "5")
    det.update(subj("5"), EvalResult("f1", 0.9), TS)
    c = det.update(subj("7"), EvalResult("f1", 0.7), TS, event_id="e1")
    assert c and c[0].finding_id != a[0].finding_id and c[0].evidence["production_version"] == "5"
    # production's own result is never compared with itself
    assert det.update(subj("5"), EvalResult("f1", 0.1), TS) == []


def test_compare_lists_every_metric_and_snapshot_round_trip():
    det = detector(max_versions=2)
    for m, v in (("f1", 0.8), ("perplexity", 10.0), ("exact_match", 0.6)):
        det.update(subj("6"), EvalResult(m, v, "squad", "dev", items={"a": 1.0, "b": 0.0}), TS)
    det.update(subj("7"), EvalResult("f1", 0.85, "squad", "dev"), TS)
    det.update(subj("7"), EvalResult("perplexity", 13.0, "squad", "dev"), TS)
    cmps = det.compare("acme", "qa", "7")
    assert [(c.metric, c.regressed) for c in cmps] == [("f1", False), ("perplexity", True)]
    snap = json.loads(json.dumps(det.snapshot()))
    back = EvalRegressionDetector.restore(snap)
    assert back.snapshot() == snap
    assert [c.metric for c in back.compare("acme", "qa", "7")] == ["f1", "perplexity"]
    # eviction keeps production and the most recent max_versions others
    for v in ("8", "9", "10"):
        det.update(subj(v), EvalResult("f1", 0.8), TS)
    assert det.result("acme", "qa", "6", "f1", "squad", "dev") is not None
    assert det.result("acme", "qa", "7", "f1", "squad", "dev") is None
    assert det.result("acme", "qa", "10", "f1") is not None


def test_config_validation_and_round_trip():
    cfg = EvalRegressionConfig(rel_tol=0.02, metrics={"bleu": MetricRule(abs_tol=0.5)}, test="wilcoxon")
    assert EvalRegressionConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError):
        EvalRegressionConfig(alpha=0.0)
    with pytest.raises(ValueError):
        EvalRegressionConfig(test="t-test")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        detector().update(Subject(tenant="acme", model="qa"), EvalResult("f1", 0.5))
