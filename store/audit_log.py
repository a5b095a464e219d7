"""The audit log's storage side: its head table and the append-only guard installed on every engine.

The chain itself (canonical form, hashes, append, verify, export) is :mod:`governance.audit`.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, event
from sqlalchemy.engine import Engine

from store.models import AuditRow

AUDIT_TABLE = "audit_log"
HEAD_TABLE = "audit_head"


# The chain head (one row, created by the migrations; kept out of SQLModel's metadata on purpose).
AUDIT_HEAD = Table(HEAD_TABLE, MetaData(), Column("id", Integer, primary_key=True), Column("seq", Integer),
              Column("hash", String(64)), Column("at", DateTime(timezone=True)))


class AuditAppendOnlyError(RuntimeError):
    """Raised when code tries to change or delete an audit entry."""


_MUTATION = re.compile(
    rf"^\s*(?:UPDATE\s+\"?{AUDIT_TABLE}\"?\s|DELETE\s+FROM\s+\"?{AUDIT_TABLE}\"?|TRUNCATE\s+(?:TABLE\s+)?\"?{AUDIT_TABLE}\"?)",
    re.IGNORECASE,
)


@event.listens_for(AuditRow, "before_update")
def _refuse_update(*_: Any) -> None:
    raise AuditAppendOnlyError("audit entries are append-only: UPDATE refused")


@event.listens_for(AuditRow, "before_delete")
def _refuse_delete(*_: Any) -> None:
    raise AuditAppendOnlyError("audit entries are append-only: DELETE refused")


@event.listens_for(Engine, "before_cursor_execute")
def _refuse_mutation(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
    if _MUTATION.match(statement):
        raise AuditAppendOnlyError(f"audit entries are append-only: refused {statement.split(None, 1)[0].upper()}")
