"""Drift reports for people: Evidently renders the window samples the stream stored with a drift finding.

Warden's own statistics decide in the stream; this page shows the same reference and current
windows through Evidently's report (feature columns only — no text, so no PII).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from api.auth import Principal, allow
from api.deps import EngineDep
from api.schemas import DriftReportData
from store.models import FindingRow

router = APIRouter(prefix="/v1", tags=["drift"])


def _latest(engine: Engine, model: str, tenant: str, version: str | None) -> FindingRow | None:
    stmt = select(FindingRow).where(col(FindingRow.detector) == "drift", col(FindingRow.kind) == "distribution_drift",
                                    col(FindingRow.model) == model, col(FindingRow.tenant) == tenant)
    if version:
        stmt = stmt.where(col(FindingRow.version) == version)
    with Session(engine) as session:
        return session.execute(stmt.order_by(col(FindingRow.occurred_at).desc()).limit(1)).scalars().first()


@router.get("/models/{name}/drift-report", response_model=DriftReportData, responses={200: {
    "description": "Evidently's HTML report (``format=html``, the default) or its data (``format=json``)",
    "content": {"text/html": {"schema": {"type": "string"}}}}})
def drift_report(
    engine: EngineDep,
    name: str,
    tenant: str = Query(..., min_length=1, max_length=200),
    version: str | None = None,
    format: str = Query("html", pattern="^(html|json)$"),
    principal: Principal = Depends(allow("admin", "operator", "auditor")),
) -> DriftReportData | HTMLResponse:
    """Evidently's data-drift report of the model's latest drifted window against its reference."""
    from detectors.drift.report import render_drift_report

    principal.require_tenant(tenant)
    row = _latest(engine, name, tenant, version)
    samples = (row.evidence or {}).get("samples") if row is not None else None
    if row is None or not samples:
        raise HTTPException(404, {"error": "no_drift_window",
                                  "detail": f"no drifted window with samples is stored for model {name!r} yet"})
    report = render_drift_report(
        samples["reference"], samples["current"],
        title=f"Drift of {row.tenant}/{row.model} v{row.version}: window ending {row.occurred_at.isoformat()}",
    )
    if format == "json":
        return DriftReportData(finding_id=row.finding_id, drifted=row.evidence.get("drifted"), report=report.data)
    return HTMLResponse(report.html)
