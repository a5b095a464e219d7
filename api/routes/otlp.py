"""OTLP/HTTP trace receiver: ``POST /v1/traces`` — point an OpenTelemetry exporter at Warden.

Accepts ``application/x-protobuf`` and ``application/json`` (OTLP 1.x ``ExportTraceServiceRequest``),
optionally gzip-compressed, authenticated with a producer key (``Authorization: Bearer <key>``; OTel SDKs
send it from ``OTEL_EXPORTER_OTLP_HEADERS``). LLM, tool and retrieval spans become inference events on
``warden.inference`` (:mod:`contracts.otlp`); other spans are counted, not stored.

Answers as the OTLP specification says, in the request's encoding: 200 with an
``ExportTraceServiceResponse`` (``partial_success`` counts the spans rejected and says why); 400 for a
payload that is not an export request, 413 above the size limit (after decompression), 415 for another
content type; 429 (too many exports in flight) and 503 (Kafka did not take the events in time) with
``Retry-After``. Errors carry a ``google.rpc.Status`` with an ``ErrorInfo`` (``reason``: e.g.
``tenant_forbidden``), and a ``BadRequest`` for malformed payloads.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.routing import APIRoute
from google.protobuf.json_format import MessageToJson
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from pydantic import BaseModel, Field, ValidationError

from api import metrics
from api.auth import Principal, allow
from api.deps import ConfigDep, OtlpInFlightDep, ProducerDep
from contracts.events import InferenceEvent, dump_event
from contracts.otlp import OtlpDecodeError, SpanOutcome, decode_json, decode_protobuf, map_spans
from contracts.topics import INPUT_TOPICS

log = logging.getLogger("warden.api.otlp")

PROTOBUF, JSON = "application/x-protobuf", "application/json"
#: exports larger than this are decoded and mapped in a worker thread (the event loop keeps serving)
_INLINE_BYTES = 64 * 1024
_GRPC_CODES = {400: code_pb2.INVALID_ARGUMENT, 401: code_pb2.UNAUTHENTICATED, 403: code_pb2.PERMISSION_DENIED,
               413: code_pb2.OUT_OF_RANGE, 415: code_pb2.INVALID_ARGUMENT, 429: code_pb2.RESOURCE_EXHAUSTED,
               503: code_pb2.UNAVAILABLE}


class OtlpError(Exception):
    """An OTLP failure answered with a ``google.rpc.Status`` body."""

    def __init__(self, http_status: int, reason: str, message: str, *, field: str | None = None,
                 retry_after_s: int | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.http_status, self.reason, self.message, self.field = http_status, reason, message, field
        self.headers = dict(headers or {})
        if retry_after_s is not None:
            self.headers["Retry-After"] = str(retry_after_s)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _encode(message: Message, media: str) -> bytes:
    if media == PROTOBUF:
        return message.SerializeToString()
    return MessageToJson(message, indent=None, preserving_proto_field_name=False).encode()


def _status_response(err: OtlpError, media: str) -> Response:
    body = status_pb2.Status(code=_GRPC_CODES.get(err.http_status, code_pb2.UNKNOWN), message=err.message)
    body.details.add().Pack(error_details_pb2.ErrorInfo(reason=err.reason, domain="warden"))
    if err.field is not None:
        bad = error_details_pb2.BadRequest()
        bad.field_violations.add(field=err.field, description=err.message)
        body.details.add().Pack(bad)
    media = media if media in (PROTOBUF, JSON) else JSON
    return Response(_encode(body, media), status_code=err.http_status, media_type=media, headers=err.headers)


def _from_http(exc: HTTPException) -> OtlpError:
    detail = exc.detail
    if isinstance(detail, dict):
        reason, message = str(detail.get("error", "error")), str(detail.get("detail", detail))
    else:
        reason = {401: "unauthenticated", 403: "forbidden"}.get(exc.status_code, "error")
        message = str(detail)
    return OtlpError(exc.status_code, reason, message, headers=dict(exc.headers or {}))


class OtlpRoute(APIRoute):
    """Renders every failure of the route — authentication included — as an OTLP ``Status``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def otlp_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except OtlpError as err:
                return _status_response(err, _media_type(request))
            except HTTPException as exc:
                return _status_response(_from_http(exc), _media_type(request))

        return otlp_handler


