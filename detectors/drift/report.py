"""Human drift report: Evidently's DataDriftPreset rendered from stored window samples.

Evidently is for people (rich HTML, per-column plots); Warden's own tests decide in the stream.
:func:`render_drift_report` takes the reference and current samples (pandas frames, or the row
lists of :meth:`detectors.drift.monitor.DriftMonitor.window_samples`) and returns the HTML page and the
report's JSON. Column kinds come from the feature catalogue, so Evidently never guesses them.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from detectors.features.tabular import CATEGORICAL_FEATURES, NUMERIC_FEATURES


@dataclass(frozen=True)
class DriftReport:
    """A rendered report: ``html`` (a full page) and ``data`` (Evidently's JSON as a dict)."""

    html: str
    data: dict[str, Any]


def _frame(rows: pd.DataFrame | Sequence[dict[str, Any]]) -> pd.DataFrame:
    return rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))


def _columns(ref: pd.DataFrame, cur: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]
             ) -> tuple[list[str], list[str]]:
    """Columns present on both sides with at least one value on each."""
    def ok(c: str) -> bool:
        return c in ref and c in cur and ref[c].notna().any() and cur[c].notna().any()
    return [c for c in numeric if ok(c)], [c for c in categorical if ok(c)]


def render_drift_report(
    reference: pd.DataFrame | Sequence[dict[str, Any]],
    current: pd.DataFrame | Sequence[dict[str, Any]],
    *,
    numeric: Sequence[str] = NUMERIC_FEATURES,
    categorical: Sequence[str] = CATEGORICAL_FEATURES,
    title: str | None = None,
) -> DriftReport:
    """Render Evidently's data-drift report of ``current`` against ``reference``.

    Only feature columns are used (never raw text), so the report carries no PII.
    """
    ref, cur = _frame(reference), _frame(current)
    num, cat = _columns(ref, cur, numeric, categorical)
    if not num and not cat:
        raise ValueError("no feature column has values in both samples")
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    for c in num:
        ref[c] = pd.to_numeric(ref[c], errors="coerce")
        cur[c] = pd.to_numeric(cur[c], errors="coerce")
    for c in cat:
        ref[c] = ref[c].astype(str)
        cur[c] = cur[c].astype(str)
    cols = num + cat
    definition = DataDefinition(numerical_columns=num, categorical_columns=cat)
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(cur[cols], data_definition=definition),
        Dataset.from_pandas(ref[cols], data_definition=definition),
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "report.html")
        snapshot.save_html(path)
        with open(path, encoding="utf-8") as fh:
            html = fh.read()
    data = json.loads(snapshot.json())
    if title:
        data["title"] = title
    return DriftReport(html=html, data=data)
