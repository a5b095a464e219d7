"""Data lifecycle: retention per kind of record, the purge job, and erasure of a user's data (audited)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from api.auth import ADMIN, READ_ROLES, Principal, allow
from api.deps import ConfigDep, EngineDep, SessionDep
from api.schemas import ErasureResult, PurgeResult
from governance import retention

router = APIRouter(prefix="/v1/lifecycle", tags=["lifecycle"])


@router.get("/retention")
def get_retention(engine: EngineDep, config: ConfigDep,
                  _: Principal = Depends(allow(*READ_ROLES))) -> retention.Retention:
    """Days kept per kind of record (roles: admin, operator, auditor)."""
    return retention.get_retention(engine, config.retention)


@router.put("/retention")
def put_retention(session: SessionDep, body: retention.Retention,
                  principal: Principal = Depends(allow(*ADMIN))) -> retention.Retention:
    """Change the retention (role admin, over every tenant; audited as a settings change)."""
    _all_tenants(principal)
    retention.set_retention(session, body, actor=principal.actor)
    session.commit()
    return body


def _all_tenants(principal: Principal) -> None:
    if not principal.all_tenants:
        raise HTTPException(403, {"error": "tenant_forbidden",
                                  "detail": "retention and purges span every tenant: a key over every tenant is needed"})


@router.post("/purge")
def purge(engine: EngineDep, config: ConfigDep, dry_run: bool = Query(False, description="count only, delete nothing"),
          principal: Principal = Depends(allow(*ADMIN))) -> PurgeResult:
    """Delete records older than their retention (role admin over every tenant; audited)."""
    _all_tenants(principal)
    kept = retention.get_retention(engine, config.retention)
    return PurgeResult.model_validate(retention.purge(engine, kept, actor=principal.actor, dry_run=dry_run))


class ErasureRequest(BaseModel):
    """The user to erase. The id is hashed at once (keyed HMAC) and never stored or logged."""

    user_id: str = Field(min_length=1, max_length=200)


@router.post("/erasure")
def erase(engine: EngineDep, config: ConfigDep, body: ErasureRequest,
          principal: Principal = Depends(allow(*ADMIN))) -> ErasureResult:
    """Erase every record tied to a user across the store (role admin; limited to the key's tenants;
    audited under the keyed hash only)."""
    if not config.pii_key:
        raise HTTPException(503, {"error": "not_configured", "detail": "WARDEN_PII_KEY is not set"})
    tenants = None if principal.all_tenants else list(principal.tenants or ())
    return ErasureResult.model_validate(retention.erase_user(engine, pii_key=config.pii_key, user_id=body.user_id,
                                                             actor=principal.actor, tenants=tenants))
