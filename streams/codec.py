"""Decode raw Kafka/HTTP payloads into events, or into a clear rejection.

:func:`decode_event` never raises, whatever the bytes: a payload that cannot become an event becomes a
:class:`~contracts.dead_letter.Rejection` whose code says what was wrong. The fast path lets pydantic parse
and validate the JSON in one pass. Only when that fails do we classify the failure (size, nesting, UTF-8,
JSON, numbers, strings, schema version, type, fields) so that the dead-letter record and the HTTP error say
exactly what was wrong.

Checks besides the schema (they protect every later stage and the store, not only this parser):

* nesting deeper than :data:`MAX_DEPTH` (Python's ``json`` would raise ``RecursionError``; pydantic cannot
  serialise much deeper than a few hundred levels) → ``too_deeply_nested``;
* an integer of more than :data:`MAX_INT_DIGITS` digits (beyond what Python converts to and from text)
  → ``number_out_of_range``;
* a NUL character (``\\u0000``: PostgreSQL refuses it in text and JSON) or an unpaired UTF-16 surrogate
  (``\\ud800``: not encodable as UTF-8, so no output carrying it could be serialised) → ``invalid_string``;
* a UTF-8 byte order mark → ``malformed_json`` (RFC 8259 forbids it in JSON text).

Reasons never quote the payload's values beyond short identifier-like tokens: they travel to logs, the
dead-letter topic and the store, and a refused payload may carry personal data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from contracts.dead_letter import Rejection
from contracts.events import EVENT_TYPES, SUPPORTED_SCHEMA_VERSIONS, Event, EventAdapter

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails  # what ValidationError.errors() returns (pydantic's own dependency)

#: deepest nesting of arrays and objects accepted (an event needs about 8)
MAX_DEPTH = 64
#: longest integer literal accepted, in digits (Python's own limit on int <-> str conversion)
MAX_INT_DIGITS = 4300

#: a JSON string (skipped) or a bracket
_STRING_OR_BRACKET = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)
#: the escapes that matter: escaped backslashes (to keep the parity), NUL and surrogate code points
_ESCAPE = re.compile(rb"\\(?:\\|u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2}))")
_TOKEN = re.compile(r"[A-Za-z0-9._-]{1,32}")
_BOM = b"\xef\xbb\xbf"


class _NumberTooLarge(ValueError):
    def __init__(self, digits: int) -> None:
        super().__init__(digits)
        self.digits = digits


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _NumberTooLarge(digits)
    return int(text)


def _quote(value: Any) -> str:
    """A payload value for a reason: short identifier-like strings verbatim, anything else described."""
    if isinstance(value, str):
        return repr(value) if _TOKEN.fullmatch(value) else f"a string of {len(value)} characters"
    if value is None or isinstance(value, (bool, int, float)):
        text = repr(value)
        return text if len(text) <= 32 else f"a number of {len(text)} characters"
    return f"a JSON {type(value).__name__}"


def _loc_part(part: Any) -> str:
    return str(part) if isinstance(part, int) or _TOKEN.fullmatch(str(part)) else "<key>"


def _strip_tag(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the discriminator tag pydantic puts first in a tagged union's error location."""
    return loc[1:] if len(loc) > 1 and loc[0] in EVENT_TYPES else loc


def _describe(errors: Sequence[ErrorDetails], limit: int = 5) -> str:
    parts = []
    for err in errors[:limit]:
        loc = ".".join(_loc_part(p) for p in _strip_tag(tuple(err.get("loc", ())))) or "(root)"
        parts.append(f"{loc}: {str(err.get('msg'))[:200]}")
    more = f" (+{len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more


