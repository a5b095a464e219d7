"""Data lifecycle: retention per kind of record with a purge job, and erasure of a user's data.

Users are known to the store only by a keyed hash (HMAC-SHA256 with the deployment's PII key), so
the raw id never lands in a table, a log or an audit entry. Purges and erasures are audited; the
audit trail itself is never purged (it holds no raw PII by construction). Both keep the rollups of the
findings (:mod:`store.rollups`) in step, in the same transaction.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from pydantic import BaseModel, Field
from sqlalchemy import Delete, delete, func, select
from sqlalchemy.engine import CursorResult, Engine
from sqlmodel import Session, col

from governance import audit
from store import rollups
from store.models import (
    AlertRow,
    DeadLetterRow,
    DecisionRow,
    FindingRow,
    GovernanceSettingRow,
    SampleLabelRow,
    SampleRow,
)

RETENTION_KEY = "retention"


class Retention(BaseModel):
    """Days to keep each kind of record (None = keep forever)."""

    findings_days: int | None = Field(default=90, ge=1, le=36500)
    decisions_days: int | None = Field(default=90, ge=1, le=36500)
    alerts_days: int | None = Field(default=365, ge=1, le=36500)
    dead_letters_days: int | None = Field(default=30, ge=1, le=36500)
    samples_days: int | None = Field(default=90, ge=1, le=36500)
    """Redacted prompt/response samples and feedback labels kept as training history."""


def user_hash(pii_key: str | bytes, user_id: str) -> str:
    """The keyed hash (HMAC-SHA256 hex) under which the store knows a user."""
    key = pii_key.encode() if isinstance(pii_key, str) else pii_key
    if not key:
        raise ValueError("a PII key is required to hash user ids")
    return hmac.new(key, user_id.encode("utf-8"), hashlib.sha256).hexdigest()


def get_retention(engine: Engine, default: Retention | None = None) -> Retention:
    """The stored retention, or ``default`` (the service's settings) when none was set."""
    with Session(engine) as session:
        row = session.get(GovernanceSettingRow, RETENTION_KEY)
    if row is None:
        return default or Retention()
    return Retention.model_validate(row.value)


def set_retention(session: Session, retention: Retention, *, actor: str) -> Retention:
    """Store a new retention in the caller's transaction, audited with before and after."""
    row = session.get(GovernanceSettingRow, RETENTION_KEY)
    before = dict(row.value) if row else None
    now = datetime.now(UTC)
    if row is None:
        row = GovernanceSettingRow(key=RETENTION_KEY, value=retention.model_dump(), updated_by=actor, updated_at=now)
    else:
        row.value, row.updated_by, row.updated_at = retention.model_dump(), actor, now
    session.add(row)
    session.flush()
    audit.append(session, actor=actor, action="settings.updated", target_type="setting", target_id=RETENTION_KEY,
                 before=before, after=retention.model_dump())
    return retention


_KINDS: dict[str, tuple[Any, Any, str]] = {
    # kind: (table, time column, the Retention field that dates it)
    "findings": (FindingRow, FindingRow.occurred_at, "findings_days"),
    "decisions": (DecisionRow, DecisionRow.created_at, "decisions_days"),
    "alerts": (AlertRow, AlertRow.last_seen, "alerts_days"),
    "dead_letters": (DeadLetterRow, DeadLetterRow.received_at, "dead_letters_days"),
    "samples": (SampleRow, SampleRow.occurred_at, "samples_days"),
    "sample_labels": (SampleLabelRow, SampleLabelRow.occurred_at, "samples_days"),  # labels go with their samples
}


def _deleted(session: Session, stmt: Delete) -> int:
    """How many rows a DELETE removed (the session runs DML on a cursor: its result is a CursorResult)."""
    return int(cast(CursorResult[Any], session.execute(stmt)).rowcount or 0)


def purge(engine: Engine, retention: Retention, *, actor: str, now: datetime | None = None,
          dry_run: bool = False) -> dict[str, Any]:
    """Delete records older than their kind's retention; one audit entry with the counts and cutoffs."""
    now = now or datetime.now(UTC)
    counts: dict[str, int] = {}
    cutoffs: dict[str, str | None] = {}
    with Session(engine) as session:
        for kind, (table, dated_by, field) in _KINDS.items():
            days = getattr(retention, field)
            if days is None:
                cutoffs[kind] = None
                counts[kind] = 0
                continue
            cutoff = now - timedelta(days=days)
            cutoffs[kind] = cutoff.isoformat()
            if dry_run:
                counts[kind] = int(session.execute(select(func.count()).select_from(table).where(dated_by < cutoff)).scalar_one())
            else:
                counts[kind] = _deleted(session, delete(table).where(dated_by < cutoff))
                if table is FindingRow:
                    rollups.after_purge(session.connection(), cutoff)
        result = {"deleted": counts, "cutoffs": cutoffs, "retention": retention.model_dump(), "dry_run": dry_run}
        if not dry_run:
            audit.append(session, actor=actor, action="data.purged", target_type="retention", target_id="purge",
                         after=result)
            session.commit()
    return result


def erase_user(engine: Engine, *, pii_key: str | bytes, user_id: str, actor: str,
               tenants: Sequence[str] | None = None) -> dict[str, Any]:
    """Erase every record tied to a user (by keyed hash) across the store, audited under the hash only.

    ``tenants`` limits the erasure to those tenants (a tenant-scoped admin); None = all tenants.
    """
    uh = user_hash(pii_key, user_id)
    with Session(engine) as session:
        deleted: dict[str, int] = {}
        for kind, table in (("findings", FindingRow), ("samples", SampleRow)):  # the records that carry a user hash
            cond: list[Any] = [col(table.user_hash) == uh]
            if tenants is not None:
                cond.append(col(table.tenant).in_(list(tenants)))
            if table is FindingRow:  # what the rollups must uncount
                gone = [r._asdict() for r in session.execute(delete(table).where(*cond).returning(
                    *(getattr(table, c) for c in rollups.FINDING_COLUMNS)))]
                rollups.subtract(session.connection(), gone)
                deleted[kind] = len(gone)
            else:
                deleted[kind] = _deleted(session, delete(table).where(*cond))
        result = {"user_hash": uh, "deleted": deleted,
                  "tenants": list(tenants) if tenants is not None else ["*"]}
        audit.append(session, actor=actor, action="data.erased", target_type="user", target_id=uh,
                     tenant=tenants[0] if tenants is not None and len(tenants) == 1 else None, after=result)
        session.commit()
    return result