router = APIRouter(prefix="/v1", tags=["otlp"], route_class=OtlpRoute)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, gunzipped; 413 past ``limit`` bytes (before or after decompression)."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", ""):
        raise OtlpError(415, "unsupported_encoding", f"Content-Encoding {encoding!r} is not supported (gzip or none)")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise OtlpError(413, "payload_too_large", f"payload is {declared} bytes; the maximum is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise OtlpError(413, "payload_too_large", f"payload exceeds the maximum of {limit} bytes")
    if encoding != "gzip":
        return bytes(body)
    out = bytearray()
    data = bytes(body)
    try:
        while data:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += inflater.decompress(data, limit + 1 - len(out))
            if len(out) > limit or inflater.unconsumed_tail:
                raise OtlpError(413, "payload_too_large", f"decompressed payload exceeds the maximum of {limit} bytes")
            if not inflater.eof:
                raise OtlpError(400, "malformed", "truncated gzip stream", field="body")
            data = inflater.unused_data  # a further gzip member, if any
    except zlib.error as exc:
        raise OtlpError(400, "malformed", f"body is not valid gzip: {exc}", field="body") from exc
    return bytes(out)


def _prepare(raw: bytes, media: str, tenants: tuple[str, ...] | None,
             max_event_bytes: int) -> tuple[list[SpanOutcome], list[tuple[bytes, bytes]], Counter[str]]:
    """Decode, map, validate and serialise: the outcomes, the (key, value) messages, rejections by reason."""
    spans = decode_protobuf(raw) if media == PROTOBUF else decode_json(raw)
    outcomes = map_spans(spans, tenants)
    messages: list[tuple[bytes, bytes]] = []
    rejected: Counter[str] = Counter()
    for i, out in enumerate(outcomes):
        if out.rejected is not None:
            rejected[out.rejected] += 1
        if out.event is None:
            continue
        try:
            event = InferenceEvent.model_validate(out.event)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            where = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
            rejected[f"invalid event ({where}: {errors[0]['msg'] if errors else exc})"] += 1
            outcomes[i] = SpanOutcome(out.kind, rejected="invalid")
            continue
        value = dump_event(event)
        if len(value) > max_event_bytes:
            rejected[f"event larger than {max_event_bytes} bytes"] += 1
            outcomes[i] = SpanOutcome(out.kind, rejected="too_large")
            continue
        messages.append((event.key, value))
    return outcomes, messages, rejected


def _count_spans(outcomes: list[SpanOutcome], accepted: bool) -> None:
    counts: Counter[tuple[str, str]] = Counter()
    for out in outcomes:
        outcome = "rejected" if out.rejected else ("accepted" if out.event and accepted else
                                                   "failed" if out.event else "not_stored")
        counts[(out.kind, outcome)] += 1
    for (kind, outcome), n in counts.items():
        metrics.OTLP_SPANS.labels(kind=kind, outcome=outcome).inc(n)


class _PartialSuccess(BaseModel):
    rejectedSpans: str | None = Field(default=None, description="spans rejected (an int64, as a string)")
    errorMessage: str | None = None


class ExportTraceServiceResponseJson(BaseModel):
    """``ExportTraceServiceResponse`` in OTLP/JSON (``{}`` when every span was taken)."""

    partialSuccess: _PartialSuccess | None = None


@router.post("/traces", response_class=Response, responses={
    200: {"description": "ExportTraceServiceResponse (partial_success when spans were rejected), in the "
                         "request's encoding", "model": ExportTraceServiceResponseJson,
          "content": {PROTOBUF: {"schema": {"type": "string", "format": "binary"}}, JSON: {}}},
    400: {"description": "not an ExportTraceServiceRequest (google.rpc.Status)"},
    413: {"description": "payload above the size limit"}, 415: {"description": "unsupported content type"},
    429: {"description": "too many exports in flight; retry after Retry-After"},
    503: {"description": "Kafka did not take the events; retry after Retry-After"}})
async def export_traces(request: Request, config: ConfigDep, producer: ProducerDep, inflight: OtlpInFlightDep,
                        principal: Principal = Depends(allow("admin", "producer"))) -> Response:
    """Receive an OTLP trace export; LLM spans become inference events (202-like: 200 once Kafka has them).

    Roles: admin, producer. Every span's tenant must be one of the key's tenants (403 otherwise)."""
    media = _media_type(request)
    if media not in (PROTOBUF, JSON):
        raise OtlpError(415, "unsupported_media_type",
                        f"Content-Type must be {PROTOBUF} or {JSON}, not {media or 'missing'!r}")
    if not inflight.admit(config.otlp_max_inflight):
        metrics.OTLP_THROTTLED.inc()
        raise OtlpError(429, "too_many_requests", "too many trace exports in flight; retry later", retry_after_s=1)
    try:
        raw = await _read_body(request, config.otlp_max_bytes)
        try:
            if len(raw) > _INLINE_BYTES:
                prepared = await asyncio.to_thread(_prepare, raw, media, principal.tenants, config.max_event_bytes)
            else:
                prepared = _prepare(raw, media, principal.tenants, config.max_event_bytes)
        except OtlpDecodeError as exc:
            raise OtlpError(400, "malformed", str(exc), field=exc.field or "body") from exc
        outcomes, messages, rejected = prepared
        for out in outcomes:
            if out.event is not None:
                principal.require_tenant(out.event["tenant"])
        topic = INPUT_TOPICS["inference"]
        try:
            await asyncio.wait_for(asyncio.gather(*(producer.send_and_wait(topic, value, key=key)
                                                    for key, value in messages)), config.otlp_publish_timeout_s)
        except Exception as exc:  # broker down, timed out or refusing: the exporter retries (ids make it idempotent)
            _count_spans(outcomes, accepted=False)
            log.warning("trace export not published", extra={"error": type(exc).__name__, "events": len(messages)})
            raise OtlpError(503, "unavailable", "the event log (Kafka) did not take the events; retry later",
                            retry_after_s=5) from exc
        _count_spans(outcomes, accepted=True)
    finally:
        inflight.release()
    response = ExportTraceServiceResponse()
    if rejected:
        n = sum(rejected.values())
        reasons = "; ".join(f"{count} × {reason}" for reason, count in rejected.most_common(5))
        response.partial_success.rejected_spans = n
        response.partial_success.error_message = f"{n} span(s) rejected: {reasons}"[:2000]
    return Response(_encode(response, media), media_type=media)
