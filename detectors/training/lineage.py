"""Training runs as lineage records: the info finding of a run's start or end (run → dataset → version).

Training runs reach the store the way every detector output does (stream → ``warden.findings`` →
governance consumer), so no other topic or consumer path is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from detectors.finding import Finding, Subject


def run_lineage_finding(*, tenant: str, model: str, version: str, phase: Literal["run_started", "run_finished"],
                        run_id: str, base_version: str | None, output_version: str | None, dataset: str | None,
                        dataset_hash: str | None, status: str | None, params: Mapping[str, Any],
                        has_error: bool, event_id: str, occurred_at: datetime) -> Finding:
    """The info finding of one run's start or end.

    ``run_started`` is filed under the base version, ``run_finished`` under the version the run produced
    (``output_version``), else under ``version`` (the event's). An error text may quote data: only whether
    there was one is kept.
    """
    filed = (output_version if phase == "run_finished" else base_version) or version
    evidence: dict[str, object] = {
        "run_id": run_id, "phase": phase, "base_version": base_version, "dataset": dataset,
        "dataset_hash": dataset_hash, "output_version": output_version, "status": status,
        "params": dict(params), "at": occurred_at.isoformat(),
    }
    if has_error:
        evidence["has_error"] = True
    what = "started" if phase == "run_started" else f"finished ({status or 'unknown'})"
    target = f" → version {output_version}" if output_version else ""
    return Finding.create(detector="training", kind=phase, subject=Subject(tenant=tenant, model=model, version=filed),
                          severity="info", score=0.0, summary=f"training run {run_id} {what}{target}",
                          evidence=evidence, event_id=event_id, occurred_at=occurred_at, key=run_id)
