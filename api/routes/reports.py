"""Compliance reports per tenant and period, as JSON, CSV or a printable HTML page."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from api.auth import READ_ROLES, Principal, allow
from governance.reports import build_report, report_csv, report_html, tenant_known

router = APIRouter(prefix="/v1/reports", tags=["reports"])


@router.get("/compliance/{tenant}", response_model=None)
async def compliance_report(
    request: Request,
    tenant: str,
    from_: datetime | None = Query(None, alias="from", description="period start (ISO 8601); default 30 days ago"),
    to: datetime | None = Query(None, description="period end, excluded (ISO 8601); default now"),
    format: Literal["json", "csv", "html"] = "json",
    principal: Principal = Depends(allow(*READ_ROLES)),
) -> Response:
    """PII findings by entity type and model; drift, anomaly and bias findings; alerts with time to
    acknowledge and resolve; jobs; alias switches; audit counts (roles: admin, operator, auditor).
    404 for a tenant the store knows nothing of (an empty report would look like a clean bill of health)."""
    principal.require_tenant(tenant)
    if not await asyncio.to_thread(tenant_known, request.app.state.engine, tenant):
        raise HTTPException(404, {"error": "unknown_tenant", "detail": "the store holds no record of this tenant"})
    end = to or datetime.now(UTC)
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    start = from_ or end - timedelta(days=30)
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    if end <= start:
        raise HTTPException(422, {"error": "invalid", "detail": "'to' must be after 'from'"})
    report: dict[str, Any] = await asyncio.to_thread(build_report, request.app.state.engine, tenant, start, end)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", tenant)[:100]  # headers are latin-1: keep the file name ASCII
    name = f"warden-compliance-{safe}-{start.date()}-{end.date()}"
    if format == "csv":
        return Response(report_csv(report), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    if format == "html":
        return HTMLResponse(report_html(report))
    return JSONResponse(report)
