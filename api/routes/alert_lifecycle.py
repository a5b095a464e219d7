"""Alert lifecycle routes: acknowledge, resolve, history, deliveries; silences (create, list, read, expire).

Writes need ``admin`` or ``operator``; reads ``admin``, ``operator`` or ``auditor``. Every route is
limited to the key's tenants (an alert or silence of another tenant is a 404). Acknowledging or
resolving notifies every destination that was paged (PagerDuty acknowledge/resolve, Slack, webhooks)
through the outbox, in the same transaction as the change and its audit entry.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Query
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.auth import ADMIN_OPERATOR, READ_ROLES, Principal, allow
from api.deps import AlertingDep, DispatcherWakeDep, EngineDep, SessionDep
from api.schemas import (
    Alert,
    AlertEvent,
    AlertHistory,
    DeliveryAttempt,
    DeliveryPage,
    Matcher,
    Silence,
    SilenceList,
)
from detectors.finding import Severity
from governance import alerting
from governance.alerting.outbox import delivery_log
from store.models import AlertRow, SilenceRow, to_utc

router = APIRouter(prefix="/v1", tags=["alert lifecycle"])


def _utc(value: Any) -> Any:
    return to_utc(value) if isinstance(value, datetime) else value


def _alert_view(row: AlertRow) -> Alert:
    data = {k: _utc(v) for k, v in row.model_dump().items()}
    data["severity"] = Severity(row.severity).name
    return Alert.model_validate(data)


def _not_found(what: str, ident: str) -> HTTPException:
    return HTTPException(404, {"error": "not_found", "detail": f"no {what} {ident!r}"})


class AlertAction(BaseModel):
    """Why a person acts on an alert (kept in the history and the audit trail)."""

    reason: str = Field(default="", max_length=2000)


def _act(session: Session, config: alerting.AlertingConfig, principal: Principal, alert_id: str,
         action: Literal["acknowledge", "resolve"], reason: str) -> Alert:
    tenants = None if principal.all_tenants else list(principal.tenants or ())
    fn = alerting.acknowledge if action == "acknowledge" else alerting.resolve
    try:
        row = fn(session, alert_id, actor=principal.actor, reason=reason, tenants=tenants, config=config)
    except alerting.AlertNotFound:
        raise _not_found("alert", alert_id) from None
    except alerting.AlertConflict as exc:
        raise HTTPException(409, {"error": "conflict", "detail": str(exc)}) from None
    session.commit()
    session.refresh(row)
    return _alert_view(row)


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge_alert(session: SessionDep, config: AlertingDep, wake: DispatcherWakeDep, alert_id: str,
                      body: AlertAction = Body(default_factory=AlertAction),
                      principal: Principal = Depends(allow(*ADMIN_OPERATOR))) -> Alert:
    """Acknowledge a triggered alert: stops re-notification and escalation, tells whoever was paged
    (roles: admin, operator; audited). 409 on a resolved alert."""
    out = _act(session, config, principal, alert_id, "acknowledge", body.reason)
    wake()
    return out


@router.post("/alerts/{alert_id}/resolve")
def resolve_alert(session: SessionDep, config: AlertingDep, wake: DispatcherWakeDep, alert_id: str,
                  body: AlertAction = Body(default_factory=AlertAction),
                  principal: Principal = Depends(allow(*ADMIN_OPERATOR))) -> Alert:
    """Resolve an alert and tell whoever was paged (roles: admin, operator; audited). A later firing
    reopens it as a new episode."""
    out = _act(session, config, principal, alert_id, "resolve", body.reason)
    wake()
    return out


@router.get("/alerts/{alert_id}/history")
def alert_history(session: SessionDep, alert_id: str,
                  principal: Principal = Depends(allow(*READ_ROLES))) -> AlertHistory:
    """Every event of an alert, oldest first: triggered, reopened, suppressed, notification queued,
    notified / delivery failed, acknowledged, resolved, auto-resolved, re-notified, escalated
    (roles: admin, operator, auditor)."""
    alert = session.get(AlertRow, alert_id)
    if alert is None or not principal.allows(alert.tenant):
        raise _not_found("alert", alert_id)
    events = alerting.alert_history(session, alert_id)
    return AlertHistory(alert=_alert_view(alert), items=[
        AlertEvent(seq=e.seq, at=_utc(e.at), kind=e.kind, actor=e.actor, detail=e.detail) for e in events])


def _log_view(r: Any) -> DeliveryAttempt:
    return DeliveryAttempt(
        seq=r.seq, at=_utc(r.at), destination=r.destination, alert_id=r.alert_id, tenant=r.tenant, event=r.event,
        delivery_id=r.delivery_id, attempt=r.attempt, outcome=r.outcome, status_code=r.status_code, error=r.error,
        latency_ms=r.latency_ms)


@router.get("/deliveries")
def list_deliveries(
    engine: EngineDep,
    destination: str | None = None,
    alert_id: str | None = None,
    tenant: str | None = None,
    before_seq: int | None = Query(None, ge=1, description="page: attempts older than this seq"),
    limit: int = Query(100, ge=1, le=1000),
    principal: Principal = Depends(allow(*READ_ROLES)),
) -> DeliveryPage:
    """The delivery log: every attempt, newest first, by destination, alert and tenant
    (roles: admin, operator, auditor)."""
    tenants = principal.scope(tenant)
    rows = delivery_log(engine, destination=destination, alert_id=alert_id, tenants=tenants, before_seq=before_seq,
                        limit=limit)
    items = [_log_view(r) for r in rows]
    return DeliveryPage(items=items, next_before_seq=items[-1].seq if len(items) == limit else None)


# ---------------------------------------------------------------- silences


class MatcherIn(Matcher):
    name: str = Field(min_length=1, max_length=200)
    value: str = Field(default="", max_length=1000)


class SilenceIn(BaseModel):
    """A silence: the tenant's alerts whose labels match every matcher notify nobody until ``ends_at``."""

    tenant: str = Field(min_length=1, max_length=200)
    matchers: list[MatcherIn] = Field(min_length=1, max_length=50)
    ends_at: datetime
    starts_at: datetime | None = None
    reason: str = Field(default="", max_length=2000)


