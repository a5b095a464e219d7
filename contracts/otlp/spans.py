"""Decode OTLP 1.x trace exports (``ExportTraceServiceRequest``) into plain spans.

Both encodings of OTLP/HTTP are read: binary protobuf (``application/x-protobuf``, through the
``opentelemetry-proto`` classes) and OTLP/JSON (``application/json``: the proto3 JSON mapping with
lowerCamelCase keys, hex-encoded ``traceId``/``spanId``, integer enums, 64-bit integers as strings or
numbers). Attribute values become Python values: strings, bools, ints, floats, lists and dicts
(``kvlistValue``); bytes become lowercase hex. Unknown JSON fields are ignored, as the spec requires.

A payload that is not an ``ExportTraceServiceRequest`` raises :class:`OtlpDecodeError` (HTTP 400); a span
whose ids are malformed is still returned, with ``trace_id``/``span_id`` left empty, so the mapping can
reject that span alone (partial success).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

#: OTLP span status codes
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2


class OtlpDecodeError(ValueError):
    """The payload is not a valid ``ExportTraceServiceRequest``; ``field`` names where it went wrong."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(slots=True)
class SpanEvent:
    """A span event (``name``, attributes); the GenAI conventions before v1.37 put prompts and completions here."""

    name: str
    attributes: dict[str, Any]


@dataclass(slots=True)
class Span:
    """One span with its resource's attributes (the dict is shared by the spans of a resource)."""

    trace_id: str
    """32 lowercase hex digits, or ``""`` when the payload's id was malformed or all zeros."""
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    status_code: int = STATUS_UNSET
    status_message: str = ""
    events: list[SpanEvent] = field(default_factory=list)


# ------------------------------------------------------------------------------------ protobuf


