"""Data lifecycle: retention per kind of record, the purge job, and erasure of a user's data (audited)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.auth import ADMIN, READ_ROLES, Principal, allow
from governance import retention

router = APIRouter(prefix="/v1/lifecycle", tags=["lifecycle"])


@router.get("/retention")
async def get_retention(request: Request, _: Principal = Depends(allow(*READ_ROLES))) -> dict[str, Any]:
    """Days kept per kind of record (roles: admin, operator, auditor)."""
    r = await asyncio.to_thread(retention.get_retention, request.app.state.engine,
                                request.app.state.config.retention)
    return r.model_dump()


def _set(engine: Any, body: retention.Retention, actor: str) -> dict[str, Any]:
    with Session(engine) as session:
        retention.set_retention(session, body, actor=actor)
        session.commit()
    return body.model_dump()


@router.put("/retention")
async def put_retention(request: Request, body: retention.Retention,
                        principal: Principal = Depends(allow(*ADMIN))) -> dict[str, Any]:
    """Change the retention (role admin, over every tenant; audited as a settings change)."""
    _all_tenants(principal)
    return await asyncio.to_thread(_set, request.app.state.engine, body, principal.actor)


def _all_tenants(principal: Principal) -> None:
    if not principal.all_tenants:
        raise HTTPException(403, {"error": "tenant_forbidden",
                                  "detail": "retention and purges span every tenant: a key over every tenant is needed"})


@router.post("/purge")
async def purge(request: Request, dry_run: bool = Query(False, description="count only, delete nothing"),
                principal: Principal = Depends(allow(*ADMIN))) -> dict[str, Any]:
    """Delete records older than their retention (role admin over every tenant; audited)."""
    _all_tenants(principal)
    engine = request.app.state.engine
    kept = await asyncio.to_thread(retention.get_retention, engine, request.app.state.config.retention)
    return await asyncio.to_thread(retention.purge, engine, kept, actor=principal.actor, dry_run=dry_run)


class ErasureRequest(BaseModel):
    """The user to erase. The id is hashed at once (keyed HMAC) and never stored or logged."""

    user_id: str = Field(min_length=1, max_length=200)


@router.post("/erasure")
async def erase(request: Request, body: ErasureRequest, principal: Principal = Depends(allow(*ADMIN))) -> dict[str, Any]:
    """Erase every record tied to a user across the store (role admin; limited to the key's tenants;
    audited under the keyed hash only)."""
    key = request.app.state.config.pii_key
    if not key:
        raise HTTPException(503, {"error": "not_configured", "detail": "WARDEN_PII_KEY is not set"})
    tenants = None if principal.all_tenants else list(principal.tenants or ())
    return await asyncio.to_thread(retention.erase_user, request.app.state.engine, pii_key=key, user_id=body.user_id,
                                   actor=principal.actor, tenants=tenants)
