"""PII outside messages and responses: every free-text field of every event type is redacted before any
later stage, and nothing the worker publishes carries a raw value."""

from __future__ import annotations

import json

import pytest

from streams.pipeline import Pipeline, PipelineConfig, RawItem
from tests.events import feedback, inference, raw

EMAIL = "patricia.desrosiers@example.ch"
CARD = "4111 1111 1111 1111"
ERROR = f"failed for {EMAIL} card {CARD}"  # the string of issue 16


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    p = Pipeline(PipelineConfig(drift=None))
    p.warm_up()
    return p


def _envelope(event_id: str, kind: str, body: dict[str, object]) -> bytes:
    return json.dumps({"schema_version": "1", "event_id": event_id, "type": kind, "occurred_at": "2026-11-26T12:00:00Z",
                       "tenant": "acme", "model": {"name": "support-bot", "version": "3"}, kind: body}).encode()


def _failed_call(event_id: str, error: str) -> bytes:
    ev = inference(event_id, status="error")
    ev["inference"]["error"] = error
    return raw(ev)


PAYLOADS = {
    "inference.error": _failed_call("f-err", ERROR),
    "inference.attributes": raw(inference("f-tool", attributes={
        "tool_calls": [{"name": "lookup", "arguments": json.dumps({"email": EMAIL})}],
        "tool_output": f"customer card {CARD}", EMAIL: "key holds PII"})),
    "inference.user.attributes": raw(inference("f-user", user={"id": "u-9", "attributes": {
        "age_band": "18-25", "contact": EMAIL}})),
    "feedback": raw(feedback("f-fb", "f-err", comment=f"call me: {EMAIL}", category=f"refund {CARD}",
                             user={"id": "u-9", "attributes": {"note": EMAIL}})),
    "training": _envelope("f-tr", "training", {"run_id": "r1", "phase": "run_started", "dataset": f"export for {EMAIL}",
                                               "params": {"owner": EMAIL, "note": ERROR}, "error": ERROR}),
    "training.items": _envelope("f-ds", "training", {"run_id": "r1", "phase": "data_sample", "items": [
        {"text": f"Contact {EMAIL} about the invoice", "meta": {"card": CARD}}]}),
    "deployment": _envelope("f-dep", "deployment", {"alias": "staging", "actor": EMAIL, "reason": ERROR}),
}


@pytest.mark.parametrize("where", list(PAYLOADS))
def test_pii_in_any_free_text_field_is_redacted_before_later_stages(pipe: Pipeline, where: str) -> None:
    [out] = pipe.process_batch([RawItem(PAYLOADS[where], "warden.x", 0, 1)])
    assert out.dead_letter is None and out.event is not None
    published = b"\n".join(r.value for r in out.records).decode()
    event = out.event.model_dump_json()
    for value in (EMAIL, CARD, "desrosiers"):
        assert value not in event, f"{value!r} left in the redacted event ({where})"
        assert value not in published, f"{value!r} published ({where})"
    pii = [f for f in out.findings if f.detector == "pii"]
    assert pii, f"no PII finding for {where}"
    assert "EMAIL_ADDRESS" in {t for f in pii for t in f.evidence["entity_types"]}


def test_the_issue_error_string_reaches_no_finding_decision_or_summary(pipe: Pipeline) -> None:
    [out] = pipe.process_batch([RawItem(PAYLOADS["inference.error"], "warden.inference", 0, 2)])
    rule = [f for f in out.findings if f.kind == "error_status"]
    assert rule and "<EMAIL_ADDRESS>" in rule[0].evidence["error_type"]
    assert any(d.policy_id == "rule-error-status" and "<EMAIL_ADDRESS>" in d.summary for d in out.decisions)
    pii = [f for f in out.findings if f.detector == "pii"]
    assert pii and "error" in pii[0].evidence["fields"]


def test_finding_kinds_keep_training_data_apart_from_metadata(pipe: Pipeline) -> None:
    kinds = {where: {f.kind for f in pipe.process(PAYLOADS[where], topic="t").findings if f.detector == "pii"}
             for where in ("training", "training.items", "feedback", "deployment", "inference.error")}
    assert kinds == {"training": {"pii_in_metadata"}, "training.items": {"pii_in_training_data"},
                     "feedback": {"pii_in_metadata"}, "deployment": {"pii_in_metadata"},
                     "inference.error": {"pii_detected"}}


def test_field_names_in_findings_do_not_quote_keys_that_may_be_personal_data(pipe: Pipeline) -> None:
    out = pipe.process(PAYLOADS["inference.attributes"], topic="t")
    fields = {name for f in out.findings if f.detector == "pii" for name in f.evidence["fields"]}
    assert "attributes.tool_output" in fields
    assert all(EMAIL not in name for name in fields)


def test_free_texts_are_every_string_but_the_identifiers() -> None:
    # the walk skips identifier subtrees (ids, model, roles, message contents) without entering them, and
    # still finds text at any depth below a field that only holds identifiers further down (training.items[*].id)
    from streams.codec import decode_event
    from streams.redaction import Key, free_texts

    for name in ("training.items", "inference.attributes", "inference.user.attributes"):
        event = decode_event(PAYLOADS[name], 1 << 20)
        paths = {p for p, _ in free_texts(event)}  # type: ignore[arg-type]
        assert not any(p[0] in {"schema_version", "event_id", "type", "tenant", "model"} for p in paths)
        assert ("inference", "messages") not in {p[:2] for p in paths}
        assert ("inference", "user", "id") not in paths
        assert not any(p[:2] == ("training", "items") and p[-1] == "id" for p in paths)
    event = decode_event(PAYLOADS["training.items"], 1 << 20)
    texts = dict(free_texts(event))  # type: ignore[arg-type]
    assert texts[("training", "items", 0, "text")] == f"Contact {EMAIL} about the invoice"
    assert texts[("training", "items", 0, "meta", "card")] == CARD
    assert texts[("training", "items", 0, "meta", Key("card"))] == "card"
    event = decode_event(PAYLOADS["inference.attributes"], 1 << 20)
    texts = dict(free_texts(event))  # type: ignore[arg-type]
    assert texts[("inference", "attributes", Key(EMAIL))] == EMAIL
    assert texts[("inference", "attributes", "tool_output")] == f"customer card {CARD}"
