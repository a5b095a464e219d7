"""Findings, alerts and dead letters, newest first, with cursor pagination (acting on alerts:
``api.routes.alert_lifecycle``).

Reads are limited to the key's tenants. Dead letters carry no tenant (the payload may not even
parse), so only keys over every tenant may read them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from api.auth import READ_ROLES, Principal, allow
from api.deps import EngineDep
from api.schemas import AlertPage, DeadLetterPage, FindingPage
from detectors.finding import Severity
from store.models import AlertRow, DeadLetterRow, FindingRow
from store.repository import Page, page

router = APIRouter(prefix="/v1", tags=["records"])
SEVERITY_PATTERN = "^(" + "|".join(s.name for s in Severity) + ")$"


def _utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _dump(row: SQLModel) -> dict[str, Any]:
    data = {k: _utc(v) for k, v in row.model_dump().items()}
    if "severity" in data and isinstance(data["severity"], int):
        data["severity"] = Severity(data["severity"]).name
    return data


PageT = TypeVar("PageT", FindingPage, AlertPage, DeadLetterPage)


def _page(out: type[PageT], engine: Engine, model: Any, time_col: str, key_col: str, filters: list[Any],
          cursor: str | None, limit: int) -> PageT:
    try:
        result: Page = page(engine, model, time_col=time_col, key_col=key_col, filters=filters, cursor=cursor,
                            limit=limit)
    except ValueError as exc:
        raise HTTPException(400, {"error": "bad_cursor", "detail": str(exc)}) from exc
    return out.model_validate({"items": [_dump(r) for r in result.items], "next_cursor": result.next_cursor})


@router.get("/findings")
def list_findings(
    engine: EngineDep,
    event_id: str | None = None,
    detector: str | None = None,
    model: str | None = None,
    tenant: str | None = None,
    since: datetime | None = Query(None, description="occurred_at ≥ since (ISO 8601)"),
    until: datetime | None = Query(None, description="occurred_at < until (ISO 8601)"),
    cursor: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    version: str | None = None,
    severity: str | None = Query(None, pattern=SEVERITY_PATTERN, description="exactly this severity"),
    principal: Principal = Depends(allow(*READ_ROLES)),
) -> FindingPage:
    """Findings, filtered by event id, detector, model, version, severity, tenant and time range
    (roles: admin, operator, auditor)."""
    filters: list[Any] = []
    tenants = principal.scope(tenant)
    if tenants is not None:
        filters.append(FindingRow.tenant.in_(tenants))  # type: ignore[attr-defined]
    if event_id:
        filters.append(FindingRow.event_id == event_id)
    if detector:
        filters.append(FindingRow.detector == detector)
    if model:
        filters.append(FindingRow.model == model)
    if version:
        filters.append(FindingRow.version == version)
    if severity:
        filters.append(FindingRow.severity == int(Severity[severity]))
    if since:
        filters.append(FindingRow.occurred_at >= since)
    if until:
        filters.append(FindingRow.occurred_at < until)
    return _page(FindingPage, engine, FindingRow, "occurred_at", "finding_id", filters, cursor, limit)


@router.get("/alerts")
def list_alerts(
    engine: EngineDep,
    tenant: str | None = None,
    model: str | None = None,
    status: str | None = Query(None, pattern="^(triggered|acknowledged|resolved)$"),
    cursor: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    severity: str | None = Query(None, pattern=SEVERITY_PATTERN, description="exactly this severity"),
    principal: Principal = Depends(allow(*READ_ROLES)),
) -> AlertPage:
    """Alerts (one per dedup key and tenant), most recently seen first (roles: admin, operator, auditor)."""
    filters: list[Any] = []
    tenants = principal.scope(tenant)
    if tenants is not None:
        filters.append(AlertRow.tenant.in_(tenants))  # type: ignore[attr-defined]
    if model:
        filters.append(AlertRow.model == model)
    if status:
        filters.append(AlertRow.status == status)
    if severity:
        filters.append(AlertRow.severity == int(Severity[severity]))
    return _page(AlertPage, engine, AlertRow, "last_seen", "alert_id", filters, cursor, limit)


@router.get("/dlq")
def list_dead_letters(
    engine: EngineDep,
    code: str | None = None,
    source_topic: str | None = None,
    tenant: str | None = None,
    cursor: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    principal: Principal = Depends(allow(*READ_ROLES)),
) -> DeadLetterPage:
    """Payloads the stream refused, with the reason; the original bytes stay on ``warden.dlq``.

    A dead letter's tenant is the one its payload names (none when it did not parse that far).
    Roles: admin, operator, auditor; a tenant-scoped key sees the dead letters naming its tenants,
    a key over every tenant sees all, including those naming none."""
    filters: list[Any] = []
    tenants = principal.scope(tenant)
    if tenants is not None:
        filters.append(DeadLetterRow.tenant.in_(tenants))  # type: ignore[union-attr]
    if code:
        filters.append(DeadLetterRow.code == code)
    if source_topic:
        filters.append(DeadLetterRow.source_topic == source_topic)
    return _page(DeadLetterPage, engine, DeadLetterRow, "received_at", "dlq_id", filters, cursor, limit)
