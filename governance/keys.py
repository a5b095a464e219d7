"""API keys: random, shown once, stored as SHA-256, named by a visible prefix, expiring, revocable.

A key reads ``wdn_<prefix>_<secret>``: the prefix (8 hex chars) is stored in clear to find the row and
to name the key in lists and audit entries; only ``sha256(key)`` is stored. A key has one role and a
list of tenants (``["*"]`` = every tenant). Creating and revoking keys writes audit entries.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from governance import audit
from store.models import ApiKeyRow
from store.models import assume_utc as _utc

ROLES = ("admin", "operator", "auditor", "producer")
ALL_TENANTS = "*"
KEY_PREFIX = "wdn"


class KeyRequestError(ValueError):
    """A key request that cannot be honoured (bad role, unknown key, tenant outside the creator's)."""


def hash_key(key: str) -> str:
    """sha256 hex of a full key (keys carry 256 random bits: a fast hash is the right one)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_prefix(key: str) -> str | None:
    """The prefix of a well-formed key, or None."""
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or len(parts[1]) != 8 or not parts[2]:
        return None
    return parts[1]


def public_view(row: ApiKeyRow) -> dict[str, Any]:
    """Everything about a key except its hash (what lists and audit entries show)."""
    return {
        "key_id": row.key_id, "prefix": row.prefix, "name": row.name, "role": row.role, "tenants": list(row.tenants),
        "created_by": row.created_by, "created_at": _utc(row.created_at), "expires_at": _utc(row.expires_at),
        "revoked_at": _utc(row.revoked_at),
    }




@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly created key: ``secret`` is the full key, shown once and never stored."""

    secret: str
    row: ApiKeyRow


def normalise_tenants(tenants: Sequence[str]) -> list[str]:
    """Sorted unique tenant names; ``*`` alone means all tenants."""
    clean = sorted({t.strip() for t in tenants if t and t.strip()})
    if not clean:
        raise KeyRequestError("a key needs at least one tenant (or '*' for all)")
    return [ALL_TENANTS] if ALL_TENANTS in clean else clean


def create_key(
    session: Session,
    *,
    role: str,
    tenants: Sequence[str],
    actor: str,
    name: str = "",
    expires_at: datetime | None = None,
) -> IssuedKey:
    """Create a key in the caller's transaction (with its audit entry); returns the secret once."""
    if role not in ROLES:
        raise KeyRequestError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
    scoped = normalise_tenants(tenants)
    if expires_at is not None and expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    while True:
        prefix = secrets.token_hex(4)
        if session.execute(select(col(ApiKeyRow.key_id)).where(col(ApiKeyRow.prefix) == prefix)).first() is None:
            break
    secret = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKeyRow(key_id="key_" + secrets.token_hex(8), prefix=prefix, key_hash=hash_key(secret), name=name,
                    role=role, tenants=scoped, created_by=actor, created_at=datetime.now(UTC),
                    expires_at=expires_at)
    session.add(row)
    session.flush()
    audit.append(session, actor=actor, action="key.created", target_type="api_key", target_id=row.key_id,
                 tenant=scoped[0] if len(scoped) == 1 and scoped[0] != ALL_TENANTS else None,
                 after=public_view(row))
    return IssuedKey(secret=secret, row=row)


def find_key(session: Session, ident: str) -> ApiKeyRow | None:
    """A key by id or by prefix."""
    stmt = select(ApiKeyRow).where((col(ApiKeyRow.key_id) == ident) | (col(ApiKeyRow.prefix) == ident))
    return session.execute(stmt).scalars().first()


def revoke_key(session: Session, ident: str, *, actor: str) -> ApiKeyRow:
    """Revoke a key (by id or prefix) in the caller's transaction, with its audit entry. Idempotent."""
    row = find_key(session, ident)
    if row is None:
        raise KeyRequestError(f"no key {ident!r}")
    if row.revoked_at is None:
        before = public_view(row)
        row.revoked_at = datetime.now(UTC)
        session.add(row)
        session.flush()
        tenants = list(row.tenants)
        audit.append(session, actor=actor, action="key.revoked", target_type="api_key", target_id=row.key_id,
                     tenant=tenants[0] if len(tenants) == 1 and tenants[0] != ALL_TENANTS else None,
                     before=before, after=public_view(row))
    return row


def list_keys(engine: Engine, *, tenants: Sequence[str] | None = None) -> list[ApiKeyRow]:
    """All keys, newest first; ``tenants`` keeps only keys whose tenants all lie inside them."""
    with Session(engine) as session:
        rows: list[ApiKeyRow] = list(session.execute(select(ApiKeyRow).order_by(col(ApiKeyRow.created_at).desc())).scalars())
    if tenants is None:
        return rows
    allowed = set(tenants)
    return [r for r in rows if ALL_TENANTS not in r.tenants and set(r.tenants) <= allowed]


def is_live(row: ApiKeyRow, now: datetime | None = None) -> bool:
    """Neither revoked nor expired."""
    now = now or datetime.now(UTC)
    if row.revoked_at is not None:
        return False
    return row.expires_at is None or _utc(row.expires_at) > now  # type: ignore[operator]


def authenticate(engine: Engine, presented: str, *, now: datetime | None = None) -> ApiKeyRow | None:
    """The live key row matching ``presented`` (not revoked, not expired), or None."""
    prefix = parse_prefix(presented)
    if prefix is None:
        return None
    with Session(engine) as session:
        row = session.execute(select(ApiKeyRow).where(col(ApiKeyRow.prefix) == prefix)).scalars().first()
    if row is None or not hmac.compare_digest(row.key_hash, hash_key(presented)):
        return None
    return row if is_live(row, now) else None


def live_key(engine: Engine, key_id: str, key_hash: str, *, now: datetime | None = None) -> ApiKeyRow | None:
    """The key ``key_id`` if it is still live and still the key whose hash is ``key_hash`` (a console
    session keeps these two, never the secret), else None: revoking a key ends its sessions."""
    with Session(engine) as session:
        row = session.get(ApiKeyRow, key_id)
    if row is None or not hmac.compare_digest(row.key_hash, key_hash):
        return None
    return row if is_live(row, now) else None
