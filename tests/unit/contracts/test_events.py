"""The event contract: what is accepted, what is refused and why."""

from __future__ import annotations

import json

import pytest

from contracts.dead_letter import DeadLetter, Rejection
from contracts.events import InferenceEvent, event_json_schema
from streams.codec import decode_event
from tests.events import BAD_INPUTS, MINIMAL, raw
from tests.support.procs import ROOT

MAX = 1024 * 1024


def test_minimal_inference_event_is_accepted_as_is() -> None:
    event = decode_event(raw(MINIMAL), MAX)
    assert isinstance(event, InferenceEvent)
    assert event.model.name == "support-bot" and event.model.version == "3"
    assert event.inference.usage.input_tokens == 12 and event.inference.usage.output_tokens == 40
    assert event.inference.user.attributes == {"age_band": "18-25"}
    assert event.inference.prompt_text == "Where is my order?"
    assert event.key == b"acme/support-bot"


def test_openai_usage_names_and_content_parts() -> None:
    ev = json.loads(raw(MINIMAL))
    ev["inference"]["usage"] = {"prompt_tokens": 5, "completion_tokens": 9}
    ev["inference"]["messages"] = [{"role": "user", "content": [{"type": "text", "text": "part one"},
                                                                 {"type": "text", "text": "part two"}]}]
    event = decode_event(raw(ev), MAX)
    assert isinstance(event, InferenceEvent)
    assert (event.inference.usage.input_tokens, event.inference.usage.output_tokens) == (5, 9)
    assert event.inference.prompt_text == "part one\npart two"


def test_opentelemetry_genai_attribute_names_are_accepted() -> None:
    ev = {k: v for k, v in MINIMAL.items() if k not in ("inference", "model")}
    ev["inference"] = {
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
        "gen_ai.usage.input_tokens": 21,
        "gen_ai.usage.output_tokens": 34,
        "gen_ai.system_instructions": "Be brief.",
        "gen_ai.input.messages": [{"role": "user", "parts": [{"type": "text", "content": "hi there"}]}],
        "gen_ai.output.messages": [{"role": "assistant", "parts": [{"type": "text", "content": "hello"}],
                                    "finish_reason": "stop"}],
        "error.type": "timeout",
        "latency_ms": 120,
    }
    event = decode_event(raw(ev), MAX)
    assert isinstance(event, InferenceEvent), event
    body = event.inference
    assert event.model.name == "gpt-4o" and event.model.version == "gpt-4o-2024-08-06"
    assert (body.usage.input_tokens, body.usage.output_tokens) == (21, 34)
    assert [m.role for m in body.messages] == ["system", "user"]
    assert body.prompt_text == "hi there"
    assert body.response_text == "hello" and body.response.finish_reason == "stop"
    assert body.status == "error" and body.error == "timeout"


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_refused_with_a_clear_reason(case: str) -> None:
    payload, code = BAD_INPUTS[case]
    result = decode_event(payload, MAX)
    assert isinstance(result, Rejection)
    assert result.code == code
    assert len(result.reason) > 10


def test_validation_reason_names_the_field() -> None:
    payload, _ = BAD_INPUTS["wrong_types"]
    result = decode_event(payload, MAX)
    assert isinstance(result, Rejection)
    assert "inference.latency_ms" in result.reason and "inference.messages" in result.reason
    assert result.event_id == MINIMAL["event_id"]


def test_dead_letter_keeps_original_bytes_and_a_position_stable_id() -> None:
    payload, _ = BAD_INPUTS["invalid_utf8"]
    rejection = decode_event(payload, MAX)
    assert isinstance(rejection, Rejection)
    a = DeadLetter.build(rejection, payload, source_topic="warden.inference", partition=2, offset=41, key=b"k")
    b = DeadLetter.build(rejection, payload, source_topic="warden.inference", partition=2, offset=41, key=b"k")
    c = DeadLetter.build(rejection, payload, source_topic="warden.inference", partition=2, offset=42, key=b"k")
    import base64

    assert base64.b64decode(a.original_b64) == payload
    assert a.dlq_id == b.dlq_id != c.dlq_id
    assert DeadLetter.model_validate_json(a.model_dump_json()) == a


def test_published_schema_file_matches_the_models() -> None:
    path = ROOT / "contracts" / "schema" / "event.v1.json"
    assert json.loads(path.read_text()) == json.loads(json.dumps(event_json_schema())), \
        "contracts/schema/event.v1.json is stale: run `warden schema --out contracts/schema/event.v1.json`"
    assert set(event_json_schema()["discriminator"]["mapping"]) == {"inference", "training", "feedback", "deployment"}


@pytest.mark.parametrize(("field", "value"), [
    ("latency_ms", 1e308), ("latency_ms", 86_400_001), ("cost_usd", 1e9),
    ("usage", {"input_tokens": 10**12}), ("usage", {"output_tokens": 100_000_001}),
])
def test_numbers_beyond_their_documented_bounds_are_refused(field: str, value: object) -> None:
    ev = json.loads(json.dumps(MINIMAL))
    ev["inference"][field] = value
    out = decode_event(raw(ev), 1024 * 1024)
    assert isinstance(out, Rejection) and out.code == "validation_error"
    assert field in out.reason and "less than or equal" in out.reason, out.reason


@pytest.mark.parametrize("name", ["support-bot", "meta-llama/Llama-3.1-8B-Instruct", "claude-3-5-sonnet@20240620",
                                  "ft:gpt-4o-mini:acme:triage:9xYz", "v1.2.3+build.7"])
def test_usual_model_identifiers_are_accepted(name: str) -> None:
    ev = {**MINIMAL, "model": {"name": name, "version": name}}
    assert not isinstance(decode_event(raw(ev), 1024 * 1024), Rejection)


@pytest.mark.parametrize(("where", "value"), [
    ("model", "failed for patricia 4111 1111 1111 1111"), ("model", "patricia.desrosiers@example.ch"),
    ("tenant", "Acme Corp"), ("version", "v1\nv2"), ("tenant", "-leading-dash"),
])
def test_identifiers_with_free_text_or_personal_data_are_refused(where: str, value: str) -> None:
    ev = json.loads(json.dumps(MINIMAL))
    if where == "tenant":
        ev["tenant"] = value
    elif where == "model":
        ev["model"]["name"] = value
    else:
        ev["model"]["version"] = value
    out = decode_event(raw(ev), 1024 * 1024)
    assert isinstance(out, Rejection) and out.code == "validation_error", out
    assert value not in out.reason
