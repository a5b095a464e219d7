"""Model registry per tenant: models, versions (lineage, metrics), aliases with full history.

Switching an alias writes its history row and an audit entry in one transaction, then publishes a
``deployment`` event to ``warden.deployments`` (keyed like every event, ``tenant/model``).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.auth import ADMIN_OPERATOR, READ_ROLES, Principal, allow
from api.deps import EngineDep, ProducerDep, SessionDep
from api.schemas import (
    AliasHistory,
    AliasHistoryEntry,
    AliasSwitched,
    ModelAliasList,
    ModelVersion,
    ModelVersionList,
    RegisteredModel,
    RegisteredModelList,
    RegisteredModelWithAliases,
)
from contracts.events import DeploymentBody, DeploymentEvent, ModelRef, dump_event
from contracts.topics import DEPLOYMENTS
from governance import registry
from governance.lineage import promotion_blocks
from store.models import AliasHistoryRow, ModelVersionRow, RegisteredModelRow

log = logging.getLogger("warden.api.registry")
router = APIRouter(prefix="/v1/registry/{tenant}", tags=["registry"])
_STATUS = {"not_found": 404, "conflict": 409, "invalid": 422}


def _tenant(tenant: str, principal: Principal) -> str:
    principal.require_tenant(tenant)
    return tenant


def _fail(exc: registry.RegistryError) -> HTTPException:
    return HTTPException(_STATUS.get(exc.code, 400), {"error": exc.code, "detail": str(exc)})


class ModelCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=5000)


class VersionCreate(BaseModel):
    """A version: where its artifact is, what it came from, how it scored, and who made it."""

    version: str = Field(min_length=1, max_length=200)
    artifact_uri: str = Field(min_length=1, max_length=2000)
    parent_version: str | None = Field(default=None, max_length=200)
    dataset_ref: str | None = Field(default=None, max_length=2000)
    metrics: dict[str, Annotated[float, Field(allow_inf_nan=False)] | int | str | None] = Field(default_factory=dict)
    source: Literal["manual", "job"] = "manual"
    job_id: str | None = Field(default=None, max_length=200)


class AliasSwitch(BaseModel):
    version: str = Field(min_length=1, max_length=200)
    reason: str = Field(default="", max_length=2000)
    action: Literal["deploy", "promote", "rollback"] | None = None
    #: admin only: switch even though a ``block-promotion`` decision stands on the version (audited)
    override_block: bool = False


def _write(session: Session, fn: Any, **kwargs: Any) -> dict[str, Any]:
    try:
        row = fn(session, **kwargs)
    except registry.RegistryError as exc:
        raise _fail(exc) from exc
    session.commit()
    return registry.dump(row)


def _get(session: Session, model: Any, key: tuple[str, ...], what: str) -> dict[str, Any]:
    row = session.get(model, key)
    if row is None:
        raise HTTPException(404, {"error": "not_found", "detail": f"no {what} {'/'.join(key[1:])!r}"})
    return registry.dump(row)


@router.get("/models")
def list_models(engine: EngineDep, tenant: str,
                principal: Principal = Depends(allow(*READ_ROLES))) -> RegisteredModelList:
    """The tenant's models (roles: admin, operator, auditor)."""
    rows = registry.list_models(engine, _tenant(tenant, principal))
    return RegisteredModelList.model_validate({"items": [registry.dump(r) for r in rows]})


@router.post("/models", status_code=status.HTTP_201_CREATED)
def create_model(session: SessionDep, tenant: str, body: ModelCreate,
                 principal: Principal = Depends(allow(*ADMIN_OPERATOR))) -> RegisteredModel:
    """Register a model (roles: admin, operator; audited)."""
    return RegisteredModel.model_validate(_write(
        session, registry.create_model, tenant=_tenant(tenant, principal), name=body.name,
        description=body.description, actor=principal.actor))


@router.get("/models/{model}")
def get_model(session: SessionDep, engine: EngineDep, tenant: str, model: str,
              principal: Principal = Depends(allow(*READ_ROLES))) -> RegisteredModelWithAliases:
    """One model with its aliases (roles: admin, operator, auditor)."""
    out = _get(session, RegisteredModelRow, (_tenant(tenant, principal), model), "model")
    out["aliases"] = {a.alias: a.version for a in registry.list_aliases(engine, tenant, model)}
    return RegisteredModelWithAliases.model_validate(out)


@router.get("/models/{model}/versions")
def list_versions(engine: EngineDep, tenant: str, model: str,
                  principal: Principal = Depends(allow(*READ_ROLES))) -> ModelVersionList:
    """A model's versions, newest first (roles: admin, operator, auditor)."""
    rows = registry.list_versions(engine, _tenant(tenant, principal), model)
    return ModelVersionList.model_validate({"items": [registry.dump(r) for r in rows]})


@router.post("/models/{model}/versions", status_code=status.HTTP_201_CREATED)
def create_version(session: SessionDep, tenant: str, model: str, body: VersionCreate,
                   principal: Principal = Depends(allow(*ADMIN_OPERATOR))) -> ModelVersion:
    """Register a version (by hand, or by a job with its ``job_id``) (roles: admin, operator; audited)."""
    return ModelVersion.model_validate(_write(
        session, registry.register_version, tenant=_tenant(tenant, principal), model=model,
        version=body.version, artifact_uri=body.artifact_uri, parent_version=body.parent_version,
        dataset_ref=body.dataset_ref, metrics=body.metrics, source=body.source, job_id=body.job_id,
        actor=principal.actor))


