"""Evaluation regression: a candidate version's eval metrics against the production version's.

:class:`EvalRegressionDetector` keeps the latest evaluation result per (tenant, model, version,
metric, dataset, split) and knows which version is in ``production`` (``set_production`` from
deployment events). When a result of another version arrives (``update``) it is compared with the
production version's result for the same metric, dataset and split:

* direction per metric — higher is better for BLEU, ROUGE, F1, exact match, accuracy, ...; lower is
  better for perplexity, loss, NLL, error rates (:func:`metric_direction`, overridable per metric);
  a metric whose direction is unknown is not judged;
* tolerance — a regression counts when the candidate is worse by more than
  ``max(abs_tol, rel_tol * |production|)`` (per-metric overrides in ``EvalRegressionConfig.metrics``);
* significance — when both results carry per-item scores for at least ``min_items`` common item ids,
  a one-sided paired test must also reject "no worse" at ``alpha``: McNemar's exact test for 0/1 items
  (accuracy, exact match), a paired bootstrap of the mean difference otherwise, or a paired bootstrap
  of corpus BLEU when both sides carry per-item BLEU statistics
  (:func:`detectors.training.metrics.bleu_stats`); ``test`` can force ``sign`` or ``wilcoxon``.
  Without items (or with fewer than ``min_items`` paired ids) the tolerance alone decides and the
  evidence says so (``test: null``); the test only runs when the tolerance is exceeded.

A regression becomes a finding (detector ``training``, kind ``eval_regression``) on the candidate
version with the metric, both values, delta, p-value and n as evidence; its id derives from the
candidate, metric, dataset, split and production version, so re-delivered events upsert. The
bootstrap is seeded, so a replay gives the same p-value.

:func:`compare_results` is the pure comparison of two results, for callers that hold both (a job
worker evaluating a candidate before promotion).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from scipy import stats as sps

from detectors.finding import Finding, Severity, Subject
from detectors.training.metrics import bleu_from_stats

__all__ = [
    "EvalResult",
    "MetricRule",
    "EvalRegressionConfig",
    "MetricComparison",
    "EvalRegressionDetector",
    "metric_direction",
    "compare_results",
    "paired_test",
]

DETECTOR = "training"
KIND = "eval_regression"
TestName = Literal["auto", "bootstrap", "mcnemar", "sign", "wilcoxon"]

_LOWER_BETTER = frozenset(
    {"loss", "nll", "perplexity", "ppl", "wer", "cer", "ter", "error", "err", "mse", "mae", "rmse"}
)
_HIGHER_BETTER = frozenset(
    {
        "bleu", "sacrebleu", "rouge", "rouge1", "rouge2", "rougel", "rougelsum", "f1", "em", "exact", "accuracy",
        "acc", "precision", "recall", "auc", "auroc", "chrf", "meteor", "bertscore", "pass", "mrr", "ndcg",
    }
)  # fmt: skip


def metric_direction(name: str) -> bool | None:
    """True when higher is better, False when lower is better, None when the name does not say."""
    tokens = [t for t in re.split(r"[^a-z0-9]+", name.lower()) if t]
    if any(t in _LOWER_BETTER for t in tokens):
        return False
    if any(t in _HIGHER_BETTER or t.startswith("rouge") or t.startswith("bleu") for t in tokens):
        return True
    return None


@dataclass(frozen=True)
class EvalResult:
    """One evaluation result: a metric's value on a dataset split, with optional per-item scores.

    ``items`` maps an item id to that item's score (1/0 for correct/incorrect, or a per-item metric);
    ``item_stats`` maps an item id to its additive BLEU statistics (for a corpus-BLEU bootstrap).
    """

    metric: str
    value: float
    dataset: str = ""
    split: str = ""
    items: Mapping[str, float] | None = None
    item_stats: Mapping[str, Sequence[float]] | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """What a comparison pairs on: (metric, dataset, split)."""
        return (self.metric, self.dataset, self.split)

    def to_dict(self) -> dict[str, Any]:
        """Plain data."""
        return {
            "metric": self.metric,
            "value": self.value,
            "dataset": self.dataset,
            "split": self.split,
            "items": None if self.items is None else {str(k): float(v) for k, v in self.items.items()},
            "item_stats": None
            if self.item_stats is None
            else {str(k): [float(x) for x in v] for k, v in self.item_stats.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EvalResult:
        """Inverse of :meth:`to_dict`."""
        return cls(
            metric=d["metric"],
            value=float(d["value"]),
            dataset=d.get("dataset", ""),
            split=d.get("split", ""),
            items=d.get("items"),
            item_stats=d.get("item_stats"),
        )

    def truncated(self, max_items: int) -> EvalResult:
        """The same result keeping at most ``max_items`` items (the lowest ids, so versions stay paired)."""
        items, st = self.items, self.item_stats
        if items is not None and len(items) > max_items:
            keep = sorted(items)[:max_items]
            items = {k: items[k] for k in keep}
        if st is not None and len(st) > max_items:
            keep = sorted(st)[:max_items]
            st = {k: st[k] for k in keep}
        return EvalResult(self.metric, self.value, self.dataset, self.split, items, st)


@dataclass(frozen=True)
class MetricRule:
    """Per-metric direction and tolerance (``None`` fields fall back to the config's defaults)."""

    higher_is_better: bool | None = None
    abs_tol: float | None = None
    rel_tol: float | None = None


@dataclass(frozen=True)
class EvalRegressionConfig:
    """Settings of :class:`EvalRegressionDetector`."""

    abs_tol: float = 0.0
    rel_tol: float = 0.01  # 1 % of the production value
    metrics: Mapping[str, MetricRule] = field(default_factory=dict)
    alpha: float = 0.05
    min_items: int = 10
    test: TestName = "auto"
    n_bootstrap: int = 2000
    seed: int = 0
    max_items: int = 20_000  # per stored result
    max_versions: int = 10  # versions kept per model besides production
    high_severity_factor: float = 3.0  # worse by more than this many tolerances: high, else medium

    def __post_init__(self) -> None:
        if self.abs_tol < 0 or self.rel_tol < 0:
            raise ValueError("tolerances must be >= 0")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError("alpha must be in (0, 1)")
        if self.test not in ("auto", "bootstrap", "mcnemar", "sign", "wilcoxon"):
            raise ValueError(f"unknown test {self.test!r}")
        if self.n_bootstrap < 100 or self.min_items < 2 or self.max_versions < 1:
            raise ValueError("n_bootstrap must be >= 100, min_items >= 2, max_versions >= 1")

    def rule(self, metric: str) -> tuple[bool | None, float, float]:
        """(higher_is_better, abs_tol, rel_tol) for a metric."""
        r = self.metrics.get(metric, MetricRule())
        hib = r.higher_is_better if r.higher_is_better is not None else metric_direction(metric)
        return (
            hib,
            self.abs_tol if r.abs_tol is None else r.abs_tol,
            self.rel_tol if r.rel_tol is None else r.rel_tol,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for snapshots)."""
        d = asdict(self)
        d["metrics"] = {k: asdict(v) for k, v in self.metrics.items()}
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalRegressionConfig:
        """Inverse of :meth:`to_dict`."""
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown EvalRegressionConfig keys: {sorted(unknown)}")
        d = dict(data)
        d["metrics"] = {k: MetricRule(**v) for k, v in d.get("metrics", {}).items()}
        return cls(**d)


@dataclass(frozen=True)
class MetricComparison:
    """The comparison of one metric between a candidate and the production version."""

    metric: str
    dataset: str
    split: str
    candidate_version: str | None
    production_version: str | None
    candidate: float
    production: float
    delta: float  # candidate - production
    relative_delta: float | None
    higher_is_better: bool
    tolerance: float
    beyond_tolerance: bool
    test: str | None
    p_value: float | None
    n: int  # items paired by id (0 without per-item results)
    significant: bool | None  # p_value < alpha; None when no test ran

    @property
    def regressed(self) -> bool:
        """Worse beyond tolerance and, when a paired test ran, significantly so."""
        return self.beyond_tolerance and self.significant is not False

    @property
    def worse_by(self) -> float:
        """How much worse the candidate is in the metric's bad direction (negative when better)."""
        return -self.delta if self.higher_is_better else self.delta

    def evidence(self) -> dict[str, Any]:
        """JSON-ready evidence for a finding."""
        return {
            "metric": self.metric,
            "dataset": self.dataset,
            "split": self.split,
            "candidate_version": self.candidate_version,
            "production_version": self.production_version,
            "candidate": self.candidate,
            "production": self.production,
            "delta": self.delta,
            "relative_delta": self.relative_delta,
            "direction": "higher_is_better" if self.higher_is_better else "lower_is_better",
            "tolerance": self.tolerance,
            "test": self.test,
            "p_value": self.p_value,
            "significant": self.significant,
            "n": self.n,
        }


# ---- paired tests ---------------------------------------------------------------------------------


def _bootstrap_p(d: np.ndarray, n_boot: int, seed: int) -> float:
    """One-sided paired bootstrap p-value of H0 "mean(d) <= 0" (d = how much worse, per item).

    Resamples are centred on the observed mean (Berg-Kirkpatrick et al. 2012): p is the share of
    resamples whose mean exceeds twice the observed mean, with the usual +1 correction.
    """
    n = d.shape[0]
    obs = float(d.mean())
    rng = np.random.default_rng(seed)
    hits = 0
    chunk = max(1, min(n_boot, 4_000_000 // max(n, 1)))
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        idx = rng.integers(0, n, size=(b, n))
        means = d[idx].mean(axis=1)
        hits += int(np.count_nonzero(means - obs >= obs))
        done += b
    return (hits + 1) / (n_boot + 1)


def _bleu_bootstrap_p(cand: np.ndarray, prod: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    """Paired bootstrap of corpus BLEU over items: (observed production - candidate, one-sided p)."""
    n = cand.shape[0]
    obs = bleu_from_stats(prod.sum(axis=0).tolist()).score - bleu_from_stats(cand.sum(axis=0).tolist()).score
    rng = np.random.default_rng(seed)
    hits = 0
    chunk = max(1, min(n_boot, 2_000_000 // max(n, 1)))
    done = 0
    pv = np.full(n, 1.0 / n)
    while done < n_boot:
        b = min(chunk, n_boot - done)
        counts = rng.multinomial(n, pv, size=b).astype(np.float64)
        cs, ps = counts @ cand, counts @ prod
        for i in range(b):
            diff = bleu_from_stats(ps[i].tolist()).score - bleu_from_stats(cs[i].tolist()).score
            hits += diff - obs >= obs
        done += b
    return obs, (hits + 1) / (n_boot + 1)


def paired_test(
    worse: np.ndarray, test: TestName = "auto", *, binary: bool = False, n_bootstrap: int = 2000, seed: int = 0
) -> tuple[str, float]:
    """One-sided paired test that the candidate is worse; ``worse`` = per-item (production - candidate)
    in the metric's good direction. Returns (test name, p-value)."""
    if test == "auto":
        test = "mcnemar" if binary else "bootstrap"
    d = np.asarray(worse, dtype=np.float64)
    if test == "mcnemar":
        if not binary:
            raise ValueError("McNemar's test needs 0/1 item scores")
        b = int(np.count_nonzero(d > 0))  # production right, candidate wrong
        c = int(np.count_nonzero(d < 0))
        p = 1.0 if b + c == 0 else float(sps.binomtest(b, b + c, 0.5, alternative="greater").pvalue)
        return "mcnemar", p
    if test == "sign":
        b, c = int(np.count_nonzero(d > 0)), int(np.count_nonzero(d < 0))
        p = 1.0 if b + c == 0 else float(sps.binomtest(b, b + c, 0.5, alternative="greater").pvalue)
        return "sign", p
    if test == "wilcoxon":
        if not np.any(d != 0):
            return "wilcoxon", 1.0
        return "wilcoxon", float(sps.wilcoxon(d, alternative="greater", zero_method="wilcox").pvalue)
    if test == "bootstrap":
        if np.all(d == d[0]):
            return "bootstrap", 1.0 if d[0] <= 0 else 1.0 / (n_bootstrap + 1)
        return "bootstrap", _bootstrap_p(d, n_bootstrap, seed)
    raise ValueError(f"unknown test {test!r}")


def compare_results(
    candidate: EvalResult,
    production: EvalResult,
    config: EvalRegressionConfig | None = None,
    *,
    candidate_version: str | None = None,
    production_version: str | None = None,
) -> MetricComparison | None:
    """Compare one metric of two versions; None when the metric's direction is unknown or a value is
    not finite."""
    cfg = config or EvalRegressionConfig()
    if candidate.metric != production.metric:
        raise ValueError("results of different metrics cannot be compared")
    hib, abs_tol, rel_tol = cfg.rule(candidate.metric)
    cv, pv = float(candidate.value), float(production.value)
    if hib is None or not (math.isfinite(cv) and math.isfinite(pv)):
        return None
    delta = cv - pv
    worse_by = -delta if hib else delta
    tol = max(abs_tol, rel_tol * abs(pv))
    beyond = worse_by > tol
    test_name: str | None = None
    p: float | None = None
    n = 0
    if candidate.item_stats and production.item_stats and cfg.test in ("auto", "bootstrap"):
        common = sorted(set(candidate.item_stats) & set(production.item_stats))
        n = len(common)
        if n >= cfg.min_items and beyond:
            c = np.asarray([candidate.item_stats[k] for k in common], dtype=np.float64)
            q = np.asarray([production.item_stats[k] for k in common], dtype=np.float64)
            _, p = _bleu_bootstrap_p(c, q, cfg.n_bootstrap, cfg.seed)
            test_name = "bootstrap_corpus_bleu"
    elif candidate.items and production.items:
        common = sorted(set(candidate.items) & set(production.items))
        n = len(common)
        if n >= cfg.min_items and beyond:
            c = np.asarray([float(candidate.items[k]) for k in common])
            q = np.asarray([float(production.items[k]) for k in common])
            worse = (q - c) if hib else (c - q)
            binary = bool(np.all((c == 0) | (c == 1)) and np.all((q == 0) | (q == 1)))
            test = cfg.test if not (cfg.test == "mcnemar" and not binary) else "bootstrap"
            test_name, p = paired_test(worse, test, binary=binary, n_bootstrap=cfg.n_bootstrap, seed=cfg.seed)
    return MetricComparison(
        metric=candidate.metric,
        dataset=candidate.dataset,
        split=candidate.split,
        candidate_version=candidate_version,
        production_version=production_version,
        candidate=cv,
        production=pv,
        delta=delta,
        relative_delta=delta / abs(pv) if pv != 0 else None,
        higher_is_better=hib,
        tolerance=tol,
        beyond_tolerance=beyond,
        test=test_name,
        p_value=p,
        n=n,
        significant=None if p is None else p < cfg.alpha,
    )


# ---- the detector ---------------------------------------------------------------------------------


class EvalRegressionDetector:
    """Latest eval results per model version, compared against the production version's.

    Usage::

        det = EvalRegressionDetector(EvalRegressionConfig(rel_tol=0.02))
        det.set_production("acme", "summariser", "6")          # from a deployment event
        det.update(Subject(tenant="acme", model="summariser", version="6"), prod_result)
        findings = det.update(Subject(tenant="acme", model="summariser", version="7"), cand_result,
                              ts=ev.occurred_at, event_id=ev.event_id)
    """

    def __init__(self, config: EvalRegressionConfig | None = None) -> None:
        self.config = config or EvalRegressionConfig()
        self._production: dict[tuple[str, str], str] = {}
        # (tenant, model) -> version -> (metric, dataset, split) -> result; versions in arrival order
        self._results: dict[tuple[str, str], dict[str, dict[tuple[str, str, str], EvalResult]]] = {}

    # ---- production alias ------------------------------------------------------------------------
    def set_production(self, tenant: str, model: str, version: str) -> None:
        """Record which version the ``production`` alias points at (deploy / promote / rollback)."""
        self._production[(tenant, model)] = version

    def production_version(self, tenant: str, model: str) -> str | None:
        """The production version of a model, if known."""
        return self._production.get((tenant, model))

    def result(
        self, tenant: str, model: str, version: str, metric: str, dataset: str = "", split: str = ""
    ) -> EvalResult | None:
        """The stored result of one version for one (metric, dataset, split)."""
        return self._results.get((tenant, model), {}).get(version, {}).get((metric, dataset, split))

    # ---- input -----------------------------------------------------------------------------------
    def update(
        self,
        subject: Subject,
        result: EvalResult,
        ts: datetime | None = None,
        *,
        event_id: str | None = None,
    ) -> list[Finding]:
        """Store ``result`` for ``subject.version``; if that version is not production, compare it with
        production's result for the same metric/dataset/split and return a finding when it regressed."""
        if subject.version is None:
            raise ValueError("an evaluation result needs the model version it was measured on")
        key = (subject.tenant, subject.model)
        per_model = self._results.setdefault(key, {})
        per_version = per_model.pop(subject.version, {})  # re-insert: most recent last
        per_version[result.key] = result.truncated(self.config.max_items)
        per_model[subject.version] = per_version
        self._evict(key)
        prod = self._production.get(key)
        if prod is None or prod == subject.version:
            return []
        base = per_model.get(prod, {}).get(result.key)
        if base is None:
            return []
        cmp = compare_results(
            per_version[result.key],
            base,
            self.config,
            candidate_version=subject.version,
            production_version=prod,
        )
        if cmp is None or not cmp.regressed:
            return []
        return [self.finding(subject, cmp, ts, event_id)]

    def compare(
        self, tenant: str, model: str, candidate_version: str, production_version: str | None = None
    ) -> list[MetricComparison]:
        """Every comparison (regressed or not) of a candidate with production (or the given version)."""
        prod = production_version or self._production.get((tenant, model))
        per_model = self._results.get((tenant, model), {})
        if prod is None or prod not in per_model or candidate_version not in per_model:
            return []
        out = []
        for k, res in sorted(per_model[candidate_version].items()):
            base = per_model[prod].get(k)
            if base is not None:
                c = compare_results(
                    res, base, self.config, candidate_version=candidate_version, production_version=prod
                )
                if c is not None:
                    out.append(c)
        return out

    def finding(
        self, subject: Subject, cmp: MetricComparison, ts: datetime | None = None, event_id: str | None = None
    ) -> Finding:
        """The ``eval_regression`` finding of one comparison."""
        cfg = self.config
        sev = Severity.high if cmp.worse_by > cfg.high_severity_factor * max(cmp.tolerance, 1e-12) else Severity.medium
        if ts is not None and ts.tzinfo is None:
            ts = ts.replace(tzinfo=UTC)
        where = "/".join(x for x in (cmp.dataset, cmp.split) if x) or "eval"
        p = "" if cmp.p_value is None else f", p={cmp.p_value:.3g}, n={cmp.n}"
        return Finding.create(
            detector=DETECTOR,
            kind=KIND,
            subject=subject,
            severity=sev,
            score=float(abs(cmp.relative_delta)) if cmp.relative_delta is not None else float(cmp.worse_by),
            summary=(
                f"{cmp.metric} on {where} regressed: {cmp.candidate:.4g} (version {cmp.candidate_version}) vs "
                f"{cmp.production:.4g} (production {cmp.production_version}), tolerance {cmp.tolerance:.3g}{p}"
            ),
            evidence=cmp.evidence(),
            event_id=event_id,
            occurred_at=ts,
            key=f"{cmp.metric}|{cmp.dataset}|{cmp.split}|vs|{cmp.production_version}",
        )

    def _evict(self, key: tuple[str, str]) -> None:
        per_model = self._results[key]
        prod = self._production.get(key)
        others = [v for v in per_model if v != prod]
        for v in others[: max(0, len(others) - self.config.max_versions)]:
            del per_model[v]

    # ---- persistence -----------------------------------------------------------------------------
    def model_state(self, tenant: str, model: str) -> dict[str, Any] | None:
        """One model's production version and stored results as plain data (None: nothing known)."""
        key = (tenant, model)
        prod = self._production.get(key)
        per_model = self._results.get(key, {})
        if prod is None and not per_model:
            return None
        return {
            "production": prod,
            "results": [[ver, [r.to_dict() for _, r in sorted(per_v.items())]] for ver, per_v in per_model.items()],
        }

    def restore_model(self, tenant: str, model: str, state: Mapping[str, Any]) -> int:
        """Load one model's :meth:`model_state`; what is already held for the model (newer) wins."""
        key = (tenant, model)
        if key in self._production or key in self._results:
            return 0
        if state.get("production") is not None:
            self._production[key] = str(state["production"])
        for ver, results in state.get("results") or []:
            per_v = self._results.setdefault(key, {}).setdefault(ver, {})
            for r in results:
                res = EvalResult.from_dict(r)
                per_v[res.key] = res
        return 1

    def forget_model(self, tenant: str, model: str) -> None:
        """Drop one model's state (its events moved to another worker)."""
        self._production.pop((tenant, model), None)
        self._results.pop((tenant, model), None)

    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-serialisable plain data."""
        return {
            "version": 1,
            "config": self.config.to_dict(),
            "production": [[t, m, v] for (t, m), v in sorted(self._production.items())],
            "results": [
                [t, m, ver, [r.to_dict() for _, r in sorted(per_v.items())]]
                for (t, m), per_m in sorted(self._results.items())
                for ver, per_v in per_m.items()
            ],
        }

    @classmethod
    def restore(cls, data: Mapping[str, Any]) -> EvalRegressionDetector:
        """Rebuild a detector from :meth:`snapshot` output."""
        if data.get("version") != 1:
            raise ValueError(f"unsupported eval-regression snapshot version {data.get('version')!r}")
        det = cls(EvalRegressionConfig.from_dict(data["config"]))
        det._production = {(t, m): v for t, m, v in data["production"]}
        for t, m, ver, results in data["results"]:
            per_v = det._results.setdefault((t, m), {}).setdefault(ver, {})
            for r in results:
                res = EvalResult.from_dict(r)
                per_v[res.key] = res
        return det
