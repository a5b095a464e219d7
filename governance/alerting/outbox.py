"""The dispatcher's side of the alert outbox: claim due notifications, record attempt outcomes.

Claiming is one ``UPDATE … WHERE id IN (SELECT … LIMIT n [FOR UPDATE SKIP LOCKED]) RETURNING``:
on PostgreSQL several dispatchers share the work without waiting on each other; on SQLite the one
statement is atomic (run a single dispatcher). A claimed row is ``sending`` with a lease; a
dispatcher that dies mid-send leaves a lease that expires, and the row is claimed again.

Order: a row is due only when no earlier row of the same destination and alert is still pending
or sending, so trigger → acknowledge → resolve reach each destination in that order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from store.models import AlertEventRow, AlertGroupRow, DeliveryLogRow, OutboxRow
from store.models import to_utc as as_utc

_O = OutboxRow.__table__  # type: ignore[attr-defined]  # SQLModel leaves the mapped __table__ undeclared
_G = AlertGroupRow.__table__  # type: ignore[attr-defined]  # SQLModel leaves the mapped __table__ undeclared
OPEN = ("pending", "sending")
OUTCOMES = ("delivered", "retry", "failed", "expired")


@dataclass(slots=True)
class OutboxItem:
    """A claimed notification."""

    id: int
    delivery_id: str
    destination: str
    alert_id: str
    tenant: str
    event: str
    group_key: str | None
    payload: dict[str, Any]
    attempts: int
    created_at: datetime


@dataclass(slots=True)
class AttemptResult:
    """The outcome of one attempt at one item (``next_attempt_at`` for a retry)."""

    item: OutboxItem
    outcome: str
    at: datetime
    status_code: int | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    latency_ms: float = 0.0


def _claimed(row: Sequence[Any], now: datetime) -> OutboxItem:
    """An item from a row of ``claim_due``'s RETURNING (``created_at`` last; ``now`` when it is missing)."""
    id_, delivery_id, destination, alert_id, tenant, event, group_key, payload, attempts, created_at = row
    return OutboxItem(id_, delivery_id, destination, alert_id, tenant, event, group_key, payload, attempts,
                      created_at=as_utc(created_at) or now)


def _item_id(item: OutboxItem) -> int:
    return item.id


def claim_due(engine: Engine, destination: str, *, limit: int, lease_s: float,
              now: datetime | None = None) -> list[OutboxItem]:
    """Claim up to ``limit`` due notifications of ``destination`` (oldest first) for ``lease_s``."""
    if limit <= 0:
        return []
    now = now or datetime.now(UTC)
    c, p = _O.alias("c"), _O.alias("p")
    earlier_open = (select(p.c.id).where(p.c.destination == c.c.destination, p.c.alert_id == c.c.alert_id,
                                         p.c.id < c.c.id, p.c.status.in_(OPEN))
                    .correlate(c).exists())
    due = or_(and_(c.c.status == "pending", c.c.next_attempt_at <= now),
              and_(c.c.status == "sending", c.c.lease_until < now))
    candidates = select(c.c.id).where(c.c.destination == destination, due, ~earlier_open).order_by(c.c.id).limit(limit)
    if engine.dialect.name == "postgresql":
        candidates = candidates.with_for_update(of=c, skip_locked=True)
    stmt = (update(_O).where(_O.c.id.in_(candidates.scalar_subquery()))
            .values(status="sending", lease_until=now + timedelta(seconds=lease_s), attempts=_O.c.attempts + 1)
            .returning(_O.c.id, _O.c.delivery_id, _O.c.destination, _O.c.alert_id, _O.c.tenant, _O.c.event,
                       _O.c.group_key, _O.c.payload, _O.c.attempts, _O.c.created_at))
    with Session(engine) as session:
        rows = session.execute(stmt).all()
        items = sorted((_claimed(r, now) for r in rows), key=_item_id)
        groups = sorted({i.group_key for i in items if i.group_key})
        if groups:  # the group flushes now: its next notification waits group_interval from here
            session.execute(update(_G).where(_G.c.destination == destination, _G.c.group_key.in_(groups))
                            .values(last_flush_at=now, next_flush_at=None))
        session.commit()
    return items