@router.get("/models/{model}/versions/{version}")
def get_version(session: SessionDep, tenant: str, model: str, version: str,
                principal: Principal = Depends(allow(*READ_ROLES))) -> ModelVersion:
    """One version (roles: admin, operator, auditor)."""
    return ModelVersion.model_validate(
        _get(session, ModelVersionRow, (_tenant(tenant, principal), model, version), "version"))


@router.get("/models/{model}/aliases")
def list_aliases(engine: EngineDep, tenant: str, model: str,
                 principal: Principal = Depends(allow(*READ_ROLES))) -> ModelAliasList:
    """Where each alias of a model points now (roles: admin, operator, auditor)."""
    rows = registry.list_aliases(engine, _tenant(tenant, principal), model)
    return ModelAliasList.model_validate({"items": [registry.dump(r) for r in rows]})


def deployment_event(hist: AliasHistoryRow) -> DeploymentEvent:
    """The ``deployment`` event of an alias switch (its id is the switch's id: a retry is idempotent)."""
    at = hist.switched_at if hist.switched_at.tzinfo else hist.switched_at.replace(tzinfo=UTC)
    return DeploymentEvent(
        schema_version="1", event_id=hist.switch_id, type="deployment", occurred_at=at, tenant=hist.tenant,
        model=ModelRef(name=hist.model, version=hist.to_version),
        deployment=DeploymentBody(action=hist.action, alias=hist.alias, previous_version=hist.from_version,
                                  actor=hist.actor, reason=hist.reason or None))


@router.put("/models/{model}/aliases/{alias}")
async def switch_alias(engine: EngineDep, producer: ProducerDep, tenant: str, model: str, alias: str,
                       body: AliasSwitch, principal: Principal = Depends(allow(*ADMIN_OPERATOR))) -> AliasSwitched:
    """Point an alias at a version: history + audit, then a deployment event on ``warden.deployments``
    (roles: admin, operator). ``published`` says whether Kafka acknowledged the event.

    409 ``promotion_blocked`` when an unresolved ``block-promotion`` decision stands on the version
    (evaluation regressed, PII in its training data); an admin may pass ``override_block`` (audited
    through the switch's reason)."""
    if body.override_block and principal.role != "admin":
        raise HTTPException(403, {"error": "role_forbidden", "detail": "only an admin may override a promotion block"})
    hist = await asyncio.to_thread(
        _write_row, engine, tenant=_tenant(tenant, principal), model=model, alias=alias,
        version=body.version, actor=principal.actor, reason=body.reason, action=body.action,
        override_block=body.override_block)
    event = deployment_event(hist)
    published = True
    try:
        await asyncio.wait_for(producer.send_and_wait(DEPLOYMENTS, dump_event(event), key=event.key), timeout=15)
    except Exception:
        log.exception("deployment event not published", extra={"switch_id": hist.switch_id})
        published = False
    return AliasSwitched.model_validate({**registry.dump(hist), "event_id": event.event_id, "topic": DEPLOYMENTS,
                                         "published": published})


def _write_row(engine: Engine, *, override_block: bool = False, **kwargs: Any) -> AliasHistoryRow:
    with Session(engine, expire_on_commit=False) as session:
        blocks = promotion_blocks(session, kwargs["tenant"], kwargs["model"], kwargs["version"])
        if blocks and not override_block:
            raise HTTPException(409, {
                "error": "promotion_blocked",
                "detail": f"version {kwargs['version']!r} is blocked from promotion: "
                          + "; ".join(b["summary"] for b in blocks[:5])
                          + " (resolve the block-promotion alert, or an admin passes override_block)",
                "blocks": [{k: b[k] for k in ("decision_id", "policy_id", "detector", "finding_ids")} for b in blocks],
            })
        if blocks:
            overridden = ", ".join(b["decision_id"] for b in blocks)
            kwargs["reason"] = f"{kwargs.get('reason') or ''} [promotion block overridden: {overridden}]".strip()
        try:
            hist = registry.switch_alias(session, **kwargs)
        except registry.RegistryError as exc:
            raise _fail(exc) from exc
        session.commit()
    return hist


@router.get("/models/{model}/aliases/{alias}/history", response_model_exclude_unset=True)
def alias_history(engine: EngineDep, tenant: str, model: str, alias: str,
                  at: datetime | None = Query(None, description="also answer: which version at this time?"),
                  principal: Principal = Depends(allow(*READ_ROLES))) -> AliasHistory:
    """Every switch of an alias (who, when, why), newest first; with ``at``, the version it pointed to
    then (roles: admin, operator, auditor)."""
    rows = registry.alias_history(engine, _tenant(tenant, principal), model, alias)
    items = [AliasHistoryEntry.model_validate(registry.dump(r)) for r in rows]
    if at is None:
        return AliasHistory(items=items)
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return AliasHistory(items=items, at=at, version_at=registry.alias_at(engine, tenant, model, alias, at))
