"""Idempotent writes and paginated reads of the governance store.

Every write is an ``INSERT … ON CONFLICT DO NOTHING`` keyed by the stream's ids, so a batch that
is delivered again after a crash changes nothing. Alerts fold decisions by dedup key; a decision
counts toward its alert only the first time it is stored.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from detectors.finding import Finding, stable_id
from contracts.decision import Decision, DecisionAction
from store.alerting import enqueue_notifications
from store.models import AlertRow, DeadLetterRow, DecisionRow, FindingRow
from store.pg_bulk import unnest_insert
from contracts.dead_letter import DeadLetter

Row = TypeVar("Row", bound=SQLModel)


def _insert(engine: Engine, table: Any):  # type: ignore[no-untyped-def]
    return (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(table)


def finding_row(f: Finding) -> dict[str, Any]:
    return {
        "finding_id": f.finding_id,
        "detector": f.detector,
        "kind": f.kind,
        "tenant": f.subject.tenant,
        "model": f.subject.model,
        "version": f.subject.version,
        "severity": int(f.severity),
        "score": f.score,
        "summary": f.summary,
        "evidence": f.evidence,
        "event_id": f.event_id,
        "window_start": f.window.start if f.window else None,
        "window_end": f.window.end if f.window else None,
        "window_n": f.window.n if f.window else None,
        # the stream may tie a finding to a user by keyed hash only (store.lifecycle.user_hash)
        "user_hash": f.evidence.get("user_hash") if isinstance(f.evidence.get("user_hash"), str) else None,
        "occurred_at": f.occurred_at,
    }


def decision_row(d: Decision) -> dict[str, Any]:
    return {
        "decision_id": d.decision_id,
        "policy_id": d.policy_id,
        "policy_version": d.policy_version,
        "mode": d.mode,
        "action": d.action.value,
        "tenant": d.subject.tenant,
        "model": d.subject.model,
        "version": d.subject.version,
        "severity": int(d.severity),
        "summary": d.summary,
        "detector": d.detector,
        "dedup_key": d.dedup_key,
        "route": d.route,
        "finding_ids": d.finding_ids,
        "job": d.job.model_dump() if d.job else None,
        "tags": d.tags,
        "created_at": d.created_at,
    }


def dead_letter_row(d: DeadLetter) -> dict[str, Any]:
    return {
        "dlq_id": d.dlq_id,
        "code": d.code,
        "reason": d.reason,
        "source_topic": d.source_topic,
        "partition": d.partition,
        "offset": d.offset,
        "event_id": d.event_id,
        "tenant": d.tenant,
        "original_size": d.original_size,
        "original_sha256": hashlib.sha256(base64.b64decode(d.original_b64)).hexdigest(),
        "received_at": d.received_at,
    }


@dataclass(slots=True)
class Persisted:
    """How many records of a batch were new (the rest were duplicates)."""

    findings: int = 0
    decisions: int = 0
    dead_letters: int = 0
    alerts_touched: int = 0


def insert_new(session: Session, engine: Engine, model: Any, key: str, rows: list[dict[str, Any]]) -> set[str]:
    """Insert ``rows`` into ``model``'s table, skipping ids already stored; returns the ids that were new."""
    if not rows:
        return set()
    # de-duplicate inside the batch first: ON CONFLICT cannot see rows of the same statement twice
    unique = list({r[key]: r for r in rows}.values())
    # Core executemany on the table: one cached compiled statement that SQLAlchemy's "insertmanyvalues"
    # batches into multi-row INSERTs with RETURNING; ``.values(list)`` recompiled a statement of
    # rows × columns bind parameters on every batch (≈ 14 ms for 50 findings).
    table = model.__table__
    if engine.dialect.name == "postgresql":  # one array per column: a statement text psycopg can prepare
        return unnest_insert(session.connection(), table, unique, key)
    stmt = _insert(engine, table).on_conflict_do_nothing(index_elements=[key]).returning(table.c[key])
    result = session.connection().execute(stmt, unique)
    return {r[0] for r in result}


