"""Group fairness metrics from per-group counts, with fairlearn's definitions.

Everything here works on :class:`GroupCounts` (six integers per group), so a streaming
window, a CSV file and a unit test all compute the same numbers:

* selection rate of a group = favourable outcomes / events;
* demographic parity difference = max − min selection rate over groups;
* demographic parity ratio = min / max selection rate (the *disparate impact ratio*; the
  four-fifths rule asks for ≥ 0.8);
* true/false positive rate of a group = favourable outcomes among label-positive /
  label-negative events, 0 when the group has no such events (as fairlearn, via
  scikit-learn's normalised confusion matrix);
* equal opportunity difference = max − min TPR; equalized odds difference =
  max(TPR difference, FPR difference) (fairlearn's ``agg="worst_case"``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from detectors.bias.stats import homogeneity_test, wilson_interval

__all__ = ["GroupCounts", "count_groups", "disparities", "fairness_report"]


@dataclass
class GroupCounts:
    """Outcome counts of one group; ``tp``/``fp`` are favourable outcomes among label-positive/negative events."""

    n: int = 0
    favorable: int = 0
    label_pos: int = 0
    tp: int = 0
    label_neg: int = 0
    fp: int = 0

    def add(self, outcome: bool, label: bool | None = None) -> None:
        """Count one event: ``outcome`` favourable or not, ``label`` the ground truth if known."""
        self.n += 1
        self.favorable += bool(outcome)
        if label is None:
            return
        if label:
            self.label_pos += 1
            self.tp += bool(outcome)
        else:
            self.label_neg += 1
            self.fp += bool(outcome)

    def merge(self, other: GroupCounts) -> None:
        """Add another group's counts into this one."""
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)

    @property
    def rate(self) -> float:
        """Selection rate (favourable / n); NaN for an empty group."""
        return self.favorable / self.n if self.n else math.nan

    @property
    def tpr(self) -> float:
        """True positive rate; 0 when there are no label-positive events (fairlearn's convention)."""
        return self.tp / self.label_pos if self.label_pos else 0.0

    @property
    def fpr(self) -> float:
        """False positive rate; 0 when there are no label-negative events (fairlearn's convention)."""
        return self.fp / self.label_neg if self.label_neg else 0.0

    def to_list(self) -> list[int]:
        """Compact JSON form ``[n, favorable, label_pos, tp, label_neg, fp]``."""
        return [self.n, self.favorable, self.label_pos, self.tp, self.label_neg, self.fp]

    @classmethod
    def from_list(cls, values: Iterable[int]) -> GroupCounts:
        """Inverse of :meth:`to_list`."""
        return cls(*(int(v) for v in values))


def count_groups(
    groups: Iterable[object], outcomes: Iterable[bool], labels: Iterable[bool | None] | None = None
) -> dict[str, GroupCounts]:
    """Aggregate parallel sequences of group values, outcomes and (optional) labels."""
    out: dict[str, GroupCounts] = {}
    label_iter = iter(labels) if labels is not None else None
    for g, o in zip(groups, outcomes):
        lab = next(label_iter) if label_iter is not None else None
        out.setdefault(str(g), GroupCounts()).add(bool(o), lab)
    return out


def _spread(values: list[float]) -> float:
    return max(values) - min(values) if values else math.nan


def disparities(counts: Mapping[str, GroupCounts], *, with_labels: bool) -> dict[str, float]:
    """Between-group disparity metrics over the non-empty groups in ``counts``."""
    present = [c for c in counts.values() if c.n > 0]
    rates = [c.rate for c in present]
    out: dict[str, float] = {"demographic_parity_difference": _spread(rates)}
    hi, lo = (max(rates), min(rates)) if rates else (math.nan, math.nan)
    out["demographic_parity_ratio"] = lo / hi if hi and hi > 0 else math.nan
    out["disparate_impact_ratio"] = out["demographic_parity_ratio"]
    if with_labels:
        tprd = _spread([c.tpr for c in present])
        fprd = _spread([c.fpr for c in present])
        out["true_positive_rate_difference"] = tprd
        out["false_positive_rate_difference"] = fprd
        out["equal_opportunity_difference"] = tprd
        out["equalized_odds_difference"] = max(tprd, fprd)
    return out


def _num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def fairness_report(
    counts: Mapping[str, GroupCounts],
    *,
    with_labels: bool = False,
    alpha: float = 0.05,
    min_group_size: int = 30,
    four_fifths: float = 0.8,
) -> dict:
    """A JSON-ready report: per-group rates with Wilson intervals, disparity metrics,
    the four-fifths rule and homogeneity tests (over groups with ≥ ``min_group_size`` events).

    NaN values (undefined ratios, empty groups) are reported as ``None``.
    """
    groups: dict[str, dict] = {}
    for g in sorted(counts):
        c = counts[g]
        lo, hi = wilson_interval(c.favorable, c.n, alpha)
        row: dict = {"n": c.n, "n_favorable": c.favorable, "rate": _num(c.rate), "rate_ci": [lo, hi]}
        if with_labels:
            row.update(
                {
                    "n_label_positive": c.label_pos,
                    "tpr": c.tpr,
                    "tpr_ci": list(wilson_interval(c.tp, c.label_pos, alpha)),
                    "n_label_negative": c.label_neg,
                    "fpr": c.fpr,
                    "fpr_ci": list(wilson_interval(c.fp, c.label_neg, alpha)),
                }
            )
        row["tested"] = c.n >= min_group_size
        groups[g] = row
    report: dict = {"n": sum(c.n for c in counts.values()), "groups": groups}
    report.update({k: _num(v) for k, v in disparities(counts, with_labels=with_labels).items()})
    present = {g: c for g, c in counts.items() if c.n > 0}
    if present:
        ref = max(present, key=lambda g: (present[g].rate, g))
        worst = min(present, key=lambda g: (present[g].rate, g))
        ratio = report["disparate_impact_ratio"]
        report["four_fifths_rule"] = {
            "threshold": four_fifths,
            "passes": None if ratio is None else ratio >= four_fifths,
            "reference_group": ref,
            "lowest_group": worst,
        }
    tested = {g: c for g, c in counts.items() if c.n >= min_group_size}
    sig: dict = {"alpha": alpha, "min_group_size": min_group_size, "groups_tested": sorted(tested)}
    t = homogeneity_test([c.favorable for c in tested.values()], [c.n for c in tested.values()])
    sig["selection_rate"] = {"test": t.test, "p_value": t.p_value, "significant": t.p_value < alpha}
    if with_labels:
        for name, s_attr, n_attr in (("true_positive_rate", "tp", "label_pos"), ("false_positive_rate", "fp", "label_neg")):
            sub = [c for c in tested.values() if getattr(c, n_attr) >= 1]
            t = homogeneity_test([getattr(c, s_attr) for c in sub], [getattr(c, n_attr) for c in sub])
            sig[name] = {"test": t.test, "p_value": t.p_value, "significant": t.p_value < alpha}
    report["significance"] = sig
    return report
