"""HTTP ingest for producers without a Kafka client, and the published event schema."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status

from api import metrics
from api.auth import ANY_ROLE, Principal, allow
from contracts.dead_letter import Rejection
from contracts.events import event_json_schema
from contracts.topics import INPUT_TOPICS
from streams.codec import decode_event

router = APIRouter(prefix="/v1", tags=["events"])

_STATUS = {"payload_too_large": status.HTTP_413_CONTENT_TOO_LARGE}


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                            {"error": "payload_too_large", "detail": f"payload is {declared} bytes; the maximum is {limit}"})
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                                {"error": "payload_too_large", "detail": f"payload exceeds the maximum of {limit} bytes"})
    return bytes(body)


@router.post("/events", status_code=status.HTTP_202_ACCEPTED)
async def ingest(request: Request, principal: Principal = Depends(allow("admin", "producer"))) -> dict[str, Any]:
    """Validate one event and publish it to its topic (keyed by model). 202 once Kafka has it.

    Roles: admin, producer. The event's tenant must be one of the key's tenants (403 otherwise)."""
    limit = request.app.state.config.max_event_bytes
    raw = await _read_capped(request, limit)
    decoded = decode_event(raw, limit)
    if isinstance(decoded, Rejection):
        metrics.EVENTS_INGESTED.labels(outcome=decoded.code).inc()
        code = _STATUS.get(decoded.code, status.HTTP_400_BAD_REQUEST if decoded.code in
                           {"malformed_json", "invalid_utf8", "not_an_object"} else status.HTTP_422_UNPROCESSABLE_CONTENT)
        raise HTTPException(code, {"error": decoded.code, "detail": decoded.reason})
    principal.require_tenant(decoded.tenant)
    topic = INPUT_TOPICS[decoded.type]
    await request.app.state.producer.send_and_wait(topic, raw, key=decoded.key)
    metrics.EVENTS_INGESTED.labels(outcome="accepted").inc()
    return {"event_id": decoded.event_id, "topic": topic, "status": "accepted"}


@router.get("/schema")
def schema(_: Principal = Depends(allow(*ANY_ROLE))) -> dict[str, Any]:
    """The JSON Schema of the event envelope (schema version 1)."""
    return event_json_schema()
