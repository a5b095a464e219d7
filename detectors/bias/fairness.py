"""Cohort fairness over live traffic: per model and window, do protected groups get
favourable outcomes at the same rate?

The stream worker feeds one call per event::

    monitor.update(subject, ts, groups={"gender": "f", "age_band": "65+"},
                   outcome=not refused, label=task_succeeded_or_None, kind="refusal")

``outcome`` is True when the event went the user's way (answered rather than refused,
thumbs up, task succeeded, approved); ``label`` is the ground truth where one exists (for
equal opportunity / equalized odds); ``kind`` names the outcome so refusals and feedback
are tracked separately. Only the configured protected attributes are read from ``groups``.

At the end of each window (tumbling, by event count or by time) the monitor computes for
every protected attribute the selection rate per group (Wilson interval), demographic
parity difference, disparate impact ratio (four-fifths rule) and, with labels, equal
opportunity and equalized odds differences; then it tests each disparity (Fisher's exact
test for two groups, chi-square — exact by Monte Carlo when counts are small — for more).

Equal opportunity findings come from the TPR test; equalized odds findings from the FPR
test, with value max(TPR difference, FPR difference) as fairlearn defines it (a TPR gap is
already reported as equal opportunity, so it is not reported twice).

**False alarms.** Groups smaller than ``min_group_size`` are reported but not tested. The
p-values of all tests of one window (attributes × {selection rate, TPR, FPR}) are
Holm-adjusted, and a finding needs an adjusted p-value below ``alpha`` *and* a disparity
past a practical threshold. So when groups truly share one rate, the probability that a
window raises any finding is at most ``alpha`` — per window, per model and outcome kind,
at every sample size (``python -m bench.bias_calibration`` measures it). Over W windows
expect at most ``alpha · W`` false alarms.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from detectors.bias.metrics import GroupCounts, disparities
from detectors.bias.stats import holm_adjust, homogeneity_test, wilson_interval
from detectors.finding import Finding, Severity, Subject, Window

__all__ = [
    "CohortFairnessMonitor",
    "Disparity",
    "FairnessConfig",
    "evaluate_window",
]

DETECTOR = "bias"
OTHER_GROUP = "__other__"


@dataclass(frozen=True)
class FairnessConfig:
    """Settings of :class:`CohortFairnessMonitor` (the service maps env settings to these).

    Windows are tumbling: by time when ``window_seconds`` is set, else every
    ``window_size`` events. A disparity is a finding when its Holm-adjusted p-value is
    below ``alpha`` and it passes a practical threshold: disparate impact ratio below
    ``disparate_impact_threshold`` or parity difference at least ``parity_difference_threshold``
    (for selection rates); TPR/FPR difference at least ``odds_difference_threshold``.
    """

    protected_attributes: tuple[str, ...]
    min_group_size: int = 30
    alpha: float = 0.05
    disparate_impact_threshold: float = 0.8
    parity_difference_threshold: float = 0.05
    odds_difference_threshold: float = 0.05
    window_size: int = 1000
    window_seconds: float | None = None
    max_groups_per_attribute: int = 50
    hash_group_values: bool = False
    emit_window_summary: bool = False
    mc_draws: int = 1999

    def __post_init__(self) -> None:
        if not self.protected_attributes:
            raise ValueError("protected_attributes must name at least one attribute")
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        if self.window_seconds is None and self.window_size < 1:
            raise ValueError("window_size must be >= 1")
        if self.window_seconds is not None and self.window_seconds <= 0:
            raise ValueError("window_seconds must be > 0")
        if self.min_group_size < 1:
            raise ValueError("min_group_size must be >= 1")


@dataclass(frozen=True)
class Disparity:
    """One tested disparity of one attribute in one window."""

    attribute: str
    metric: str  # demographic_parity | equal_opportunity | equalized_odds
    value: float
    p_value: float
    p_value_adjusted: float
    test: str
    significant: bool
    practical: bool
    groups: dict[str, dict[str, Any]]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def alarm(self) -> bool:
        """Significant after Holm adjustment and past the practical threshold."""
        return self.significant and self.practical


_TESTS = (
    # metric, success count attribute, trials attribute, rate property
    ("selection_rate", "favorable", "n", "rate"),
    ("true_positive_rate", "tp", "label_pos", "tpr"),
    ("false_positive_rate", "fp", "label_neg", "fpr"),
)


def evaluate_window(
    counts: Mapping[str, Mapping[str, GroupCounts]], config: FairnessConfig
) -> list[Disparity]:
    """Test every protected attribute's groups in one window (pure; no state).

    ``counts`` maps attribute → group value → :class:`GroupCounts`. Returns one
    :class:`Disparity` per attribute and metric with at least two testable groups, with
    Holm-adjusted p-values over the whole window.
    """
    raw: list[tuple[str, str, dict[str, GroupCounts], Any]] = []
    for attr in sorted(counts):
        eligible = {g: c for g, c in counts[attr].items() if c.n >= config.min_group_size and g != OTHER_GROUP}
        if len(eligible) < 2:
            continue
        with_labels = any(c.label_pos + c.label_neg for c in eligible.values())
        for metric, s_attr, n_attr, _ in _TESTS:
            if metric != "selection_rate" and not with_labels:
                continue
            sub = {g: c for g, c in eligible.items() if getattr(c, n_attr) > 0}
            if len(sub) < 2:
                continue
            t = homogeneity_test(
                [getattr(c, s_attr) for c in sub.values()],
                [getattr(c, n_attr) for c in sub.values()],
                mc_draws=config.mc_draws,
            )
            raw.append((attr, metric, sub, t))
    adjusted = holm_adjust([t.p_value for *_, t in raw])
    out: list[Disparity] = []
    for (attr, metric, sub, t), p_adj in zip(raw, adjusted):
        rate_of, s_attr, n_attr = {m: (r, s, n) for m, s, n, r in _TESTS}[metric]
        rates = {g: getattr(c, rate_of) for g, c in sub.items()}
        hi_g = max(rates, key=lambda g: (rates[g], g))
        lo_g = min(rates, key=lambda g: (rates[g], g))
        diff = rates[hi_g] - rates[lo_g]
        groups = {
            g: {
                "n": getattr(c, n_attr),
                "rate": rates[g],
                "ci": list(wilson_interval(getattr(c, s_attr), getattr(c, n_attr), config.alpha)),
            }
            for g, c in sorted(sub.items())
        }
        extra: dict[str, Any] = {"highest_group": hi_g, "lowest_group": lo_g}
        if metric == "selection_rate":
            ratio = rates[lo_g] / rates[hi_g] if rates[hi_g] > 0 else math.nan
            extra["disparate_impact_ratio"] = None if math.isnan(ratio) else ratio
            practical = diff >= config.parity_difference_threshold or (
                not math.isnan(ratio) and ratio < config.disparate_impact_threshold
            )
            name = "demographic_parity"
        else:
            practical = diff >= config.odds_difference_threshold
            name = "equal_opportunity" if metric == "true_positive_rate" else "equalized_odds"
        excluded = {g: c.n for g, c in counts[attr].items() if g not in sub}
        if excluded:
            extra["untested_groups"] = dict(sorted(excluded.items()))
        extra["rate_metric"] = metric
        out.append(
            Disparity(
                attribute=attr,
                metric=name,
                value=diff,
                p_value=t.p_value,
                p_value_adjusted=p_adj,
                test=t.test,
                significant=p_adj < config.alpha,
                practical=practical,
                groups=groups,
                extra=extra,
            )
        )
    # Equalized odds is max(TPR difference, FPR difference): give the FPR finding that value.
    by_attr_tpr = {d.attribute: d.value for d in out if d.metric == "equal_opportunity"}
    final = []
    for d in out:
        if d.metric == "equalized_odds":
            fpr_diff = d.value
            eo_value = max(fpr_diff, by_attr_tpr.get(d.attribute, 0.0))
            extra = dict(d.extra, false_positive_rate_difference=fpr_diff,
                         true_positive_rate_difference=by_attr_tpr.get(d.attribute))
            d = Disparity(d.attribute, d.metric, eo_value, d.p_value, d.p_value_adjusted, d.test,
                          d.significant, d.practical, d.groups, extra)
        final.append(d)
    return final


def _severity(d: Disparity, config: FairnessConfig) -> Severity:
    ratio = d.extra.get("disparate_impact_ratio")
    if ratio is not None and ratio < config.disparate_impact_threshold / 1.6:  # below 0.5 by default
        return Severity.critical
    if (ratio is not None and ratio < config.disparate_impact_threshold) or d.value >= 0.2:
        return Severity.high
    return Severity.medium


@dataclass
class _WindowState:
    """Open window of one (subject, outcome kind)."""

    index: int  # time-window index, or sequence number of count windows
    start: float | None = None  # epoch seconds of the first event
    end: float | None = None  # epoch seconds of the last event
    n: int = 0
    late: int = 0
    counts: dict[str, dict[str, GroupCounts]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "start": self.start,
            "end": self.end,
            "n": self.n,
            "late": self.late,
            "counts": {a: {g: c.to_list() for g, c in gs.items()} for a, gs in self.counts.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> _WindowState:
        return cls(
            index=int(d["index"]),
            start=d.get("start"),
            end=d.get("end"),
            n=int(d.get("n", 0)),
            late=int(d.get("late", 0)),
            counts={a: {g: GroupCounts.from_list(v) for g, v in gs.items()} for a, gs in d.get("counts", {}).items()},
        )


def _epoch(ts: datetime | float | int) -> float:
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=UTC)
        return ts.timestamp()
    return float(ts)


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _subject_key(subject: Subject, kind: str) -> str:
    return "\x1f".join([subject.tenant, subject.model, subject.version or "", kind])


class CohortFairnessMonitor:
    """Streaming cohort-fairness detector; one instance serves many models.

    State is one open window per (tenant, model, version, outcome kind) holding six
    counters per (protected attribute, group) — bounded by ``max_groups_per_attribute``
    (further groups pool into ``__other__``, which is never tested).
    """

    def __init__(self, config: FairnessConfig) -> None:
        self.config = config
        self._windows: dict[str, _WindowState] = {}
        self._subjects: dict[str, tuple[Subject, str]] = {}

    # -- feeding ---------------------------------------------------------------------------
    def update(
        self,
        subject: Subject,
        ts: datetime | float,
        groups: Mapping[str, object],
        outcome: bool,
        label: bool | None = None,
        kind: str = "outcome",
    ) -> list[Finding]:
        """Count one event; returns the findings of any window this event closes."""
        cfg = self.config
        key = _subject_key(subject, kind)
        self._subjects[key] = (subject, kind)
        t = _epoch(ts)
        findings: list[Finding] = []
        w = self._windows.get(key)
        if cfg.window_seconds is not None:
            idx = math.floor(t / cfg.window_seconds)
            if w is not None and idx > w.index:
                findings = self._close(key)
                w = None
            if w is None:
                w = self._windows[key] = _WindowState(index=idx)
            elif idx < w.index:
                w.late += 1
        elif w is None:
            w = self._windows[key] = _WindowState(index=0)
        w.start = t if w.start is None else min(w.start, t)
        w.end = t if w.end is None else max(w.end, t)
        w.n += 1
        for attr in cfg.protected_attributes:
            value = groups.get(attr)
            if value is None or value == "":
                continue
            g = self._group_name(value)
            per_attr = w.counts.setdefault(attr, {})
            if g not in per_attr and len(per_attr) >= cfg.max_groups_per_attribute:
                g = OTHER_GROUP
            per_attr.setdefault(g, GroupCounts()).add(bool(outcome), label)
        if cfg.window_seconds is None and w.n >= cfg.window_size:
            findings.extend(self._close(key))
        return findings

    def tick(self, now: datetime | float) -> list[Finding]:
        """Close time windows that ended before ``now`` (call on a timer for quiet streams)."""
        if self.config.window_seconds is None:
            return []
        idx = math.floor(_epoch(now) / self.config.window_seconds)
        out: list[Finding] = []
        for key in [k for k, w in self._windows.items() if w.index < idx]:
            out.extend(self._close(key))
        return out

    def flush(self, subject: Subject | None = None, kind: str | None = None) -> list[Finding]:
        """Evaluate and close open windows now (all, or one subject's / kind's)."""
        out: list[Finding] = []
        for key, (s, k) in list(self._subjects.items()):
            if key not in self._windows:
                continue
            if subject is not None and s != subject:
                continue
            if kind is not None and k != kind:
                continue
            out.extend(self._close(key))
        return out

    # -- reading ---------------------------------------------------------------------------
    def current(self, subject: Subject, kind: str = "outcome") -> dict[str, dict[str, Any]]:
        """Live disparity metrics of the open window, per attribute (no tests)."""
        w = self._windows.get(_subject_key(subject, kind))
        if w is None:
            return {}
        return {
            a: {
                "groups": {g: {"n": c.n, "rate": c.rate} for g, c in sorted(gs.items())},
                **disparities(gs, with_labels=any(c.label_pos + c.label_neg for c in gs.values())),
            }
            for a, gs in w.counts.items()
        }

    # -- state -----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state (open windows and their subjects)."""
        return {"version": 2, "config": dataclasses.asdict(self.config),
                "windows": {key: self._window_entry(key) for key in self._windows}}

    def model_state(self, tenant: str, model: str) -> dict[str, Any] | None:
        """The open windows of one (tenant, model), in :meth:`snapshot`'s shape (None: none open)."""
        windows = {key: self._window_entry(key) for key in self._windows
                   if self._subjects[key][0].tenant == tenant and self._subjects[key][0].model == model}
        return {"version": 1, "windows": windows} if windows else None

    def _window_entry(self, key: str) -> dict[str, Any]:
        subject, kind = self._subjects[key]
        return {"subject": subject.model_dump(), "kind": kind, "window": self._windows[key].to_dict()}

    def restore_model(self, tenant: str, model: str, state: Mapping[str, Any]) -> int:
        """Load :meth:`model_state` output; windows already open here are kept. Returns how many it loaded."""
        loaded = 0
        for key, item in state.get("windows", {}).items():
            if key not in self._windows:
                self._subjects[key] = (Subject(**item["subject"]), item["kind"])
                self._windows[key] = _WindowState.from_dict(item["window"])
                loaded += 1
        return loaded

    def forget_model(self, tenant: str, model: str) -> None:
        """Drop the open windows of one (tenant, model)."""
        for key in [k for k, (s, _) in self._subjects.items() if s.tenant == tenant and s.model == model]:
            self._subjects.pop(key, None)
            self._windows.pop(key, None)

    @classmethod
    def restore(cls, state: Mapping[str, Any]) -> CohortFairnessMonitor:
        """Rebuild a monitor from :meth:`snapshot` output."""
        if state.get("version") != 2:
            raise ValueError(f"unsupported fairness snapshot version {state.get('version')!r}")
        config: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in state["config"].items()}
        m = cls(FairnessConfig(**config))
        for key, item in state.get("windows", {}).items():
            m._subjects[key] = (Subject(**item["subject"]), item["kind"])
            m._windows[key] = _WindowState.from_dict(item["window"])
        return m

    # -- internals -------------------------------------------------------------------------
    def _group_name(self, value: object) -> str:
        text = str(value)[:64]
        if self.config.hash_group_values:
            return "g_" + hashlib.sha256(text.encode()).hexdigest()[:12]
        return text

    def _close(self, key: str) -> list[Finding]:
        w = self._windows.pop(key)
        subject, kind = self._subjects[key]
        if w.n == 0 or w.start is None or w.end is None:
            return []
        cfg = self.config
        if cfg.window_seconds is not None:
            window = Window(start=_dt(w.index * cfg.window_seconds), end=_dt((w.index + 1) * cfg.window_seconds), n=w.n)
        else:
            window = Window(start=_dt(w.start), end=_dt(w.end), n=w.n)
        results = evaluate_window(w.counts, cfg)
        findings = [self._finding(subject, kind, window, d, len(results)) for d in results if d.alarm]
        if cfg.emit_window_summary:
            findings.append(self._summary(subject, kind, window, w, results))
        return findings

    def _finding(self, subject: Subject, kind: str, window: Window, d: Disparity, family: int) -> Finding:
        cfg = self.config
        lo, hi = d.extra["lowest_group"], d.extra["highest_group"]
        evidence = {
            "outcome_kind": kind,
            "attribute": d.attribute,
            "metric": d.metric,
            "value": d.value,
            "group": lo,
            "reference_group": hi,
            "ci": d.groups[lo]["ci"],
            "reference_ci": d.groups[hi]["ci"],
            "p_value": d.p_value,
            "p_value_adjusted": d.p_value_adjusted,
            "test": d.test,
            "alpha": cfg.alpha,
            "tests_in_window": family,
            "n": {g: v["n"] for g, v in d.groups.items()},
            "groups": d.groups,
            **{k: v for k, v in d.extra.items() if k not in ("lowest_group", "highest_group")},
        }
        ratio = d.extra.get("disparate_impact_ratio")
        ratio_txt = f", disparate impact {ratio:.2f}" if ratio is not None else ""
        summary = (
            f"{d.metric.replace('_', ' ')} gap on '{d.attribute}' for {kind} "
            f"({d.extra['rate_metric'].replace('_', ' ')}): {lo} "
            f"{d.groups[lo]['rate']:.3f} vs {hi} {d.groups[hi]['rate']:.3f} "
            f"(difference {d.value:.3f}{ratio_txt}, adjusted p={d.p_value_adjusted:.2g})"
        )
        return Finding.create(
            detector=DETECTOR,
            kind=d.metric,
            subject=subject,
            severity=_severity(d, cfg),
            score=float(d.value),
            summary=summary,
            evidence=evidence,
            window=window,
            occurred_at=window.end,
            key=f"{kind}:{d.attribute}:{d.metric}",
        )

    def _summary(self, subject: Subject, kind: str, window: Window, w: _WindowState, results: list[Disparity]) -> Finding:
        metrics = {
            a: {
                "groups": {g: {"n": c.n, "rate": None if c.n == 0 else c.rate} for g, c in sorted(gs.items())},
                **{
                    k: (None if isinstance(v, float) and math.isnan(v) else v)
                    for k, v in disparities(gs, with_labels=any(c.label_pos + c.label_neg for c in gs.values())).items()
                },
            }
            for a, gs in sorted(w.counts.items())
        }
        tests = [
            {"attribute": d.attribute, "metric": d.metric, "value": d.value, "p_value": d.p_value,
             "p_value_adjusted": d.p_value_adjusted, "alarm": d.alarm}
            for d in results
        ]
        return Finding.create(
            detector=DETECTOR,
            kind="fairness_window",
            subject=subject,
            severity=Severity.info,
            score=max((d.value for d in results), default=0.0),
            summary=f"fairness window for {kind}: {w.n} events, {sum(d.alarm for d in results)} disparities",
            evidence={"outcome_kind": kind, "attributes": metrics, "tests": tests, "late_events": w.late},
            window=window,
            occurred_at=window.end,
            key=f"{kind}:summary",
        )
