"""Idempotent writes and paginated reads of the governance store.

Every write is an ``INSERT … ON CONFLICT DO NOTHING`` keyed by the stream's ids, so a batch that
is delivered again after a crash changes nothing. Alerts fold decisions by dedup key; a decision
counts toward its alert only the first time it is stored.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import and_, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from contracts.dead_letter import DeadLetter
from contracts.decision import Decision
from detectors.finding import Finding
from store.models import to_utc
from store.pg_bulk import unnest_insert

Row = TypeVar("Row", bound=SQLModel)


def upsert_statement(engine: Engine, table: Any):
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
        # the stream may tie a finding to a user by keyed hash only (governance.retention.user_hash)
        "user_hash": f.evidence.get("user_hash") if isinstance(f.evidence.get("user_hash"), str) else None,
        "occurred_at": to_utc(f.occurred_at),  # naive = UTC, stored as such on every database (rollup buckets agree)
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
    stmt = upsert_statement(engine, table).on_conflict_do_nothing(index_elements=[key]).returning(table.c[key])
    result = session.connection().execute(stmt, unique)
    return {r[0] for r in result}


# ---------------------------------------------------------------- reads


def encode_cursor(ts: datetime, key: str) -> str:
    return base64.urlsafe_b64encode(f"{ts.isoformat()}|{key}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Parse a cursor; raises ValueError on a malformed one."""
    try:
        ts, key = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        return datetime.fromisoformat(ts), key
    except Exception as exc:
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
        rows: list[Any] = list(session.execute(stmt).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    nxt = encode_cursor(getattr(rows[-1], time_col), getattr(rows[-1], key_col)) if more and rows else None
    return Page(items=rows, next_cursor=nxt)