def _silence_out(row: SilenceRow) -> Silence:
    return Silence.model_validate(alerting.silence_view(row))


@router.post("/silences", status_code=201)
def create_silence(session: SessionDep, body: SilenceIn,
                   principal: Principal = Depends(allow(*ADMIN_OPERATOR))) -> Silence:
    """Create a silence (roles: admin, operator; audited)."""
    principal.require_tenant(body.tenant)
    try:
        row = alerting.create_silence(session, tenant=body.tenant, matchers=[m.model_dump() for m in body.matchers],
                                      ends_at=body.ends_at if body.ends_at.tzinfo else body.ends_at.replace(tzinfo=UTC),
                                      starts_at=body.starts_at, created_by=principal.actor, reason=body.reason)
    except ValueError as exc:
        raise HTTPException(422, {"error": "invalid", "detail": str(exc)}) from None
    session.commit()
    session.refresh(row)
    return _silence_out(row)


@router.get("/silences")
def list_silences(session: SessionDep, tenant: str | None = None, active: bool = False,
                  principal: Principal = Depends(allow(*READ_ROLES))) -> SilenceList:
    """Silences, newest first; ``active=true`` keeps those in force now (roles: admin, operator, auditor)."""
    rows = alerting.list_silences(session, tenants=principal.scope(tenant), active_only=active)
    return SilenceList(items=[_silence_out(r) for r in rows])


@router.get("/silences/{silence_id}")
def get_silence(session: SessionDep, silence_id: str, principal: Principal = Depends(allow(*READ_ROLES))) -> Silence:
    """One silence (roles: admin, operator, auditor)."""
    row = session.get(SilenceRow, silence_id)
    if row is None or not principal.allows(row.tenant):
        raise _not_found("silence", silence_id)
    return _silence_out(row)


@router.delete("/silences/{silence_id}")
def expire_silence(session: SessionDep, wake: DispatcherWakeDep, silence_id: str,
                   principal: Principal = Depends(allow(*ADMIN_OPERATOR))) -> Silence:
    """Expire a silence now; it stays listed as expired (roles: admin, operator; audited). Triggers it
    held back go out at the dispatcher's next sweep."""
    tenants = None if principal.all_tenants else list(principal.tenants or ())
    try:
        row = alerting.expire_silence(session, silence_id, actor=principal.actor, tenants=tenants)
    except LookupError:
        raise _not_found("silence", silence_id) from None
    session.commit()
    session.refresh(row)
    out = _silence_out(row)
    wake()
    return out
