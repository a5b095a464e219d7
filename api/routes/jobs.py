"""Jobs: request a retrain/evaluate/rollback, approve it, cancel it, follow its statuses."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field
from sqlmodel import Session

from api import job_client
from api.auth import Principal, allow
from contracts.jobs import TERMINAL_STATES, JobSpec, JobState
from governance.jobs import approve_job, job_history, record_cancel_request, request_job
from store.models import JobRow
from store.repository import page

router = APIRouter(prefix="/v1", tags=["jobs"])
READ = allow("admin", "operator", "auditor")
WRITE = allow("admin", "operator")


class JobRequest(BaseModel):
    """What a person asks for; the rest of the job spec takes its defaults."""

    kind: Literal["retrain", "evaluate", "rollback"]
    tenant: str = Field(min_length=1, max_length=200)
    model: str = Field(min_length=1, max_length=200)
    version: str | None = Field(default=None, description="rollback: the version to restore (default: previous)")
    approval: Literal["required", "auto"] = "required"
    reason: str | None = Field(default=None, max_length=2000)
    idempotency_key: str | None = Field(default=None, max_length=200,
                                        description="same key, same job (a retried request creates nothing new)")
    spec: dict[str, Any] = Field(default_factory=dict, description="dataset/train/gate overrides of the job spec")


def _dump(row: JobRow) -> dict[str, Any]:
    data = row.model_dump()
    for k in ("created_at", "updated_at"):
        if isinstance(data.get(k), datetime) and data[k].tzinfo is None:
            data[k] = data[k].replace(tzinfo=UTC)
    return data


def _get(request: Request, job_id: str, principal: Principal) -> JobRow:
    with Session(request.app.state.engine, expire_on_commit=False) as session:
        row = session.get(JobRow, job_id)
    if row is None or not principal.allows(row.tenant):
        raise HTTPException(status.HTTP_404_NOT_FOUND, {"error": "not_found", "detail": f"no job {job_id!r}"})
    return row


@router.post("/jobs", status_code=status.HTTP_202_ACCEPTED)
async def create_job(request: Request, body: JobRequest, principal: Principal = Depends(WRITE)) -> dict[str, Any]:
    """Request a job; with ``approval: required`` it waits for ``POST /v1/jobs/{id}/approve``."""
    principal.require_tenant(body.tenant)
    key = body.idempotency_key or uuid.uuid4().hex
    try:
        job = JobSpec.model_validate({
            **body.spec, "job_id": JobSpec.make_id(body.tenant, body.model, body.kind, key), "kind": body.kind,
            "tenant": body.tenant, "model": body.model, "version": body.version, "approval": body.approval,
            "requested_by": principal.actor, "reason": body.reason,
        })
    except ValueError as exc:
        raise HTTPException(422, {"error": "invalid_job", "detail": str(exc)}) from exc
    if job.approval == "auto":
        job = job.approve(principal.actor)
    row, new = await asyncio.to_thread(request_job, request.app.state.engine, job, principal.actor)
    if new:
        await job_client.submit(request.app.state.producer, job)
    return _dump(row)


@router.post("/jobs/{job_id}/approve", status_code=status.HTTP_202_ACCEPTED)
async def approve(request: Request, job_id: str, principal: Principal = Depends(WRITE)) -> dict[str, Any]:
    """Approve a job that waits for approval; it is then published to the job workers."""
    row = _get(request, job_id, principal)
    try:
        job = await asyncio.to_thread(approve_job, request.app.state.engine, row.job_id, principal.actor)
    except ValueError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, {"error": "not_awaiting_approval", "detail": str(exc)}) from exc
    await job_client.submit(request.app.state.producer, job)
    return _dump(_get(request, job_id, principal))


@router.post("/jobs/{job_id}/cancel", status_code=status.HTTP_202_ACCEPTED)
async def cancel(request: Request, job_id: str, principal: Principal = Depends(WRITE),
                 reason: str | None = Query(None, max_length=2000)) -> dict[str, Any]:
    """Ask the workers to cancel a job (checked between steps; the request is audited)."""
    row = _get(request, job_id, principal)
    if row.state in TERMINAL_STATES:
        raise HTTPException(status.HTTP_409_CONFLICT, {"error": "finished", "detail": f"job is {row.state}"})
    await job_client.cancel(request.app.state.producer, job_id, principal.actor, reason)
    await asyncio.to_thread(record_cancel_request, request.app.state.engine, row, principal.actor, reason)
    return {"job_id": job_id, "status": "cancel_requested"}


@router.get("/jobs")
async def list_jobs(request: Request, tenant: str | None = None, model: str | None = None,
                    state: JobState | None = None, cursor: str | None = None,
                    limit: int = Query(100, ge=1, le=1000), principal: Principal = Depends(READ)) -> dict[str, Any]:
    """Jobs, newest first."""
    tenants = principal.scope(tenant)
    filters: list[Any] = []
    if tenants is not None:
        filters.append(JobRow.tenant.in_(tenants))
    if model:
        filters.append(JobRow.model == model)
    if state:
        filters.append(JobRow.state == state)
    try:
        result = await asyncio.to_thread(page, request.app.state.engine, JobRow, time_col="created_at",
                                         key_col="job_id", filters=filters, cursor=cursor, limit=limit)
    except ValueError as exc:
        raise HTTPException(400, {"error": "bad_cursor", "detail": str(exc)}) from exc
    return {"items": [_dump(r) for r in result.items], "next_cursor": result.next_cursor}


@router.get("/jobs/{job_id}")
async def get_job(request: Request, job_id: str, principal: Principal = Depends(READ)) -> dict[str, Any]:
    """A job with every status its workers published (attempts, progress, result)."""
    row = _get(request, job_id, principal)
    history = await asyncio.to_thread(job_history, request.app.state.engine, job_id)
    return {**_dump(row), "statuses": [h.model_dump() for h in history]}
