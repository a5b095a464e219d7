"""Alert lifecycle routes: acknowledge, resolve, history, deliveries; silences (create, list, read, expire).

Writes need ``admin`` or ``operator``; reads ``admin``, ``operator`` or ``auditor``. Every route is
limited to the key's tenants (an alert or silence of another tenant is a 404). Acknowledging or
resolving notifies every destination that was paged (PagerDuty acknowledge/resolve, Slack, webhooks)
through the outbox, in the same transaction as the change and its audit entry.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.auth import ADMIN_OPERATOR, READ_ROLES, Principal, allow
from detectors.finding import Severity
from governance import alerting
from governance.alerting.outbox import delivery_log
from store.models import AlertRow, SilenceRow, to_utc

router = APIRouter(prefix="/v1", tags=["alert lifecycle"])


def _utc(value: Any) -> Any:
    return to_utc(value) if isinstance(value, datetime) else value


def _alert_view(row: AlertRow) -> dict[str, Any]:
    data = {k: _utc(v) for k, v in row.model_dump().items()}
    data["severity"] = Severity(row.severity).name
    return data


def _not_found(what: str, ident: str) -> HTTPException:
    return HTTPException(404, {"error": "not_found", "detail": f"no {what} {ident!r}"})


def _config(request: Request) -> alerting.AlertingConfig:
    return request.app.state.alerting


def _wake(request: Request) -> None:
    dispatcher = getattr(request.app.state, "dispatcher", None)
    if dispatcher is not None:
        dispatcher.wake()


class AlertAction(BaseModel):
    """Why a person acts on an alert (kept in the history and the audit trail)."""

    reason: str = Field(default="", max_length=2000)


def _act(request: Request, principal: Principal, alert_id: str, action: Literal["acknowledge", "resolve"],
         reason: str) -> dict[str, Any]:
    tenants = None if principal.all_tenants else list(principal.tenants or ())
    fn = alerting.acknowledge if action == "acknowledge" else alerting.resolve
    with Session(request.app.state.engine) as session:
        try:
            row = fn(session, alert_id, actor=principal.actor, reason=reason, tenants=tenants, config=_config(request))
        except alerting.AlertNotFound:
            raise _not_found("alert", alert_id) from None
        except alerting.AlertConflict as exc:
            raise HTTPException(409, {"error": "conflict", "detail": str(exc)}) from None
        session.commit()
        session.refresh(row)
        return _alert_view(row)


@router.post("/alerts/{alert_id}/acknowledge")
async def acknowledge_alert(request: Request, alert_id: str, body: AlertAction = Body(default_factory=AlertAction),
                            principal: Principal = Depends(allow(*ADMIN_OPERATOR))) -> dict[str, Any]:
    """Acknowledge a triggered alert: stops re-notification and escalation, tells whoever was paged
    (roles: admin, operator; audited). 409 on a resolved alert."""
    out = await asyncio.to_thread(_act, request, principal, alert_id, "acknowledge", body.reason)
    _wake(request)
    return out


@router.post("/alerts/{alert_id}/resolve")
async def resolve_alert(request: Request, alert_id: str, body: AlertAction = Body(default_factory=AlertAction),
                        principal: Principal = Depends(allow(*ADMIN_OPERATOR))) -> dict[str, Any]:
    """Resolve an alert and tell whoever was paged (roles: admin, operator; audited). A later firing
    reopens it as a new episode."""
    out = await asyncio.to_thread(_act, request, principal, alert_id, "resolve", body.reason)
    _wake(request)
    return out


def _history(request: Request, principal: Principal, alert_id: str) -> dict[str, Any]:
    with Session(request.app.state.engine) as session:
        alert = session.get(AlertRow, alert_id)
        if alert is None or not principal.allows(alert.tenant):
            raise _not_found("alert", alert_id)
        events = alerting.alert_history(session, alert_id)
        return {"alert": _alert_view(alert), "items": [
            {"seq": e.seq, "at": _utc(e.at), "kind": e.kind, "actor": e.actor, "detail": e.detail} for e in events]}


@router.get("/alerts/{alert_id}/history")
async def alert_history(request: Request, alert_id: str,
                        principal: Principal = Depends(allow(*READ_ROLES))) -> dict[str, Any]:
    """Every event of an alert, oldest first: triggered, reopened, suppressed, notification queued,
    notified / delivery failed, acknowledged, resolved, auto-resolved, re-notified, escalated
    (roles: admin, operator, auditor)."""
    return await asyncio.to_thread(_history, request, principal, alert_id)


def _log_view(r: Any) -> dict[str, Any]:
    return {"seq": r.seq, "at": _utc(r.at), "destination": r.destination, "alert_id": r.alert_id, "tenant": r.tenant,
            "event": r.event, "delivery_id": r.delivery_id, "attempt": r.attempt, "outcome": r.outcome,
            "status_code": r.status_code, "error": r.error, "latency_ms": r.latency_ms}


@router.get("/deliveries")
async def list_deliveries(
    request: Request,
    destination: str | None = None,
    alert_id: str | None = None,
    tenant: str | None = None,
    before_seq: int | None = Query(None, ge=1, description="page: attempts older than this seq"),
    limit: int = Query(100, ge=1, le=1000),
    principal: Principal = Depends(allow(*READ_ROLES)),
) -> dict[str, Any]:
    """The delivery log: every attempt, newest first, by destination, alert and tenant
    (roles: admin, operator, auditor)."""
    tenants = principal.scope(tenant)
    rows = await asyncio.to_thread(delivery_log, request.app.state.engine, destination=destination, alert_id=alert_id,
                                   tenants=tenants, before_seq=before_seq, limit=limit)
    items = [_log_view(r) for r in rows]
    return {"items": items, "next_before_seq": items[-1]["seq"] if len(items) == limit else None}


# ---------------------------------------------------------------- silences


class MatcherIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    value: str = Field(default="", max_length=1000)
    op: Literal["=", "!=", "=~", "!~"] = "="


class SilenceIn(BaseModel):
    """A silence: the tenant's alerts whose labels match every matcher notify nobody until ``ends_at``."""

    tenant: str = Field(min_length=1, max_length=200)
    matchers: list[MatcherIn] = Field(min_length=1, max_length=50)
    ends_at: datetime
    starts_at: datetime | None = None
    reason: str = Field(default="", max_length=2000)


