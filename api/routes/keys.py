"""API key management: create (the secret is shown once), list, revoke. Every change is audited."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.auth import ADMIN, Principal, allow
from governance import keys as keystore

router = APIRouter(prefix="/v1/keys", tags=["keys"])


class KeyCreate(BaseModel):
    """A key request: its role, tenants (``["*"]`` = all), a name and an optional expiry."""

    role: str = Field(pattern="^(admin|operator|auditor|producer)$")
    tenants: list[str] = Field(min_length=1, max_length=100)
    name: str = Field(default="", max_length=200)
    expires_at: datetime | None = None


def _create(engine: Any, principal: Principal, body: KeyCreate) -> dict[str, Any]:
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
    with Session(engine, expire_on_commit=False) as session:
        issued = keystore.create_key(session, role=body.role, tenants=wanted, actor=principal.actor, name=body.name,
                                     expires_at=expires)
        session.commit()
    return {**keystore.public_view(issued.row), "key": issued.secret,
            "note": "store this key now: it is shown once and only its hash is kept"}


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_key(request: Request, body: KeyCreate, principal: Principal = Depends(allow(*ADMIN))) -> dict[str, Any]:
    """Create a key (role admin). The response holds the key once; the store keeps its SHA-256 only."""
    return await asyncio.to_thread(_create, request.app.state.engine, principal, body)


@router.get("")
async def list_keys(request: Request, principal: Principal = Depends(allow("admin", "auditor"))) -> dict[str, Any]:
    """Keys (no secrets, no hashes), newest first (roles: admin, auditor). Scoped keys see keys of their tenants."""
    rows = await asyncio.to_thread(keystore.list_keys, request.app.state.engine,
                                   tenants=None if principal.all_tenants else list(principal.tenants or ()))
    return {"items": [keystore.public_view(r) for r in rows]}


def _revoke(engine: Any, principal: Principal, key_id: str) -> dict[str, Any]:
    with Session(engine, expire_on_commit=False) as session:
        row = keystore.find_key(session, key_id)
        if row is None or not (principal.all_tenants or (keystore.ALL_TENANTS not in row.tenants
                                                         and set(row.tenants) <= set(principal.tenants or ()))):
            raise HTTPException(404, {"error": "not_found", "detail": f"no key {key_id!r}"})
        row = keystore.revoke_key(session, key_id, actor=principal.actor)
        session.commit()
    return keystore.public_view(row)


@router.delete("/{key_id}")
async def revoke_key(request: Request, key_id: str, principal: Principal = Depends(allow(*ADMIN))) -> dict[str, Any]:
    """Revoke a key by id or prefix (role admin; idempotent; audited)."""
    return await asyncio.to_thread(_revoke, request.app.state.engine, principal, key_id)


