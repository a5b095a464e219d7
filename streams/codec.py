"""Decode raw Kafka/HTTP payloads into events, or into a clear rejection.

The fast path lets pydantic parse and validate the JSON in one pass. Only when that fails do we
classify the failure (size, UTF-8, JSON, schema version, type, fields) so that the dead-letter record
and the HTTP error say exactly what was wrong.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from contracts.dead_letter import Rejection
from contracts.events import EVENT_TYPES, SUPPORTED_SCHEMA_VERSIONS, Event, EventAdapter


def _strip_tag(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the discriminator tag pydantic puts first in a tagged union's error location."""
    return loc[1:] if len(loc) > 1 and loc[0] in EVENT_TYPES else loc


def _describe(errors: list[dict[str, Any]], limit: int = 5) -> str:
    parts = []
    for err in errors[:limit]:
        loc = ".".join(str(p) for p in _strip_tag(err.get("loc", ()))) or "(root)"
        parts.append(f"{loc}: {err.get('msg')}")
    more = f" (+{len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more


def _classify(raw: bytes, max_bytes: int) -> Rejection | Any:
    """Slow path: find the first thing wrong with ``raw``; return the parsed object if none."""
    if len(raw) > max_bytes:
        return Rejection("payload_too_large", f"payload is {len(raw)} bytes; the maximum is {max_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection("invalid_utf8", f"payload is not valid UTF-8: {exc.reason} at byte {exc.start}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return Rejection("malformed_json", f"payload is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    if not isinstance(data, dict):
        return Rejection("not_an_object", f"payload must be a JSON object, got {type(data).__name__}")
    event_id, tenant = _claimed(data, "event_id"), _claimed(data, "tenant")
    version = data.get("schema_version")
    if version is None:
        return Rejection("missing_schema_version", "field 'schema_version' is required", event_id, tenant)
    if not isinstance(version, str) or version not in SUPPORTED_SCHEMA_VERSIONS:
        return Rejection(
            "unsupported_schema_version",
            f"schema_version {version!r} is not supported (supported: {sorted(SUPPORTED_SCHEMA_VERSIONS)})",
            event_id, tenant,
        )
    etype = data.get("type")
    if etype not in EVENT_TYPES:
        return Rejection("unknown_type", f"type {etype!r} is not one of {list(EVENT_TYPES)}", event_id, tenant)
    return data


def _claimed(data: dict[str, Any], field: str) -> str | None:
    """A string id the payload gives for ``field`` (1–200 characters), else None."""
    value = data.get(field)
    return value if isinstance(value, str) and 0 < len(value) <= 200 else None


def decode_event(raw: bytes, max_bytes: int) -> Event | Rejection:
    """Parse and validate one payload; never raises."""
    if len(raw) <= max_bytes:
        try:
            return EventAdapter.validate_json(raw)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
        except Exception as exc:
            return Rejection("invalid", f"payload could not be decoded: {exc}")
    else:
        errors = []
    found = _classify(raw, max_bytes)
    if isinstance(found, Rejection):
        return found
    event_id, tenant = _claimed(found, "event_id"), _claimed(found, "tenant")
    try:
        return EventAdapter.validate_python(found)
    except ValidationError as exc:
        return Rejection("validation_error", f"invalid {found['type']} event: {_describe(exc.errors(include_url=False))}",
                         event_id, tenant)
    except Exception as exc:
        return Rejection("invalid", f"payload could not be validated: {exc}; {_describe(errors)}", event_id, tenant)