def _silence_out(row: SilenceRow) -> dict[str, Any]:
    return alerting.silence_view(row)


def _create_silence(request: Request, principal: Principal, body: SilenceIn) -> dict[str, Any]:
    principal.require_tenant(body.tenant)
    with Session(request.app.state.engine) as session:
        try:
            row = alerting.create_silence(session, tenant=body.tenant, matchers=[m.model_dump() for m in body.matchers],
                                          ends_at=body.ends_at if body.ends_at.tzinfo else body.ends_at.replace(
                                              tzinfo=UTC), starts_at=body.starts_at,
                                          created_by=principal.actor, reason=body.reason)
        except ValueError as exc:
            raise HTTPException(422, {"error": "invalid", "detail": str(exc)}) from None
        session.commit()
        session.refresh(row)
        return _silence_out(row)


@router.post("/silences", status_code=201)
async def create_silence(request: Request, body: SilenceIn,
                         principal: Principal = Depends(allow(*ADMIN_OPERATOR))) -> dict[str, Any]:
    """Create a silence (roles: admin, operator; audited)."""
    return await asyncio.to_thread(_create_silence, request, principal, body)


def _list_silences(request: Request, principal: Principal, tenant: str | None, active: bool) -> dict[str, Any]:
    with Session(request.app.state.engine) as session:
        rows = alerting.list_silences(session, tenants=principal.scope(tenant), active_only=active)
        return {"items": [_silence_out(r) for r in rows]}


@router.get("/silences")
async def list_silences(request: Request, tenant: str | None = None, active: bool = False,
                        principal: Principal = Depends(allow(*READ_ROLES))) -> dict[str, Any]:
    """Silences, newest first; ``active=true`` keeps those in force now (roles: admin, operator, auditor)."""
    return await asyncio.to_thread(_list_silences, request, principal, tenant, active)


def _get_silence(request: Request, principal: Principal, silence_id: str) -> dict[str, Any]:
    with Session(request.app.state.engine) as session:
        row = session.get(SilenceRow, silence_id)
        if row is None or not principal.allows(row.tenant):
            raise _not_found("silence", silence_id)
        return _silence_out(row)


@router.get("/silences/{silence_id}")
async def get_silence(request: Request, silence_id: str,
                      principal: Principal = Depends(allow(*READ_ROLES))) -> dict[str, Any]:
    """One silence (roles: admin, operator, auditor)."""
    return await asyncio.to_thread(_get_silence, request, principal, silence_id)


def _expire_silence(request: Request, principal: Principal, silence_id: str) -> dict[str, Any]:
    tenants = None if principal.all_tenants else list(principal.tenants or ())
    with Session(request.app.state.engine) as session:
        try:
            row = alerting.expire_silence(session, silence_id, actor=principal.actor, tenants=tenants)
        except LookupError:
            raise _not_found("silence", silence_id) from None
        session.commit()
        session.refresh(row)
        return _silence_out(row)


@router.delete("/silences/{silence_id}")
async def expire_silence(request: Request, silence_id: str,
                         principal: Principal = Depends(allow(*ADMIN_OPERATOR))) -> dict[str, Any]:
    """Expire a silence now; it stays listed as expired (roles: admin, operator; audited). Triggers it
    held back go out at the dispatcher's next sweep."""
    out = await asyncio.to_thread(_expire_silence, request, principal, silence_id)
    _wake(request)
    return out
