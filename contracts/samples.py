"""Training history: redacted prompt/response samples and feedback labels, as the stream publishes them.

Retraining jobs build their datasets from the stream's history (``jobs.datasets``). The stream worker
publishes, on ``warden.samples``:

* a :class:`Sample` for each inference event it keeps (a share chosen by event id, so a replay picks
  the same ones), carrying the prompt and response **after** PII redaction — never the raw text;
* a :class:`Label` for each feedback event: which event it judges and the label it gives.

The governance service stores both (``governance.history``); ``StoreHistory`` joins them into dataset rows.
Samples are only published when the stream redacts PII: without redaction nothing leaves the worker.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from contracts.events import FeedbackEvent, InferenceEvent

#: longest text a sample keeps per field (the dataset builder truncates further to the job's max_length)
MAX_SAMPLE_CHARS = 20_000


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sample(_Record):
    """One inference event's redacted prompt and response."""

    kind: Literal["sample"] = "sample"
    event_id: str
    tenant: str
    model: str
    version: str | None = None
    occurred_at: datetime
    prompt: str
    response: str = ""
    user_hash: str | None = None
    """Keyed hash of the end user (erasure by user id finds the sample); never the raw id."""


class Label(_Record):
    """A feedback event's verdict on an earlier inference event."""

    kind: Literal["label"] = "label"
    feedback_id: str
    target_event_id: str
    tenant: str
    model: str
    occurred_at: datetime
    label: str | None = None
    score: float | None = None


HistoryRecord = Annotated[Sample | Label, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[Sample | Label] = TypeAdapter(HistoryRecord)


def parse_record(raw: bytes | str) -> Sample | Label:
    """Parse one ``warden.samples`` record (raises ``pydantic.ValidationError`` on a bad one)."""
    return _ADAPTER.validate_json(raw)


def feedback_label(event: FeedbackEvent) -> str | None:
    """The label a feedback event gives: a reviewer's ``category`` first, else ``label`` (true →
    ``positive``, false → ``negative``), else thumbs up/down (→ ``positive`` / ``negative``); None when
    it only scores."""
    body = event.feedback
    if body.category is not None:
        return body.category
    if body.label is not None:
        return "positive" if body.label else "negative"
    if body.thumbs is not None:
        return "positive" if body.thumbs == "up" else "negative"
    return None


def sample_of(event: InferenceEvent, user_hash: str | None = None) -> Sample:
    """The sample of a (redacted) inference event."""
    return Sample(event_id=event.event_id, tenant=event.tenant, model=event.model.name, version=event.model.version,
                  occurred_at=event.occurred_at, prompt=event.inference.prompt_text[:MAX_SAMPLE_CHARS],
                  response=event.inference.response_text[:MAX_SAMPLE_CHARS], user_hash=user_hash)


def label_of(event: FeedbackEvent) -> Label:
    """The label record of a feedback event (its free-text comment is not kept)."""
    return Label(feedback_id=event.event_id, target_event_id=event.feedback.target_event_id, tenant=event.tenant,
                 model=event.model.name, occurred_at=event.occurred_at, label=feedback_label(event),
                 score=event.feedback.score)
