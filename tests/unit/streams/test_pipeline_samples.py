"""The stream's training history: redacted samples of inference events and labels from feedback events."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from contracts.samples import Label, Sample, parse_record
from streams.pipeline import Pipeline, PipelineConfig
from tests.events import feedback, inference, raw

EMAIL, PHONE = "marguerite.oyelaran@example.org", "(415) 555-0134"


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    p = Pipeline(PipelineConfig(drift=None, user_key="k" * 32))
    p.warm_up()
    return p


def _pii_event(event_id: str) -> bytes:
    return raw(inference(event_id, messages=[{"role": "user", "content": f"Mail me at {EMAIL} or call {PHONE}"}],
                         response={"content": f"Sure, I will write to {EMAIL}.", "finish_reason": "stop"}))


def test_an_inference_event_becomes_a_redacted_sample(pipe: Pipeline) -> None:
    out = pipe.process(_pii_event("s1"), topic="warden.inference")
    sample = out.history
    assert isinstance(sample, Sample)
    assert (sample.event_id, sample.tenant, sample.model, sample.version) == ("s1", "acme", "support-bot", "3")
    text = sample.prompt + sample.response
    assert EMAIL not in text and PHONE not in text and "555" not in text
    assert sample.prompt.startswith("Mail me at ") and "<EMAIL_ADDRESS>" in sample.prompt
    assert sample.user_hash is not None and len(sample.user_hash) == 64 and "u-1" not in sample.model_dump_json()
    assert any(f.detector == "pii" for f in out.findings)  # the PII finding is still raised


@pytest.mark.parametrize(("body", "label"), [
    ({"category": "billing", "thumbs": "down"}, "billing"),
    ({"label": True, "thumbs": "down"}, "positive"),
    ({"label": False}, "negative"),
    ({"thumbs": "up"}, "positive"),
    ({"thumbs": "down", "score": 0.2}, "negative"),
    ({"score": 0.9}, None),
])
def test_a_feedback_event_becomes_a_label(pipe: Pipeline, body: dict[str, object], label: str | None) -> None:
    out = pipe.process(raw(feedback("f1", "s1", comment=f"write to {EMAIL}", **body)), topic="warden.feedback")
    rec = out.history
    assert isinstance(rec, Label)
    assert (rec.feedback_id, rec.target_event_id, rec.label) == ("f1", "s1", label)
    assert rec.score == body.get("score")
    assert EMAIL not in rec.model_dump_json()  # the free-text comment is not kept


def test_no_samples_without_redaction_or_when_turned_off() -> None:
    plain = Pipeline(PipelineConfig(pii=None, drift=None))
    assert plain.process(_pii_event("s2"), topic="t").history is None
    assert isinstance(plain.process(raw(feedback("f2", "s2", thumbs="up")), topic="t").history, Label)
    off = Pipeline(PipelineConfig(drift=None, sample_fraction=0.0))
    assert off.process(raw(inference("s3")), topic="t").history is None


def test_a_fraction_keeps_the_same_events_on_every_replay() -> None:
    config = PipelineConfig(drift=None, sample_fraction=0.3)
    ids = [f"evt-{i}" for i in range(300)]

    def kept(p: Pipeline) -> set[str]:
        return {i for i in ids if p.process(raw(inference(i)), topic="t").history is not None}

    first, again = kept(Pipeline(config)), kept(Pipeline(config))
    assert first == again
    assert 60 <= len(first) <= 120  # about 30 % of 300


def test_records_round_trip_and_bad_ones_are_refused(pipe: Pipeline) -> None:
    sample = pipe.process(raw(inference("s4")), topic="t").history
    label = pipe.process(raw(feedback("f4", "s4", category="shipping")), topic="t").history
    assert sample is not None and label is not None
    assert parse_record(sample.model_dump_json()) == sample
    assert parse_record(label.model_dump_json().encode()) == label
    with pytest.raises(ValidationError):
        parse_record(b'{"kind": "other", "event_id": "x"}')
    with pytest.raises(ValidationError):
        parse_record(sample.model_dump_json().replace('"prompt"', '"prompt_raw"'))
