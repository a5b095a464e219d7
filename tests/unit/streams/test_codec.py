"""decode_event never raises: any bytes become an event that can be serialised again, or a rejection."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.dead_letter import Rejection
from contracts.events import Event, EventAdapter
from streams.codec import MAX_DEPTH, decode_event
from tests.events import MINIMAL, raw

LIMIT = 1024 * 1024
CODES = {"payload_too_large", "too_deeply_nested", "invalid_utf8", "malformed_json", "number_out_of_range",
         "invalid_string", "not_an_object", "missing_schema_version", "unsupported_schema_version", "unknown_type",
         "validation_error", "undecodable"}


def _check(payload: bytes) -> Event | Rejection:
    out = decode_event(payload, LIMIT)
    if isinstance(out, Rejection):
        assert out.code in CODES and out.reason
    else:
        # whatever is accepted can be written out again by every later stage (topics, the store)
        text = out.model_dump_json()
        json.dumps(json.loads(text))
        EventAdapter.validate_json(text)
        assert "\\u0000" not in text  # PostgreSQL stores no NUL in text or JSON
    return out


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise(payload: bytes) -> None:
    _check(payload)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_json, st.booleans())
def test_arbitrary_json_never_raises(value: Any, ascii_only: bool) -> None:
    _check(json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["messages", "error", "attributes", "user", "latency_ms", "usage", "response"]), _json)
def test_event_with_arbitrary_field_values_never_raises(field: str, value: Any) -> None:
    ev = copy.deepcopy(MINIMAL)
    ev["inference"][field] = value
    _check(json.dumps(ev).encode("utf-8", "surrogatepass"))


_any_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=40)  # surrogates and NUL too


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_any_text, _any_text, st.dictionaries(_any_text, _json, max_size=3), st.booleans())
def test_valid_events_with_arbitrary_texts_never_raise(content: str, error: str, attributes: dict[str, Any],
                                                       ascii_only: bool) -> None:
    ev = copy.deepcopy(MINIMAL)
    ev["inference"].update(messages=[{"role": "user", "content": content}], error=error, attributes=attributes)
    _check(json.dumps(ev, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass"))


def _with(body: bytes) -> bytes:
    """MINIMAL with ``body`` as the value of inference.attributes.x (raw JSON text)."""
    return raw(MINIMAL).replace(b'"status": "ok"', b'"status": "ok", "attributes": {"x": ' + body + b"}")


@pytest.mark.parametrize(("payload", "code"), [
    (b"[" * 100_000 + b"]" * 100_000, "too_deeply_nested"),
    (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "too_deeply_nested"),
    (_with(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1)), "too_deeply_nested"),
    (b'{"a": ' + b"9" * 5001 + b"}", "number_out_of_range"),
    (_with(b"9" * 5001), "number_out_of_range"),
    (raw(MINIMAL).replace(b'"latency_ms": 850', b'"latency_ms": ' + b"1" * 5001), "number_out_of_range"),
    (raw(MINIMAL).replace(b"Where is my order?", b"Where \\ud800 is"), "invalid_string"),
    (raw(MINIMAL).replace(b"Where is my order?", b"\\udc00 alone"), "invalid_string"),
    (raw(MINIMAL).replace(b"Where is my order?", b"a NUL \\u0000 here"), "invalid_string"),
    (b"\xef\xbb\xbf" + raw(MINIMAL), "malformed_json"),
    (b"\xff\xfe" + raw(MINIMAL).decode().encode("utf-16-le"), "invalid_utf8"),
    (b"NaN", "not_an_object"),
])
def test_poison_payloads_are_refused_with_a_clear_code(payload: bytes, code: str) -> None:
    out = _check(payload)
    assert isinstance(out, Rejection) and out.code == code, out


def test_nan_and_infinity_in_number_fields_are_refused_as_not_finite() -> None:
    for literal in (b"NaN", b"Infinity", b"-Infinity"):
        out = _check(raw(MINIMAL).replace(b'"latency_ms": 850', b'"latency_ms": ' + literal))
        assert isinstance(out, Rejection) and out.code == "validation_error"
        assert "finite" in out.reason and "latency_ms" in out.reason, out.reason


def test_nan_is_kept_in_training_metrics_where_it_means_a_diverged_run() -> None:
    ev = {"schema_version": "1", "event_id": "t1", "type": "training", "occurred_at": "2026-01-01T00:00:00Z",
          "tenant": "acme", "model": {"name": "m", "version": "1"},
          "training": {"run_id": "r", "phase": "step", "step": 3, "metrics": {"loss": float("nan")}}}
    out = _check(json.dumps(ev).encode())
    assert not isinstance(out, Rejection) and out.training.metrics["loss"] != out.training.metrics["loss"]


def test_valid_surrogate_pairs_and_escaped_backslashes_are_accepted() -> None:
    text = raw(MINIMAL).replace(b"Where is my order?", b"smile \\ud83d\\ude00 and a path C:\\\\ud800")
    out = _check(text)
    assert not isinstance(out, Rejection)
    assert out.inference.messages[0].content == "smile \U0001F600 and a path C:\\ud800"


def test_reasons_do_not_quote_values_that_may_be_personal_data() -> None:
    email = "patricia.desrosiers@example.ch"
    for payload in (raw({**MINIMAL, "type": email}), raw({**MINIMAL, "schema_version": email}),
                    raw({**MINIMAL, "inference": {**MINIMAL["inference"], "user": {"attributes": {email: 1}}}})):
        out = _check(payload)
        assert isinstance(out, Rejection)
        assert email not in out.reason, out.reason