def record_results(engine: Engine, results: Sequence[AttemptResult]) -> None:
    """Store outcomes in one transaction: the outbox row's new state, one delivery-log row per
    attempt, and an alert-history event for final outcomes (delivered, failed, expired)."""
    if not results:
        return
    by: dict[str, list[dict[str, Any]]] = {o: [] for o in OUTCOMES}
    logs, events = [], []
    for r in results:
        i = r.item
        by[r.outcome].append({"b_id": i.id, "b_at": r.at, "b_code": r.status_code, "b_err": r.error,
                              "b_next": r.next_attempt_at or r.at})
        logs.append({"outbox_id": i.id, "delivery_id": i.delivery_id, "destination": i.destination,
                     "alert_id": i.alert_id, "tenant": i.tenant, "event": i.event, "attempt": i.attempts, "at": r.at,
                     "outcome": r.outcome, "status_code": r.status_code, "error": r.error,
                     "latency_ms": round(r.latency_ms, 3)})
        if r.outcome != "retry":
            kind = {"delivered": "notified", "failed": "delivery_failed", "expired": "delivery_expired"}[r.outcome]
            detail = {"destination": i.destination, "notification": i.event, "attempts": i.attempts,
                      "delivery_id": i.delivery_id, "status_code": r.status_code}
            if r.error:
                detail["error"] = r.error
            events.append({"alert_id": i.alert_id, "tenant": i.tenant, "at": r.at, "kind": kind,
                           "actor": "system:dispatcher", "detail": detail})
    mine = and_(_O.c.id == bindparam("b_id"), _O.c.status == "sending")
    with Session(engine) as session:
        # delivered first: a 2xx is on record before anything else of the batch
        if by["delivered"]:
            session.execute(update(_O).where(mine).values(
                status="delivered", delivered_at=bindparam("b_at"), last_status_code=bindparam("b_code"),
                last_error=None, lease_until=None), by["delivered"], execution_options={"synchronize_session": False})
        if by["retry"]:
            session.execute(update(_O).where(mine).values(
                status="pending", next_attempt_at=bindparam("b_next"), last_status_code=bindparam("b_code"),
                last_error=bindparam("b_err"), lease_until=None), by["retry"],
                execution_options={"synchronize_session": False})
        for final in ("failed", "expired"):
            if by[final]:
                session.execute(update(_O).where(mine).values(
                    status=final, last_status_code=bindparam("b_code"), last_error=bindparam("b_err"),
                    lease_until=None), by[final], execution_options={"synchronize_session": False})
        session.execute(insert(DeliveryLogRow.__table__), logs)  # type: ignore[attr-defined]  # SQLModel leaves the mapped __table__ undeclared
        if events:
            session.execute(insert(AlertEventRow.__table__), events)  # type: ignore[attr-defined]  # SQLModel leaves the mapped __table__ undeclared
        session.commit()


def outbox_counts(engine: Engine, destination: str | None = None) -> dict[str, int]:
    """Outbox rows by status (all destinations, or one)."""
    stmt = select(_O.c.status, func.count()).group_by(_O.c.status)
    if destination is not None:
        stmt = stmt.where(_O.c.destination == destination)
    with Session(engine) as session:
        return {s: int(n) for s, n in session.execute(stmt).tuples()}


def next_due_at(engine: Engine) -> datetime | None:
    """The earliest time a pending row becomes due (None when nothing is pending)."""
    with Session(engine) as session:
        value = session.execute(select(func.min(_O.c.next_attempt_at)).where(_O.c.status == "pending")).scalar()
    return as_utc(value)


def delivery_log(engine: Engine, *, destination: str | None = None, alert_id: str | None = None,
                 tenants: Sequence[str] | None = None, before_seq: int | None = None,
                 limit: int = 100) -> list[DeliveryLogRow]:
    """Delivery attempts, newest first, filtered by destination, alert and tenants."""
    stmt = select(DeliveryLogRow)
    if destination is not None:
        stmt = stmt.where(col(DeliveryLogRow.destination) == destination)
    if alert_id is not None:
        stmt = stmt.where(col(DeliveryLogRow.alert_id) == alert_id)
    if tenants is not None:
        stmt = stmt.where(col(DeliveryLogRow.tenant).in_(list(tenants)))
    if before_seq is not None:
        stmt = stmt.where(col(DeliveryLogRow.seq) < before_seq)
    stmt = stmt.order_by(col(DeliveryLogRow.seq).desc()).limit(limit)
    with Session(engine) as session:
        return list(session.execute(stmt).scalars())