def nesting_depth_exceeds(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays/objects in ``raw`` nest deeper than ``limit`` (brackets inside strings ignored)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for m in _STRING_OR_BRACKET.finditer(raw):
        token = m.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def bad_string_escape(raw: bytes) -> str | None:
    """Why a JSON text's strings cannot be stored or re-encoded (a NUL, an unpaired surrogate), or None."""
    if b"\\u" not in raw:
        return None
    high_end = -1  # where a high surrogate ended, waiting for its low half
    for m in _ESCAPE.finditer(raw):
        token = m.group()
        low = len(token) == 6 and token[2:3] in b"dD" and token[3:4] in b"cdefCDEF"
        if high_end >= 0:
            if m.start() == high_end and low:
                high_end = -1
                continue
            return "a string holds an unpaired UTF-16 surrogate escape (\\ud800-\\udbff without its low half)"
        if token == b"\\\\":
            continue
        if token[2:] == b"0000":
            return "a string holds a NUL character (\\u0000)"
        if low:
            return "a string holds an unpaired UTF-16 surrogate escape (\\udc00-\\udfff without a high half)"
        high_end = m.end()
    if high_end >= 0:
        return "a string holds an unpaired UTF-16 surrogate escape (\\ud800-\\udbff without its low half)"
    return None


def _classify(raw: bytes) -> Rejection | Any:
    """Slow path: find the first thing wrong with ``raw``; return the parsed object if none."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection("invalid_utf8", f"payload is not valid UTF-8: {exc.reason} at byte {exc.start}")
    if raw.startswith(_BOM):
        return Rejection("malformed_json", "payload starts with a UTF-8 byte order mark (BOM); send JSON without one")
    try:
        data = json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        return Rejection("malformed_json", f"payload is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except _NumberTooLarge as exc:
        return Rejection("number_out_of_range",
                         f"an integer has {exc.digits} digits; at most {MAX_INT_DIGITS} are accepted")
    except RecursionError:
        return Rejection("too_deeply_nested", f"arrays/objects nest deeper than {MAX_DEPTH} levels")
    bad = bad_string_escape(raw)
    if bad:
        return Rejection("invalid_string", bad)
    if not isinstance(data, dict):
        return Rejection("not_an_object", f"payload must be a JSON object, got {type(data).__name__}")
    event_id, tenant = _claimed(data, "event_id"), _claimed(data, "tenant")
    version = data.get("schema_version")
    if version is None:
        return Rejection("missing_schema_version", "field 'schema_version' is required", event_id, tenant)
    if not isinstance(version, str) or version not in SUPPORTED_SCHEMA_VERSIONS:
        return Rejection(
            "unsupported_schema_version",
            f"schema_version {_quote(version)} is not supported (supported: {sorted(SUPPORTED_SCHEMA_VERSIONS)})",
            event_id, tenant,
        )
    etype = data.get("type")
    if etype not in EVENT_TYPES:
        return Rejection("unknown_type", f"type {_quote(etype)} is not one of {list(EVENT_TYPES)}", event_id, tenant)
    return data


def _claimed(data: dict[str, Any], field: str) -> str | None:
    """A string id the payload gives for ``field`` (1–200 characters that UTF-8 can encode), else None."""
    value = data.get(field)
    return _encodable(value) if isinstance(value, str) and 0 < len(value) <= 200 else None


def _encodable(value: str) -> str | None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value


def _decode(raw: bytes, max_bytes: int) -> Event | Rejection:
    if len(raw) > max_bytes:
        return Rejection("payload_too_large", f"payload is {len(raw)} bytes; the maximum is {max_bytes}")
    if nesting_depth_exceeds(raw):
        return Rejection("too_deeply_nested", f"arrays/objects nest deeper than {MAX_DEPTH} levels")
    try:
        event = EventAdapter.validate_json(raw)
    except ValidationError:
        pass
    else:
        bad = bad_string_escape(raw)
        return Rejection("invalid_string", bad, _encodable(event.event_id), event.tenant) if bad else event
    found = _classify(raw)
    if isinstance(found, Rejection):
        return found
    event_id, tenant = _claimed(found, "event_id"), _claimed(found, "tenant")
    try:
        return EventAdapter.validate_python(found)
    except ValidationError as exc:
        return Rejection("validation_error", f"invalid {found['type']} event: {_describe(exc.errors(include_url=False))}",
                         event_id, tenant)


def decode_event(raw: bytes, max_bytes: int) -> Event | Rejection:
    """Parse and validate one payload; never raises (any failure is a :class:`Rejection`)."""
    try:
        return _decode(raw, max_bytes)
    except Exception as exc:  # a parser bug or resource limit must not take a worker or a request down
        return Rejection("undecodable", f"payload could not be decoded ({type(exc).__name__})")
