"""Training/serving skew: does a training sample's text look like the production traffic of its base version?

A ``data_sample`` of a run becomes the pinned reference of a drift monitor on text features only (a
training row has no latency, cost, token counts or finish reason). It is compared with the current
production window of the base version when the worker holds one long enough, or else waits for the next
production window of that version (:meth:`SkewMonitors.observe`). One verdict per sample.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from detectors.drift.monitor import DriftConfig, DriftMonitor
from detectors.features.tabular import CATEGORICAL_FEATURES, NUMERIC_FEATURES, extract_features
from detectors.finding import Finding, Subject

#: skew monitors a worker keeps waiting for production traffic (oldest dropped first)
MAX_SKEW_MONITORS = 50
#: features a training row yields (its text only: no latency, cost, token counts or finish reason)
SKEW_NUMERIC = tuple(f for f in NUMERIC_FEATURES if f not in ("prompt_tokens", "completion_tokens", "latency_ms",
                                                               "cost_usd"))
SKEW_CATEGORICAL = tuple(f for f in CATEGORICAL_FEATURES if f != "finish_reason")


def sample_texts(item: Mapping[str, object]) -> tuple[str, str] | None:
    """(prompt, response) of a training row: ``prompt``/``completion`` fields or chat ``messages`` (the last
    assistant turn is the response). A bare ``{"text": …}`` row has no prompt/response split: ``None``."""
    if isinstance(item.get("prompt"), str) and isinstance(item.get("completion"), str):
        return str(item["prompt"]), str(item["completion"])
    messages = item.get("messages")
    if isinstance(messages, list) and messages:
        turns = [(str(m.get("role", "")), m.get("content")) for m in messages if isinstance(m, dict)]
        turns = [(r, c) for r, c in turns if isinstance(c, str)]
        if turns and turns[-1][0] == "assistant":
            return "\n".join(str(c) for _, c in turns[:-1]), str(turns[-1][1])
    return None


def skew_findings(found: Sequence[Finding], run_id: str) -> list[Finding]:
    """A skew monitor's drift findings as ``training_serving_skew`` findings of the run (own ids, so they
    never collide with the production drift finding of the same version and window)."""
    out: list[Finding] = []
    for f in found:
        if f.kind != "distribution_drift":
            continue
        out.append(Finding.create(
            detector="training", kind="training_serving_skew", subject=f.subject, severity=f.severity,
            score=f.score, summary=f"training sample of run {run_id} vs production traffic: {f.summary}",
            evidence={**f.evidence, "run_id": run_id}, window=f.window, occurred_at=f.occurred_at, key=run_id))
    return out


class SkewMonitors:
    """Training samples waiting for (or judged against) production traffic of their base version.

    Follows :class:`detectors.base.PerModelState`: a model's state is ``[[base, run_id, snapshot], …]``.
    """

    def __init__(self, drift: DriftConfig, limit: int = MAX_SKEW_MONITORS) -> None:
        self.config = dataclasses.replace(drift, numeric_features=SKEW_NUMERIC, categorical_features=SKEW_CATEGORICAL)
        self.limit = limit
        self._pending: OrderedDict[tuple[str, str, str], OrderedDict[str, DriftMonitor]] = OrderedDict()

    def waiting(self) -> list[tuple[str, str, str]]:
        """(tenant, model, base version) of the samples still waiting for production traffic."""
        return list(self._pending)

    def judge(self, tenant: str, model: str, base: str, run_id: str, items: Iterable[Mapping[str, Any]],
              ts: datetime, production: DriftMonitor | None) -> list[Finding]:
        """Take a run's training sample; judge it now against ``production`` (the base version's drift
        monitor on this worker) when that holds a long enough window, else keep it waiting."""
        pairs = [p for p in (sample_texts(item) for item in items) if p is not None]
        if len(pairs) < self.config.min_feature_n:
            return []
        skew = DriftMonitor(self.config, Subject(tenant=tenant, model=model, version=base))
        skew.pin_reference([extract_features(p, r) for p, r in pairs], source=f"training_sample:{run_id}", ts=ts)
        if production is not None and production.phase == "monitoring":
            current = production.window_samples()["current"]
            if len(current) >= self.config.min_window:
                verdict: list[Finding] = []
                for row in current:  # a full window is evaluated inside update(); a shorter one by flush()
                    verdict += skew.update(row, None, ts)
                if not skew.windows_evaluated:
                    verdict += skew.flush()
                return skew_findings(verdict, run_id)
        pending = self._pending.setdefault((tenant, model, base), OrderedDict())
        pending[run_id] = skew
        self._pending.move_to_end((tenant, model, base))
        self._trim()
        return []

    def observe(self, tenant: str, model: str, version: str, features: Mapping[str, Any],
                ts: datetime) -> list[Finding]:
        """One production event of ``version``: feed the samples waiting for it; each gives one verdict."""
        key = (tenant, model, version)
        pending = self._pending.get(key)
        if not pending:
            return []
        found: list[Finding] = []
        for run_id, skew in list(pending.items()):
            found += skew_findings(skew.update(features, None, ts), run_id)
            if skew.windows_evaluated:  # one verdict per training sample
                del pending[run_id]
        if not pending:
            del self._pending[key]
        return found

    def _trim(self) -> None:
        while sum(len(v) for v in self._pending.values()) > self.limit:
            oldest = next(iter(self._pending.values()))
            oldest.popitem(last=False)
            if not oldest:
                self._pending.popitem(last=False)

    # ---- PerModelState
    def model_state(self, tenant: str, model: str) -> list[list[Any]] | None:
        state = [[base, run, m.snapshot()] for (t, mo, base), runs in self._pending.items()
                 if t == tenant and mo == model for run, m in runs.items()]
        return state or None

    def restore_model(self, tenant: str, model: str, state: Sequence[Sequence[Any]]) -> int:
        loaded = 0
        for base, run_id, snapshot in state:
            pending = self._pending.setdefault((tenant, model, base), OrderedDict())
            if run_id not in pending:
                pending[run_id] = DriftMonitor.restore(snapshot)
                loaded += 1
        self._trim()
        return loaded

    def forget_model(self, tenant: str, model: str) -> None:
        for key in [k for k in self._pending if k[0] == tenant and k[1] == model]:
            del self._pending[key]
