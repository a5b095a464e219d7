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

#: rejection codes answered 400 (the bytes are not a JSON object we can read); the others are 422
_BAD_REQUEST = frozenset({"malformed_json", "invalid_utf8", "not_an_object", "too_deeply_nested",
                          "number_out_of_range", "invalid_string", "undecodable"})


class _Refused(Exception):
    """An ingest refusal: HTTP status, outcome code (the metric's label) and a sentence."""

    def __init__(self, status_code: int, code: str, detail: str) -> None:
        super().__init__(code)
        self.status_code, self.code, self.detail = status_code, code, detail


def _check_media_type(request: Request) -> None:
    """JSON only: ``application/json`` or ``application/*+json`` (no Content-Type at all is read as JSON)."""
    declared = request.headers.get("content-type")
    if declared is None:
        return
    media = declared.split(";", 1)[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return
    raise _Refused(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                   f"Content-Type {media[:80]!r} is not JSON; send the event with Content-Type: application/json")


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _Refused(status.HTTP_413_CONTENT_TOO_LARGE, "payload_too_large",
                       f"payload is {declared} bytes; the maximum is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _Refused(status.HTTP_413_CONTENT_TOO_LARGE, "payload_too_large",
                           f"payload exceeds the maximum of {limit} bytes")
    return bytes(body)


@router.post("/events", status_code=status.HTTP_202_ACCEPTED)
async def ingest(request: Request, principal: Principal = Depends(allow("admin", "producer"))) -> dict[str, Any]:
    """Validate one event and publish it to its topic (keyed by model). 202 once Kafka has it.

    Refusals carry ``{"error": <code>, "detail": <sentence>}``: 415 for a body that is not JSON by its
    Content-Type, 413 above the size limit, 400 for bytes that are not a readable JSON object, 422 for an
    event that breaks the schema, 403 for a tenant the key may not use, 503 when Kafka does not take it.
    Every request is counted in ``warden_http_events_total`` by outcome.
    Roles: admin, producer. The event's tenant must be one of the key's tenants (403 otherwise)."""
    outcome = "error"
    try:
        limit = request.app.state.config.max_event_bytes
        _check_media_type(request)
        raw = await _read_capped(request, limit)
        decoded = decode_event(raw, limit)
        if isinstance(decoded, Rejection):
            code = (status.HTTP_413_CONTENT_TOO_LARGE if decoded.code == "payload_too_large" else
                    status.HTTP_400_BAD_REQUEST if decoded.code in _BAD_REQUEST else
                    status.HTTP_422_UNPROCESSABLE_CONTENT)
            raise _Refused(code, decoded.code, decoded.reason)
        try:
            principal.require_tenant(decoded.tenant)
        except HTTPException:
            outcome = "forbidden"
            raise
        topic = INPUT_TOPICS[decoded.type]
        try:
            await request.app.state.producer.send_and_wait(topic, raw, key=decoded.key)
        except Exception as exc:
            raise _Refused(status.HTTP_503_SERVICE_UNAVAILABLE, "publish_failed",
                           f"the event could not be published to Kafka ({type(exc).__name__}); retry later") from None
        outcome = "accepted"
        return {"event_id": decoded.event_id, "topic": topic, "status": "accepted"}
    except _Refused as refused:
        outcome = refused.code
        raise HTTPException(refused.status_code, {"error": refused.code, "detail": refused.detail}) from None
    finally:
        metrics.EVENTS_INGESTED.labels(outcome=outcome).inc()


@router.get("/schema")
def schema(_: Principal = Depends(allow(*ANY_ROLE))) -> dict[str, Any]:
    """The JSON Schema of the event envelope (schema version 1)."""
    return event_json_schema()
