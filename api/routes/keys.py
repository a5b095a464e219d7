"""API key management: create (the secret is shown once), list, revoke. Every change is audited."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, Field

from api.auth import ADMIN, Principal, allow
from api.deps import EngineDep, SessionDep
from api.schemas import ApiKey, ApiKeyList, IssuedKey
from governance import keys as keystore

router = APIRouter(prefix="/v1/keys", tags=["keys"])


class KeyCreate(BaseModel):
    """A key request: its role, tenants (``["*"]`` = all), a name and an optional expiry."""

    role: str = Field(pattern="^(admin|operator|auditor|producer)$")
    tenants: list[str] = Field(min_length=1, max_length=100)
    name: str = Field(default="", max_length=200)
    expires_at: datetime | None = None


@router.post("", status_code=status.HTTP_201_CREATED)
def create_key(session: SessionDep, body: KeyCreate, principal: Principal = Depends(allow(*ADMIN))) -> IssuedKey:
    """Create a key (role admin). The response holds the key once; the store keeps its SHA-256 only."""
    try:
        wanted = keystore.normalise_tenants(body.tenants)
    except keystore.KeyRequestError as exc:
        raise HTTPException(422, {"error": "invalid", "detail": str(exc)}) from exc
    if any(len(t) > 200 for t in wanted):
        raise HTTPException(422, {"error": "invalid", "detail": "tenant names are at most 200 characters"})
    if not principal.all_tenants and (keystore.ALL_TENANTS in wanted or not set(wanted) <= set(principal.tenants or ())):
        raise HTTPException(403, {"error": "tenant_forbidden",
                                  "detail": "a key may only be scoped to tenants of the key creating it"})
    expires = body.expires_at
    if expires is not None:
        expires = expires if expires.tzinfo else expires.replace(tzinfo=UTC)
        if expires <= datetime.now(UTC):
            raise HTTPException(422, {"error": "invalid", "detail": "expires_at is in the past"})
    issued = keystore.create_key(session, role=body.role, tenants=wanted, actor=principal.actor, name=body.name,
                                 expires_at=expires)
    session.commit()
    return IssuedKey.model_validate({**keystore.public_view(issued.row), "key": issued.secret,
                                     "note": "store this key now: it is shown once and only its hash is kept"})


@router.get("")
def list_keys(engine: EngineDep, principal: Principal = Depends(allow("admin", "auditor"))) -> ApiKeyList:
    """Keys (no secrets, no hashes), newest first (roles: admin, auditor). Scoped keys see keys of their tenants."""
    rows = keystore.list_keys(engine, tenants=None if principal.all_tenants else list(principal.tenants or ()))
    return ApiKeyList.model_validate({"items": [keystore.public_view(r) for r in rows]})


@router.delete("/{key_id}")
def revoke_key(session: SessionDep, key_id: str, principal: Principal = Depends(allow(*ADMIN))) -> ApiKey:
    """Revoke a key by id or prefix (role admin; idempotent; audited)."""
    row = keystore.find_key(session, key_id)
    if row is None or not (principal.all_tenants or (keystore.ALL_TENANTS not in row.tenants
                                                     and set(row.tenants) <= set(principal.tenants or ()))):
        raise HTTPException(404, {"error": "not_found", "detail": f"no key {key_id!r}"})
    row = keystore.revoke_key(session, key_id, actor=principal.actor)
    session.commit()
    return ApiKey.model_validate(keystore.public_view(row))


