"""Bearer-key authentication and role-based access with tenant scopes.

Keys live in the store (``governance.keys``: hashed, prefixed, expiring, revocable), each with one role
and a list of tenants. ``WARDEN_ADMIN_KEY`` stays a bootstrap admin key over every tenant.

Every route declares the roles it admits with ``Depends(allow(...))``; the declaration is readable
from the route (``roles_of``) so a test can walk every route × role × tenant.

Roles: ``admin`` (everything), ``operator`` (read records, act on alerts, manage the registry, read
reports), ``auditor`` (read-only on everything, audit and exports included), ``producer`` (ingest only).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from governance.keys import ALL_TENANTS, ROLES, authenticate
from store.models import ApiKeyRow

_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")

READ_ROLES = ("admin", "operator", "auditor")
ADMIN = ("admin",)
ADMIN_OPERATOR = ("admin", "operator")
AUDIT_ROLES = ("admin", "auditor")
ANY_ROLE = ROLES


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's name, role and tenants (``None`` = every tenant)."""

    name: str
    role: str
    tenants: tuple[str, ...] | None = None
    key_id: str | None = None

    @property
    def actor(self) -> str:
        """How audit entries name this caller."""
        return self.name

    @property
    def all_tenants(self) -> bool:
        return self.tenants is None

    def allows(self, tenant: str) -> bool:
        """May this key see or act on ``tenant``?"""
        return self.tenants is None or tenant in self.tenants

    def require_tenant(self, tenant: str) -> None:
        """403 unless the key is scoped to ``tenant``."""
        if not self.allows(tenant):
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                {"error": "tenant_forbidden", "detail": f"this key is not scoped to tenant {tenant!r}"})

    def scope(self, requested: str | None) -> list[str] | None:
        """Tenants a read may cover: the requested one (checked), else all of the key's (None = no limit)."""
        if requested is not None:
            self.require_tenant(requested)
            return [requested]
        return None if self.tenants is None else list(self.tenants)


BOOTSTRAP_ADMIN = Principal(name="bootstrap-admin", role="admin", tenants=None)
"""The principal of ``WARDEN_ADMIN_KEY``."""


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


def principal_of_key(request: Request, presented: str) -> Principal | None:
    """The principal of an API key (the bootstrap admin key or a live stored key), or None.

    The one place a key becomes a :class:`Principal`: bearer requests and console sign-ins both come here."""
    bootstrap: str | None = request.app.state.config.admin_key
    if bootstrap and hmac.compare_digest(presented.encode(), bootstrap.encode()):
        return BOOTSTRAP_ADMIN
    row = authenticate(request.app.state.engine, presented)
    return None if row is None else principal_of_row(row)


def principal_of_row(row: ApiKeyRow) -> Principal:
    """The principal of a stored key row (already checked live)."""
    tenants = None if ALL_TENANTS in row.tenants else tuple(row.tenants)
    return Principal(name=f"key:{row.prefix}" + (f" ({row.name})" if row.name else ""), role=row.role,
                     tenants=tenants, key_id=row.key_id)


def authenticate_request(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    """The caller's principal, or 401."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("missing 'Authorization: Bearer <key>' header")
    principal = principal_of_key(request, credentials.credentials)
    if principal is None:
        raise _unauthorized("invalid, expired or revoked API key")
    return principal


def require_role(principal: Principal, roles: Sequence[str]) -> Principal:
    """403 unless the principal's role is one of ``roles`` (the check every route, API or console, makes)."""
    if principal.role not in roles:
        raise HTTPException(status.HTTP_403_FORBIDDEN, {
            "error": "role_forbidden", "detail": f"role {principal.role!r} may not call this route",
            "allowed_roles": list(roles)})
    return principal


def check_roles(roles: Sequence[str]) -> tuple[str, ...]:
    """``roles`` as a tuple, refusing unknown or no roles (a declaration mistake, raised at import)."""
    unknown = set(roles) - set(ROLES)
    if unknown or not roles:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    return tuple(roles)


def allow(*roles: str) -> Callable[..., Principal]:
    """A dependency admitting only keys with one of ``roles`` (401 without a valid key, 403 otherwise)."""
    declared = check_roles(roles)

    def dependency(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        return require_role(authenticate_request(request, credentials), declared)

    dependency.warden_roles = declared  # type: ignore[attr-defined]
    dependency.__name__ = "allow_" + "_".join(roles)
    return dependency


# Any valid key (kept for routes and callers written before roles existed).
require_key = allow(*ANY_ROLE)


def roles_of(route: APIRoute) -> tuple[str, ...] | None:
    """The roles a route declared with ``allow`` (None if it declared none: a public route)."""
    stack: list[Any] = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        roles = getattr(dep.call, "warden_roles", None)
        if roles is not None:
            return tuple(roles)
        stack.extend(dep.dependencies)
    return None


def iter_api_routes(routes: Sequence[Any]) -> list[APIRoute]:
    """Every ``APIRoute`` of an app's routes, looking inside included routers (FastAPI ≥ 0.16x keeps
    them as ``_IncludedRouter`` wrappers holding the original router)."""
    out: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            out.append(route)
        elif hasattr(route, "original_router"):
            out.extend(iter_api_routes(route.original_router.routes))
    return out
