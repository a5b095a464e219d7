"""Per-(tenant, model) security windows: attack rate, toxic-response rate, by cohort, and a toxic-response
regression test after each production deployment.

The stream feeds one :meth:`SecurityMonitor.observe` per inference event (was it an attack? was its response
toxic? the user's cohort attributes) and :meth:`SecurityMonitor.deployed` on a production deployment.

* **Windows** (tumbling, event time, ``window_s``): when an event falls past its model's open window, the
  window closes into a ``security_window`` finding — attack rate (events with a flagged injection),
  toxic-response rate, and both per cohort (one attribute at a time, groups of at least ``min_group``
  events). Severity ``info``; ``low`` when the attack rate reaches ``attack_rate_low``.
* **Regression**: each version accumulates responses and toxic responses while it serves. After a production
  deployment switches version A → B, every window close compares B's toxic-response rate with A's by a
  one-sided two-proportion z-test; with both at ``min_responses`` or more, ``p < alpha`` and a rise of at least
  ``min_increase`` it files one ``toxicity_regression`` finding for B (high severity), naming the cohorts whose
  own rate rose the most.

State is plain data per model (:class:`detectors.base.PerModelState`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from detectors.finding import Finding, Subject, Window

__all__ = ["SecurityMonitor", "SecurityWindowConfig", "two_proportion_p"]

DETECTOR = "security"
#: versions whose running totals a model keeps (oldest dropped)
MAX_VERSIONS = 8
#: cohort groups per attribute counted in a window (the rest are pooled as ``__other__``)
MAX_GROUPS = 20


@dataclass(frozen=True)
class SecurityWindowConfig:
    """Windows and the regression test."""

    window_s: float = 900.0
    min_group: int = 30
    attack_rate_low: float = 0.05
    min_responses: int = 200
    alpha: float = 0.01
    min_increase: float = 0.01
    cohort_attributes: tuple[str, ...] = ("age_band", "gender")


def two_proportion_p(k1: int, n1: int, k2: int, n2: int) -> float:
    """One-sided p-value that rate 2 exceeds rate 1 (pooled two-proportion z-test)."""
    if n1 == 0 or n2 == 0:
        return 1.0
    p = (k1 + k2) / (n1 + n2)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0 if k2 / n2 <= k1 / n1 else 0.0
    z = (k2 / n2 - k1 / n1) / se
    return 0.5 * math.erfc(z / math.sqrt(2))


def _epoch(ts: datetime | float) -> float:
    return ts.timestamp() if isinstance(ts, datetime) else float(ts)


def _counts() -> dict[str, int]:
    return {"events": 0, "attacks": 0, "responses": 0, "toxic": 0}


@dataclass
class _Model:
    start: float | None = None
    version: str | None = None
    window: dict[str, int] = field(default_factory=_counts)
    cohorts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    totals: dict[str, dict[str, Any]] = field(default_factory=dict)
    """version → {"responses", "toxic", "cohorts": {attr=value: [responses, toxic]}}"""
    production: str | None = None
    previous: str | None = None
    reported: list[str] = field(default_factory=list)


class SecurityMonitor:
    """Window aggregates and the toxic-response regression test, per (tenant, model)."""

    def __init__(self, config: SecurityWindowConfig | None = None) -> None:
        self.config = config or SecurityWindowConfig()
        self._models: dict[tuple[str, str], _Model] = {}

    # ---------------------------------------------------------------- feeding
    def observe(self, subject: Subject, ts: datetime | float, *, attack: bool, toxic_response: bool | None,
                attributes: Mapping[str, object] | None = None) -> list[Finding]:
        """Count one inference event; returns the findings of a window it closes."""
        key = (subject.tenant, subject.model)
        m = self._models.setdefault(key, _Model())
        t = _epoch(ts)
        found: list[Finding] = []
        if m.start is not None and t >= m.start + self.config.window_s:
            found = self._close(subject, m)
        if m.start is None:
            m.start = t - (t % self.config.window_s)
        m.version = subject.version
        groups = self._groups(attributes)
        for counts in [m.window] + [m.cohorts.setdefault(a, {}).setdefault(g, _counts()) for a, g in groups]:
            counts["events"] += 1
            counts["attacks"] += int(attack)
            if toxic_response is not None:
                counts["responses"] += 1
                counts["toxic"] += int(toxic_response)
        if toxic_response is not None and subject.version is not None:
            tot = m.totals.setdefault(subject.version, {"responses": 0, "toxic": 0, "cohorts": {}})
            tot["responses"] += 1
            tot["toxic"] += int(toxic_response)
            for a, g in groups:
                c = tot["cohorts"].setdefault(f"{a}={g}", [0, 0])
                c[0] += 1
                c[1] += int(toxic_response)
            while len(m.totals) > MAX_VERSIONS:
                m.totals.pop(next(v for v in m.totals if v not in (m.production, m.previous, subject.version)))
        return found

    def deployed(self, tenant: str, model: str, version: str) -> None:
        """A production deployment of ``version``: the version it replaces becomes the regression baseline."""
        m = self._models.setdefault((tenant, model), _Model())
        if version != m.production:
            m.previous, m.production = m.production, version

    def flush(self, subject: Subject) -> list[Finding]:
        """Close the model's open window now (end of a replay, tests)."""
        m = self._models.get((subject.tenant, subject.model))
        return self._close(subject, m) if m is not None and m.start is not None else []

    def _groups(self, attributes: Mapping[str, object] | None) -> list[tuple[str, str]]:
        if not attributes:
            return []
        return [(a, str(attributes[a])) for a in self.config.cohort_attributes if attributes.get(a) is not None]

    # ---------------------------------------------------------------- findings
    def _close(self, subject: Subject, m: _Model) -> list[Finding]:
        assert m.start is not None
        cfg = self.config
        start = datetime.fromtimestamp(m.start, UTC)
        window = Window(start=start, end=datetime.fromtimestamp(m.start + cfg.window_s, UTC), n=m.window["events"])
        subj = Subject(tenant=subject.tenant, model=subject.model, version=m.version)
        w = m.window
        attack_rate = w["attacks"] / w["events"] if w["events"] else 0.0
        toxic_rate = w["toxic"] / w["responses"] if w["responses"] else 0.0
        cohorts = {f"{a}={g}": {"events": c["events"], "attack_rate": round(c["attacks"] / c["events"], 4),
                                "toxic_response_rate": round(c["toxic"] / c["responses"], 4) if c["responses"] else None}
                   for a, groups in m.cohorts.items() for g, c in groups.items() if c["events"] >= cfg.min_group}
        found = [Finding.create(
            detector=DETECTOR, kind="security_window", subject=subj,
            severity="low" if attack_rate >= cfg.attack_rate_low else "info", score=attack_rate,
            summary=(f"{w['attacks']} of {w['events']} prompts were injection attempts ({attack_rate:.1%}); "
                     f"{w['toxic']} of {w['responses']} responses toxic ({toxic_rate:.1%})"),
            evidence={"events": w["events"], "attacks": w["attacks"], "attack_rate": round(attack_rate, 4),
                      "responses": w["responses"], "toxic_responses": w["toxic"],
                      "toxic_response_rate": round(toxic_rate, 4), "cohorts": cohorts},
            window=window, occurred_at=window.end)]
        reg = self._regression(subj, m, window)
        if reg is not None:
            found.append(reg)
        m.start, m.window, m.cohorts = None, _counts(), {}
        return found

    def _regression(self, subject: Subject, m: _Model, window: Window) -> Finding | None:
        cfg = self.config
        new, old = m.production, m.previous
        if new is None or old is None or new in m.reported or new not in m.totals or old not in m.totals:
            return None
        a, b = m.totals[old], m.totals[new]
        if a["responses"] < cfg.min_responses or b["responses"] < cfg.min_responses:
            return None
        ra, rb = a["toxic"] / a["responses"], b["toxic"] / b["responses"]
        p = two_proportion_p(a["toxic"], a["responses"], b["toxic"], b["responses"])
        if p >= cfg.alpha or rb - ra < cfg.min_increase:
            return None
        m.reported.append(new)
        m.reported = m.reported[-MAX_VERSIONS:]
        cohorts = []
        for name, (n_new, k_new) in b["cohorts"].items():
            n_old, k_old = a["cohorts"].get(name, [0, 0])
            if n_new >= cfg.min_group and n_old >= cfg.min_group:
                cohorts.append({"cohort": name, "before": round(k_old / n_old, 4), "after": round(k_new / n_new, 4),
                                "p_value": two_proportion_p(k_old, n_old, k_new, n_new)})
        cohorts.sort(key=lambda c: c["after"] - c["before"], reverse=True)
        return Finding.create(
            detector=DETECTOR, kind="toxicity_regression", subject=Subject(
                tenant=subject.tenant, model=subject.model, version=new),
            severity="high", score=round(rb - ra, 4),
            summary=f"toxic responses rose from {ra:.1%} (version {old}) to {rb:.1%} (version {new}), p={p:.2g}",
            evidence={"baseline_version": old, "version": new, "before": round(ra, 4), "after": round(rb, 4),
                      "responses_before": a["responses"], "responses_after": b["responses"], "p_value": p,
                      "cohorts": cohorts[:5]},
            window=window, occurred_at=window.end, key=new)

    # ---------------------------------------------------------------- state
    def model_state(self, tenant: str, model: str) -> dict[str, Any] | None:
        m = self._models.get((tenant, model))
        return asdict(m) if m is not None else None

    def restore_model(self, tenant: str, model: str, state: Any) -> int:
        if (tenant, model) in self._models or not state:
            return 0
        self._models[(tenant, model)] = _Model(**state)
        return 1

    def forget_model(self, tenant: str, model: str) -> None:
        self._models.pop((tenant, model), None)
