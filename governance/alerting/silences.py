"""Silences: label matchers (as in Prometheus Alertmanager) that hold back notifications for a while."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from governance import audit
from store.models import AlertRow, SilenceRow
from store.models import to_utc as as_utc

MATCH_OPS = ("=", "!=", "=~", "!~")


@dataclass(frozen=True, slots=True)
class Matcher:
    """A label matcher as in Prometheus Alertmanager; regexes match the whole value."""

    name: str
    value: str
    op: str = "="

    def __post_init__(self) -> None:
        if self.op not in MATCH_OPS:
            raise ValueError(f"matcher op must be one of {MATCH_OPS}, not {self.op!r}")
        if not self.name:
            raise ValueError("matcher name must not be empty")
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"bad regex {self.value!r}: {exc}") from None

    def matches(self, labels: Mapping[str, str]) -> bool:
        got = labels.get(self.name, "")
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        hit = re.fullmatch(self.value, got) is not None
        return hit if self.op == "=~" else not hit

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "value": self.value, "op": self.op}


def parse_matchers(raw: Iterable[Mapping[str, Any]]) -> list[Matcher]:
    """Matchers from plain dicts ``{name, value, op}``; at least one is required."""
    out = [Matcher(name=str(m["name"]), value=str(m.get("value", "")), op=str(m.get("op", "="))) for m in raw]
    if not out:
        raise ValueError("a silence needs at least one matcher")
    return out


def silence_active(s: SilenceRow, now: datetime) -> bool:
    starts, ends = as_utc(s.starts_at), as_utc(s.ends_at)
    return s.expired_at is None and starts is not None and ends is not None and starts <= now < ends


def matching_silences(silences: Iterable[SilenceRow], tenant: str, labels: Mapping[str, str],
                      now: datetime) -> list[SilenceRow]:
    """The active silences of ``tenant`` whose matchers all match ``labels``."""
    return [s for s in silences if s.tenant == tenant and silence_active(s, now)
            and all(Matcher(**m).matches(labels) for m in s.matchers)]


def active_silences(session: Session, tenants: Iterable[str], now: datetime) -> list[SilenceRow]:
    tenants = sorted(set(tenants))
    if not tenants:
        return []
    stmt = select(SilenceRow).where(SilenceRow.tenant.in_(tenants), SilenceRow.expired_at.is_(None),  # type: ignore[attr-defined]
                                    SilenceRow.starts_at <= now, SilenceRow.ends_at > now)
    return list(session.execute(stmt).scalars())


def silenced_by(session_silences: list[SilenceRow], alert: AlertRow, labels: Mapping[str, str],
                 now: datetime) -> list[str]:
    ids = [s.silence_id for s in matching_silences(session_silences, alert.tenant, labels, now)]
    until = as_utc(alert.silenced_until)
    if until is not None and until > now:
        ids.append(f"alert:{until.isoformat()}")
    return ids


def create_silence(session: Session, *, tenant: str, matchers: Iterable[Mapping[str, Any]], ends_at: datetime,
                   created_by: str, reason: str = "", starts_at: datetime | None = None,
                   now: datetime | None = None) -> SilenceRow:
    """Create a silence (audited); raises ValueError on bad matchers or times."""
    now = now or datetime.now(UTC)
    parsed = parse_matchers(matchers)
    starts = as_utc(starts_at) or now
    ends = as_utc(ends_at)
    assert ends is not None
    if ends <= starts:
        raise ValueError("ends_at must be after starts_at")
    row = SilenceRow(silence_id=uuid.uuid4().hex, tenant=tenant, matchers=[m.as_dict() for m in parsed],
                     starts_at=starts, ends_at=ends, created_by=created_by, reason=reason, created_at=now)
    session.add(row)
    session.flush()
    audit.append(session, actor=created_by, action="silence.created", tenant=tenant, target_type="silence",
                 target_id=row.silence_id, after=silence_view(row), at=now)
    return row


def expire_silence(session: Session, silence_id: str, *, actor: str, tenants: Sequence[str] | None = None,
                   now: datetime | None = None) -> SilenceRow:
    """End a silence now (audited); idempotent. Held-back triggers go out at the next sweep."""
    now = now or datetime.now(UTC)
    row = session.get(SilenceRow, silence_id, with_for_update=True)
    if row is None or (tenants is not None and row.tenant not in tenants):
        raise LookupError(silence_id)
    if row.expired_at is None:
        before = silence_view(row)
        row.expired_at, row.expired_by = now, actor
        session.add(row)
        session.flush()
        audit.append(session, actor=actor, action="silence.expired", tenant=row.tenant, target_type="silence",
                     target_id=silence_id, before=before, after=silence_view(row), at=now)
    return row


def list_silences(session: Session, *, tenants: Sequence[str] | None = None, active_only: bool = False,
                  now: datetime | None = None, limit: int = 500) -> list[SilenceRow]:
    """Silences, newest first; ``active_only`` keeps those in force now."""
    now = now or datetime.now(UTC)
    stmt = select(SilenceRow)
    if tenants is not None:
        stmt = stmt.where(SilenceRow.tenant.in_(list(tenants)))  # type: ignore[attr-defined]
    if active_only:
        stmt = stmt.where(SilenceRow.expired_at.is_(None), SilenceRow.starts_at <= now,  # type: ignore[union-attr]
                          SilenceRow.ends_at > now)
    stmt = stmt.order_by(SilenceRow.created_at.desc(), SilenceRow.silence_id.desc()).limit(limit)  # type: ignore[attr-defined]
    return list(session.execute(stmt).scalars())


def silence_view(row: SilenceRow, now: datetime | None = None) -> dict[str, Any]:
    """A silence as plain JSON-able data (with whether it is in force ``now``)."""
    now = now or datetime.now(UTC)
    return {"silence_id": row.silence_id, "tenant": row.tenant, "matchers": list(row.matchers),
            "starts_at": as_utc(row.starts_at), "ends_at": as_utc(row.ends_at), "created_by": row.created_by,
            "reason": row.reason, "created_at": as_utc(row.created_at), "expired_at": as_utc(row.expired_at),
            "expired_by": row.expired_by, "active": silence_active(row, now)}
