"""Lineage of a model version: training run → dataset → registry version → deployments → drift reference.

``GET /v1/registry/{tenant}/models/{model}/versions/{version}/lineage`` returns the chain with the
findings of each step (see :mod:`governance.lineage` for how it is assembled) and whether the version is
blocked from promotion.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from api.auth import READ_ROLES, Principal, allow
from governance.lineage import version_lineage

router = APIRouter(prefix="/v1", tags=["registry"])


@router.get("/models/{model}/versions/{version}/lineage")
async def get_lineage_by_model(request: Request, model: str, version: str,
                               tenant: str = Query(..., min_length=1, max_length=200),
                               principal: Principal = Depends(allow(*READ_ROLES))) -> dict[str, Any]:
    """The same lineage at the path of the issue, the tenant as a query parameter."""
    return await get_lineage(request, tenant, model, version, principal)


@router.get("/registry/{tenant}/models/{model}/versions/{version}/lineage")
async def get_lineage(request: Request, tenant: str, model: str, version: str,
                      principal: Principal = Depends(allow(*READ_ROLES))) -> dict[str, Any]:
    """The version's lineage with the findings of each step (roles: admin, operator, auditor).
    404 when the store knows neither a registry row nor a training run that produced the version."""
    principal.require_tenant(tenant)
    out = await asyncio.to_thread(version_lineage, request.app.state.engine, tenant, model, version)
    if out is None:
        raise HTTPException(404, {"error": "not_found",
                                  "detail": f"no registered version or training run for {model}/{version}"})
    return out