def _touch_alerts(session: Session, engine: Engine, decisions: Sequence[Decision]) -> int:
    """Fold fresh enforce-mode alert decisions into their alerts with one multi-row upsert.

    Decisions of one batch that share an alert are folded first (an upsert cannot touch a row
    twice): the count grows by their number, the latest decision gives summary and severity.
    """
    folded: dict[str, dict[str, Any]] = {}
    touched = 0
    for d in decisions:
        if d.action is not DecisionAction.alert or d.mode != "enforce":
            continue
        touched += 1
        key = d.dedup_key or d.decision_id
        alert_id = stable_id("alert", d.subject.tenant, key)
        row = folded.get(alert_id)
        if row is None:
            folded[alert_id] = {
                "alert_id": alert_id, "dedup_key": key, "tenant": d.subject.tenant, "model": d.subject.model,
                "severity": int(d.severity), "status": "triggered", "summary": d.summary, "route": d.route,
                "policy_id": d.policy_id, "count": 1, "last_decision_id": d.decision_id,
                "first_seen": d.created_at, "last_seen": d.created_at,
            }
        else:
            row.update(count=row["count"] + 1, severity=int(d.severity), summary=d.summary,
                       last_decision_id=d.decision_id, first_seen=min(row["first_seen"], d.created_at),
                       last_seen=max(row["last_seen"], d.created_at))
    if folded:
        table = AlertRow.__table__
        stmt = _insert(engine, table)
        session.connection().execute(stmt.on_conflict_do_update(
            index_elements=["alert_id"],
            set_={
                "count": table.c.count + stmt.excluded.count,
                "last_decision_id": stmt.excluded.last_decision_id,
                "summary": stmt.excluded.summary,
                "severity": stmt.excluded.severity,
                "last_seen": stmt.excluded.last_seen,
            },
        ), list(folded.values()))
    return touched


def persist_batch(
    engine: Engine,
    findings: Iterable[Finding] = (),
    decisions: Iterable[Decision] = (),
    dead_letters: Iterable[DeadLetter] = (),
) -> Persisted:
    """Store a batch in one transaction; duplicates (same ids) are ignored."""
    findings, decisions, dead_letters = list(findings), list(decisions), list(dead_letters)
    out = Persisted()
    with Session(engine) as session:
        out.findings = len(insert_new(session, engine, FindingRow, "finding_id", [finding_row(f) for f in findings]))
        new_ids = insert_new(session, engine, DecisionRow, "decision_id", [decision_row(d) for d in decisions])
        out.decisions = len(new_ids)
        seen: set[str] = set()
        fresh = [d for d in decisions if d.decision_id in new_ids and not (d.decision_id in seen or seen.add(d.decision_id))]
        out.alerts_touched = _touch_alerts(session, engine, fresh)
        enqueue_notifications(session, fresh)  # transactional outbox: notifications commit with the alerts
        out.dead_letters = len(
            insert_new(session, engine, DeadLetterRow, "dlq_id", [dead_letter_row(d) for d in dead_letters])
        )
        session.commit()
    return out


# ---------------------------------------------------------------- reads


def encode_cursor(ts: datetime, key: str) -> str:
    return base64.urlsafe_b64encode(f"{ts.isoformat()}|{key}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Parse a cursor; raises ValueError on a malformed one."""
    try:
        ts, key = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(ts), key
    except Exception as exc:  # noqa: BLE001
        raise ValueError("malformed cursor") from exc


@dataclass(slots=True)
class Page:
    """A page of rows, newest first, and the cursor of the next page (None at the end)."""

    items: list[Any]
    next_cursor: str | None


def page(
    engine: Engine,
    model: type[Row],
    *,
    time_col: str,
    key_col: str,
    filters: Sequence[Any] = (),
    cursor: str | None = None,
    limit: int = 100,
) -> Page:
    """Keyset pagination over ``(time_col, key_col)`` descending."""
    tcol, kcol = getattr(model, time_col), getattr(model, key_col)
    conds = list(filters)
    if cursor:
        ts, key = decode_cursor(cursor)
        conds.append(or_(tcol < ts, and_(tcol == ts, kcol < key)))
    stmt = select(model).where(*conds).order_by(tcol.desc(), kcol.desc()).limit(limit + 1)
    with Session(engine) as session:
        rows = list(session.execute(stmt).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = encode_cursor(getattr(rows[-1], time_col), getattr(rows[-1], key_col)) if more and rows else None
    return Page(items=rows, next_cursor=nxt)
