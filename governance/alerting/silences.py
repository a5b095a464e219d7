"""Silences: label matchers (as in Prometheus Alertmanager) that hold back notifications for a while.

Regex matchers (``=~``, ``!~``) use RE2 semantics (the ``google-re2`` package), as Alertmanager does:
matching takes time linear in the label's length whatever the pattern, so a pattern such as ``(a+)+$``
cannot stall the alert pipeline. Patterns RE2 does not support (backreferences, lookarounds) are refused
when the silence is created; patterns are at most :data:`MAX_PATTERN` characters.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import re2
from sqlalchemy import select
from sqlmodel import Session, col

from governance import audit
from store.models import AlertRow, SilenceRow
from store.models import to_utc as as_utc

MATCH_OPS = ("=", "!=", "=~", "!~")
#: longest regex pattern of a matcher
MAX_PATTERN = 1000
#: RE2 memory budget per compiled pattern (bytes): larger automata are refused
_RE2_MAX_MEM = 8 << 20
log = logging.getLogger("warden.alerting")


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Any:
    """An RE2 regex for ``pattern`` (anchored by :meth:`Matcher.matches`); ValueError if RE2 refuses it."""
    if len(pattern) > MAX_PATTERN:
        raise ValueError(f"regex is {len(pattern)} characters; the maximum is {MAX_PATTERN}")
    options = re2.Options()
    options.log_errors = False
    options.max_mem = _RE2_MAX_MEM
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"bad regex (RE2 syntax: no backreferences or lookarounds): {detail}") from None


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
            compile_pattern(self.value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        got = labels.get(self.name, "")
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        hit = compile_pattern(self.value).fullmatch(got) is not None
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
    return [s for s in silences if s.tenant == tenant and silence_active(s, now) and _all_match(s, labels)]


def _all_match(silence: SilenceRow, labels: Mapping[str, str]) -> bool:
    try:
        return all(Matcher(**m).matches(labels) for m in silence.matchers)
    except (ValueError, TypeError):  # stored before RE2 was the matcher: it silences nothing rather than fail
        log.warning("silence with a matcher RE2 refuses is ignored", extra={"silence_id": silence.silence_id})
        return False


def active_silences(session: Session, tenants: Iterable[str], now: datetime) -> list[SilenceRow]:
    tenants = sorted(set(tenants))
    if not tenants:
        return []
    stmt = select(SilenceRow).where(col(SilenceRow.tenant).in_(tenants), col(SilenceRow.expired_at).is_(None),
                                    col(SilenceRow.starts_at) <= now, col(SilenceRow.ends_at) > now)
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
        stmt = stmt.where(col(SilenceRow.tenant).in_(list(tenants)))
    if active_only:
        stmt = stmt.where(col(SilenceRow.expired_at).is_(None), col(SilenceRow.starts_at) <= now,
                          col(SilenceRow.ends_at) > now)
    stmt = stmt.order_by(col(SilenceRow.created_at).desc(), col(SilenceRow.silence_id).desc()).limit(limit)
    return list(session.execute(stmt).scalars())


def silence_view(row: SilenceRow, now: datetime | None = None) -> dict[str, Any]:
    """A silence as plain JSON-able data (with whether it is in force ``now``)."""
    now = now or datetime.now(UTC)
    return {"silence_id": row.silence_id, "tenant": row.tenant, "matchers": list(row.matchers),
            "starts_at": as_utc(row.starts_at), "ends_at": as_utc(row.ends_at), "created_by": row.created_by,
            "reason": row.reason, "created_at": as_utc(row.created_at), "expired_at": as_utc(row.expired_at),
            "expired_by": row.expired_by, "active": silence_active(row, now)}
