"""The audit trail: list (filters, cursor), verify the hash chain, export a period with its chain head."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse

from api import metrics
from api.auth import AUDIT_ROLES, Principal, allow
from governance import audit

router = APIRouter(prefix="/v1/audit", tags=["audit"])


def _cursor(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or len(value) > 18:
        raise HTTPException(400, {"error": "bad_cursor", "detail": "malformed cursor"})
    return int(value)


@router.get("", response_class=Response, responses={200: {"content": {"application/json": {}}}})
async def list_audit(
    request: Request,
    actor: str | None = None,
    action: str | None = Query(None, description="e.g. alias.switched, key.created, alert.acknowledged"),
    tenant: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = Query(None, description="at ≥ since (ISO 8601)"),
    until: datetime | None = Query(None, description="at < until (ISO 8601)"),
    cursor: str | None = Query(None, description="next_cursor of the previous page"),
    limit: int = Query(100, ge=1, le=1000),
    principal: Principal = Depends(allow(*AUDIT_ROLES)),
) -> Response:
    """Audit entries, newest first (roles: admin, auditor). Tenant-scoped keys see their tenants' entries.

    Each item is the entry's canonical content (seq, at, actor, action, tenant, target_type, target_id,
    before, after) with its ``prev_hash``, ``content_hash`` and ``hash``; ``next_cursor`` pages on."""
    tenants = principal.scope(tenant)
    rows, nxt = await asyncio.to_thread(
        audit.list_entries, request.app.state.engine, tenants=tenants, actor=actor, action=action,
        target_type=target_type, target_id=target_id, since=since, until=until, before_seq=_cursor(cursor),
        limit=limit)
    return Response(audit.page_json(rows, nxt), media_type="application/json")


#: the most entries ``GET /v1/audit/verify?new=true`` checks at once (a fraction of a second)
NEW_ENTRIES_LIMIT = 20_000


@router.get("/verify")
async def verify_audit(request: Request, new: bool = Query(False, description=(
        "true: verify only the entries after the last verified checkpoint (at most 20,000; the checkpoint moves "
        "on), not the whole chain")), principal: Principal = Depends(allow(*AUDIT_ROLES))) -> dict[str, Any]:
    """Walk the whole chain; ``ok`` false names ``first_broken_seq`` and why (roles: admin, auditor). The
    result is recorded as the last full verification (``GET /v1/audit/head`` shows it). ``new=true``
    checks the entries appended since the checkpoint only: fast, but an older entry changed after it was
    verified is found by the full verification (which the service runs periodically)."""
    engine = request.app.state.engine
    if new:
        result = await asyncio.to_thread(audit.verify_new, engine, by=principal.actor, limit=NEW_ENTRIES_LIMIT)
        return {**result.as_dict(), "scope": "new"}
    result = await asyncio.to_thread(audit.verify_full, engine, by=principal.actor)
    metrics.observe_audit(result.ok, result.checked, result.seconds)
    return {**result.as_dict(), "scope": "full"}


@router.get("/head")
async def audit_head(request: Request, _: Principal = Depends(allow(*AUDIT_ROLES))) -> dict[str, Any]:
    """The chain head (last seq and hash): publish it to prove later exports complete. ``verification``:
    the last full verification (when, by whom, its result and time) and the checkpoint up to which the
    chain is known to link from its first entry."""
    engine = request.app.state.engine
    seq, h = await asyncio.to_thread(audit.head, engine)
    return {"seq": seq, "hash": h, "verification": await asyncio.to_thread(audit.verification_status, engine)}


@router.get("/export")
async def export_audit(
    request: Request,
    from_: datetime | None = Query(None, alias="from", description="at ≥ from (ISO 8601)"),
    to: datetime | None = Query(None, description="at < to (ISO 8601)"),
    format: Literal["jsonl", "csv"] = "jsonl",
    principal: Principal = Depends(allow(*AUDIT_ROLES)),
) -> StreamingResponse:
    """Export a period with its chain facts (anchor hash, last hash, head), so it can be proven complete.

    JSONL ends with a ``{"chain": …}`` line; CSV with a ``#chain`` row; both also in ``X-Warden-Chain-*``
    headers. Entries of tenants outside the key's scope keep only their seq and hashes (roles: admin, auditor).
    """
    if from_ is not None and to is not None and to <= from_:
        raise HTTPException(422, {"error": "invalid", "detail": "'to' must be after 'from'"})
    engine = request.app.state.engine
    chain = await asyncio.to_thread(audit.export_chain, engine, from_, to)
    tenants = None if principal.all_tenants else list(principal.tenants or ())
    rows = audit.export_rows(engine, chain)
    body = audit.export_jsonl(rows, chain, tenants) if format == "jsonl" else audit.export_csv(rows, chain, tenants)
    media = "application/x-ndjson" if format == "jsonl" else "text/csv; charset=utf-8"
    headers = {
        "X-Warden-Chain-From-Seq": str(chain.from_seq), "X-Warden-Chain-To-Seq": str(chain.to_seq),
        "X-Warden-Chain-Anchor": chain.anchor_prev_hash, "X-Warden-Chain-Last-Hash": chain.last_hash,
        "X-Warden-Chain-Head-Seq": str(chain.head_seq), "X-Warden-Chain-Head-Hash": chain.head_hash,
        "Content-Disposition": f'attachment; filename="warden-audit-{chain.from_seq}-{chain.to_seq}.{format}"',
    }
    return StreamingResponse(body, media_type=media, headers=headers)