def _pb_value(v: Any) -> Any:
    which = v.WhichOneof("value")
    if which == "string_value":
        return v.string_value
    if which == "int_value":
        return v.int_value
    if which == "double_value":
        return v.double_value
    if which == "bool_value":
        return v.bool_value
    if which == "array_value":
        return [_pb_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _pb_value(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return v.bytes_value.hex()
    return None


def _pb_attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: _pb_value(kv.value) for kv in kvs}


def _id(raw: bytes, size: int) -> str:
    """Hex of a trace (16 bytes) or span (8 bytes) id; ``""`` when the length is wrong or it is all zeros."""
    return raw.hex() if len(raw) == size and any(raw) else ""


def decode_protobuf(raw: bytes) -> list[Span]:
    """The spans of a binary-protobuf ``ExportTraceServiceRequest``."""
    try:
        request = ExportTraceServiceRequest.FromString(raw)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise OtlpDecodeError(f"not a protobuf ExportTraceServiceRequest: {exc}") from exc
    spans: list[Span] = []
    for rs in request.resource_spans:
        resource = _pb_attrs(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                spans.append(Span(
                    trace_id=_id(s.trace_id, 16), span_id=_id(s.span_id, 8),
                    parent_span_id=_id(s.parent_span_id, 8) or None, name=s.name, kind=s.kind,
                    start_ns=s.start_time_unix_nano, end_ns=s.end_time_unix_nano,
                    attributes=_pb_attrs(s.attributes), resource=resource,
                    status_code=s.status.code, status_message=s.status.message,
                    events=[SpanEvent(e.name, _pb_attrs(e.attributes)) for e in s.events],
                ))
    return spans


# ------------------------------------------------------------------------------------ JSON


def _json_int(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise OtlpDecodeError(f"{where}: expected an integer, got a boolean", where)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise OtlpDecodeError(f"{where}: expected an integer, got {value!r}"[:300], where)


def _json_value(v: Any, where: str) -> Any:
    if not isinstance(v, dict):
        raise OtlpDecodeError(f"{where}: an AnyValue must be an object", where)
    if "stringValue" in v:
        return str(v["stringValue"])
    if "intValue" in v:
        return _json_int(v["intValue"], where)
    if "doubleValue" in v:
        d = v["doubleValue"]
        if isinstance(d, (int, float)) and not isinstance(d, bool):
            return float(d)
        if isinstance(d, str) and d in ("NaN", "Infinity", "-Infinity"):
            return float(d.replace("Infinity", "inf"))
        raise OtlpDecodeError(f"{where}: doubleValue must be a number", where)
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "arrayValue" in v:
        values = (v["arrayValue"] or {}).get("values") or []
        if not isinstance(values, list):
            raise OtlpDecodeError(f"{where}: arrayValue.values must be a list", where)
        return [_json_value(x, f"{where}[{i}]") for i, x in enumerate(values)]
    if "kvlistValue" in v:
        return _json_attrs((v["kvlistValue"] or {}).get("values"), where)
    if "bytesValue" in v:
        try:
            return base64.b64decode(str(v["bytesValue"]), validate=True).hex()
        except binascii.Error as exc:
            raise OtlpDecodeError(f"{where}: bytesValue is not base64", where) from exc
    return None  # an empty AnyValue


def _json_attrs(kvs: Any, where: str) -> dict[str, Any]:
    if kvs is None:
        return {}
    if not isinstance(kvs, list):
        raise OtlpDecodeError(f"{where}: attributes must be a list of key/value objects", where)
    out: dict[str, Any] = {}
    for i, kv in enumerate(kvs):
        if not isinstance(kv, dict) or not isinstance(kv.get("key"), str):
            raise OtlpDecodeError(f"{where}[{i}]: an attribute needs a string 'key'", f"{where}[{i}]")
        out[kv["key"]] = _json_value(kv.get("value") or {}, f"{where}.{kv['key']}")
    return out


def _json_id(value: Any, size: int) -> str:
    """OTLP/JSON ids are hex; base64 (the plain proto3 JSON mapping some encoders use) is accepted too."""
    if not isinstance(value, str) or not value:
        return ""
    if len(value) == 2 * size:
        try:
            return _id(bytes.fromhex(value), size)
        except ValueError:
            pass
    try:
        return _id(base64.b64decode(value, validate=True), size)
    except (binascii.Error, ValueError):
        return ""


def _list(obj: dict[str, Any], key: str, where: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise OtlpDecodeError(f"{where}.{key} must be a list", f"{where}.{key}")
    return value


def _obj(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OtlpDecodeError(f"{where} must be an object", where)
    return value


def decode_json(raw: bytes) -> list[Span]:
    """The spans of an OTLP/JSON ``ExportTraceServiceRequest``."""
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OtlpDecodeError(f"not valid JSON: {exc}") from exc
    root = _obj(doc, "request")
    spans: list[Span] = []
    for r, rs in enumerate(_list(root, "resourceSpans", "request")):
        rw = f"resourceSpans[{r}]"
        rs = _obj(rs, rw)
        resource = _json_attrs(_obj(rs.get("resource"), f"{rw}.resource").get("attributes"), f"{rw}.resource.attributes")
        for c, ss in enumerate(_list(rs, "scopeSpans", rw)):
            sw = f"{rw}.scopeSpans[{c}]"
            for n, s in enumerate(_list(_obj(ss, sw), "spans", sw)):
                w = f"{sw}.spans[{n}]"
                s = _obj(s, w)
                status = _obj(s.get("status"), f"{w}.status")
                events = []
                for e, ev in enumerate(_list(s, "events", w)):
                    ev = _obj(ev, f"{w}.events[{e}]")
                    events.append(SpanEvent(str(ev.get("name") or ""),
                                            _json_attrs(ev.get("attributes"), f"{w}.events[{e}].attributes")))
                spans.append(Span(
                    trace_id=_json_id(s.get("traceId"), 16), span_id=_json_id(s.get("spanId"), 8),
                    parent_span_id=_json_id(s.get("parentSpanId"), 8) or None, name=str(s.get("name") or ""),
                    kind=_json_int(s.get("kind", 0), f"{w}.kind"),
                    start_ns=_json_int(s.get("startTimeUnixNano", 0), f"{w}.startTimeUnixNano"),
                    end_ns=_json_int(s.get("endTimeUnixNano", 0), f"{w}.endTimeUnixNano"),
                    attributes=_json_attrs(s.get("attributes"), f"{w}.attributes"), resource=resource,
                    status_code=_json_int(status.get("code", 0), f"{w}.status.code"),
                    status_message=str(status.get("message") or ""), events=events,
                ))
    return spans
