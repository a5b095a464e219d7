"""Bearer-key authentication. The first admin key comes from ``WARDEN_ADMIN_KEY``."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key's name and role (full RBAC with tenants comes with the key store)."""

    name: str
    role: str


def require_key(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal:
    """Reject calls without a valid ``Authorization: Bearer <key>``."""
    expected: str | None = request.app.state.settings.admin_key
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing 'Authorization: Bearer <key>' header",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not expected or not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid API key", headers={"WWW-Authenticate": "Bearer"})
    return Principal(name="admin", role="admin")
