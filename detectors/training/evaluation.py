"""Evaluation runs of candidate versions: metric regressions against production, and BBQ bias scores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from detectors.bias.bbq import BbqRegressionDetector
from detectors.finding import Finding, Subject
from detectors.training.regression import EvalRegressionDetector, EvalResult


class EvaluationMonitor:
    """Judges each evaluation a training run reports: every metric against the production version's
    (:class:`EvalRegressionDetector`), and BBQ items (they carry ``context_condition``) for bias.

    Follows :class:`detectors.base.PerModelState`: a model's state is ``{"eval": …, "bbq": …}``.
    """

    def __init__(self) -> None:
        self.regression = EvalRegressionDetector()
        self.bbq = BbqRegressionDetector()

    def set_production(self, tenant: str, model: str, version: str) -> None:
        """``version`` became the model's production version (candidates are compared with it)."""
        self.regression.set_production(tenant, model, version)

    def production_version(self, tenant: str, model: str) -> str | None:
        """The model's production version as far as this worker knows."""
        return self.regression.production_version(tenant, model)

    def evaluate(self, subject: Subject, metrics: Mapping[str, float | None], items: Sequence[Mapping[str, Any]],
                 *, dataset: str, split: str, ts: datetime, event_id: str) -> list[Finding]:
        """Findings of one evaluation of ``subject`` (a candidate version). Per-item scores (``score``, else
        ``correct``) are paired with the metric when the evaluation reports exactly one."""
        findings: list[Finding] = []
        if items and "context_condition" in items[0]:
            findings += self.bbq.evaluate(subject, items, eval_id=event_id)
        per_item = {str(i["id"]): float(i["score"] if i.get("score") is not None else bool(i.get("correct")))
                    for i in items if "id" in i and (i.get("score") is not None or i.get("correct") is not None)}
        values = {k: v for k, v in metrics.items() if v is not None}
        for metric, value in values.items():
            result = EvalResult(metric, value, dataset, split, items=per_item if len(values) == 1 and per_item else None)
            findings += self.regression.update(subject, result, ts, event_id=event_id)
        return findings

    # ---- PerModelState
    def model_state(self, tenant: str, model: str) -> dict[str, Any] | None:
        state = {"eval": self.regression.model_state(tenant, model), "bbq": self.bbq.model_state(tenant, model)}
        return {k: v for k, v in state.items() if v} or None

    def restore_model(self, tenant: str, model: str, state: Mapping[str, Any]) -> int:
        loaded = 0
        if state.get("eval"):
            loaded += self.regression.restore_model(tenant, model, state["eval"])
        if state.get("bbq"):
            loaded += self.bbq.restore_model(tenant, model, state["bbq"])
        return loaded

    def forget_model(self, tenant: str, model: str) -> None:
        self.regression.forget_model(tenant, model)
        self.bbq.forget_model(tenant, model)
