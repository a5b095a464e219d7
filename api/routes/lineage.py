"""Lineage of a model version: training run → dataset → registry version → deployments → drift reference.

``GET /v1/registry/{tenant}/models/{model}/versions/{version}/lineage`` returns the chain with the
findings of each step (see :mod:`governance.lineage` for how it is assembled) and whether the version is
blocked from promotion.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query

from api.auth import READ_ROLES, Principal, allow
from api.deps import EngineDep
from api.schemas import Lineage
from governance.lineage import version_lineage

router = APIRouter(prefix="/v1", tags=["registry"])


@router.get("/models/{model}/versions/{version}/lineage")
def get_lineage_by_model(engine: EngineDep, model: str, version: str,
                         tenant: str = Query(..., min_length=1, max_length=200),
                         principal: Principal = Depends(allow(*READ_ROLES))) -> Lineage:
    """The same lineage at the path of the issue, the tenant as a query parameter."""
    return get_lineage(engine, tenant, model, version, principal)


@router.get("/registry/{tenant}/models/{model}/versions/{version}/lineage")
def get_lineage(engine: EngineDep, tenant: str, model: str, version: str,
                principal: Principal = Depends(allow(*READ_ROLES))) -> Lineage:
    """The version's lineage with the findings of each step (roles: admin, operator, auditor).
    404 when the store knows neither a registry row nor a training run that produced the version."""
    principal.require_tenant(tenant)
    out = version_lineage(engine, tenant, model, version)
    if out is None:
        raise HTTPException(404, {"error": "not_found",
                                  "detail": f"no registered version or training run for {model}/{version}"})
    return Lineage.model_validate(out)
