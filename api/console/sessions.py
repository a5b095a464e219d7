"""Console sessions: sign-in with an API key turns into a server-side session row.

The cookie holds a random token; the store keeps only its SHA-256 (``ConsoleSessionRow.session_id``),
the key that signed in and that key's hash. Every request re-checks the key through
:func:`api.auth.principal_of_row` (stored keys) or the bootstrap admin key, so a revoked, expired or
rotated key ends its sessions at once. Each session has a synchronizer CSRF token that every
state-changing form echoes (:func:`csrf_ok`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Request
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.auth import BOOTSTRAP_ADMIN, Principal, principal_of_row
from governance.keys import hash_key, live_key
from store.models import ConsoleSessionRow, to_utc

COOKIE = "warden_console"


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking at a console page: the key's principal and the session's CSRF token."""

    principal: Principal
    csrf_token: str
    expires_at: datetime

    def can(self, *roles: str) -> bool:
        """Whether the key's role is among ``roles`` (templates show an action only where it is)."""
        return self.principal.role in roles


def digest(token: str) -> str:
    """The stored id of a cookie token (its SHA-256)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start(engine: Engine, principal: Principal, presented_key: str, ttl_s: float,
          now: datetime | None = None) -> tuple[str, ConsoleSessionRow]:
    """A new session for ``principal`` (signed in with ``presented_key``); returns the cookie token.
    Sessions that have expired are deleted on the way."""
    now = now or datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    row = ConsoleSessionRow(session_id=digest(token), key_id=principal.key_id, key_hash=hash_key(presented_key),
                            csrf_token=secrets.token_urlsafe(32), created_at=now,
                            expires_at=now + timedelta(seconds=ttl_s))
    with Session(engine, expire_on_commit=False) as session:
        session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.expires_at < now))  # type: ignore[arg-type]
        session.add(row)
        session.commit()
    return token, row


def end(engine: Engine, token: str) -> None:
    """Delete the session of ``token`` (sign-out)."""
    with Session(engine) as session:
        session.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.session_id == digest(token)))  # type: ignore[arg-type]
        session.commit()


def viewer(request: Request, now: datetime | None = None) -> Viewer | None:
    """The signed-in viewer of ``request``, or None (no cookie, unknown or expired session, or a key
    that is no longer live)."""
    token = request.cookies.get(COOKIE)
    if not token or len(token) > 200:
        return None
    engine: Engine = request.app.state.engine
    with Session(engine) as session:
        row = session.get(ConsoleSessionRow, digest(token))
    now = now or datetime.now(UTC)
    if row is None or (to_utc(row.expires_at) or now) <= now:
        return None
    principal: Principal | None
    if row.key_id is None:
        bootstrap: str | None = request.app.state.config.admin_key
        principal = BOOTSTRAP_ADMIN if bootstrap and hmac.compare_digest(hash_key(bootstrap), row.key_hash) else None
    else:
        key = live_key(engine, row.key_id, row.key_hash, now=now)
        principal = principal_of_row(key) if key is not None else None
    if principal is None:
        return None
    return Viewer(principal=principal, csrf_token=row.csrf_token, expires_at=to_utc(row.expires_at) or now)


def csrf_ok(viewer: Viewer, presented: str | None) -> bool:
    """Whether a form's ``csrf_token`` is this session's token."""
    return bool(presented) and hmac.compare_digest(viewer.csrf_token.encode(), str(presented).encode())
