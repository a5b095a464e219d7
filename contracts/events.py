"""The event contract (schema version 1): one JSON envelope with a typed body.

``{"schema_version": "1", "event_id": ..., "type": "inference", "occurred_at": ..., "tenant": ...,
"model": {"name": ..., "version": ...}, "inference": {...}}``

The body lives under the key named by ``type``. Inference bodies follow the OpenAI chat shape and
also accept OpenTelemetry GenAI attribute names (``gen_ai.request.model``,
``gen_ai.usage.input_tokens``, ``gen_ai.input.messages`` …), which are mapped onto the same fields.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)

SCHEMA_VERSION = "1"
SUPPORTED_SCHEMA_VERSIONS = frozenset({SCHEMA_VERSION})
EVENT_TYPES = ("inference", "training", "feedback", "deployment")

_Id = Annotated[str, Field(min_length=1, max_length=200)]

#: upper bounds of the numeric fields: a value beyond them is a producer bug, not a measurement
MAX_LATENCY_MS = 86_400_000.0
"""``latency_ms`` at most one day."""
MAX_TOKENS = 100_000_000
"""Token counts at most 10^8 per call (the longest context windows hold about 10^7)."""
MAX_COST_USD = 1_000_000.0
"""``cost_usd`` at most one million dollars per call."""
MAX_STEP = 10**12
"""A training step number at most 10^12."""

#: the characters of an identifier (tenant, model name, model version): no whitespace, no free text
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+=-]*$"
_EMAIL_LIKE = re.compile(r"[^@/:]+@[^@/:]+\.[A-Za-z]{2,}$")


def _not_an_email(value: str) -> str:
    if _EMAIL_LIKE.search(value):
        raise ValueError("an identifier must not be an e-mail address (identifiers are labels, not personal data)")
    return value


Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=IDENTIFIER_PATTERN), AfterValidator(_not_an_email)
]
"""A tenant, model name or model version: 1–200 of ``A–Z a–z 0–9 . _ : / @ + = -``, starting with a letter or
digit, and not an e-mail address. Identifiers appear in Kafka keys, dedup keys, alerts and reports, so they
are checked here rather than redacted later (redacting them would split a model's state)."""


class _Model(BaseModel):
    # NaN and ±Infinity are not JSON numbers (RFC 8259): typed number fields refuse them ("finite number")
    model_config = ConfigDict(extra="ignore", populate_by_name=True, allow_inf_nan=False)


class ModelRef(_Model):
    """The model an event is about; producers key Kafka messages by ``name``."""

    name: Identifier
    version: Identifier = "unknown"

    @field_validator("version", mode="before")
    @classmethod
    def _int_version(cls, value: Any) -> Any:
        # A bare integer version ("version": 3) is common and unambiguous.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class ContentPart(_Model):
    """One part of a multi-part message (OpenAI ``{"type": "text", "text"}``, OTel ``content``)."""

    type: str = "text"
    text: str | None = Field(default=None, validation_alias=AliasChoices("text", "content"))


class Message(_Model):
    """A chat message; ``content`` is a string or a list of parts."""

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    @model_validator(mode="before")
    @classmethod
    def _otel_parts(cls, data: Any) -> Any:
        if isinstance(data, dict) and "content" not in data and "parts" in data:
            data = {**data, "content": data["parts"]}
        return data

    @property
    def text(self) -> str:
        """The message's text (parts joined by newlines)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text for p in self.content if p.text)


class Response(_Model):
    """The model's answer."""

    content: str | None = None
    finish_reason: str | None = None


class Usage(_Model):
    """Token usage; OpenAI's ``prompt_tokens``/``completion_tokens`` are accepted too."""

    input_tokens: int | None = Field(
        default=None, ge=0, le=MAX_TOKENS, validation_alias=AliasChoices("input_tokens", "prompt_tokens")
    )
    output_tokens: int | None = Field(
        default=None, ge=0, le=MAX_TOKENS, validation_alias=AliasChoices("output_tokens", "completion_tokens")
    )
    total_tokens: int | None = Field(default=None, ge=0, le=2 * MAX_TOKENS)


class UserInfo(_Model):
    """Who made the request; ``attributes`` carry cohort attributes (e.g. ``age_band``)."""

    id: str | None = Field(default=None, max_length=200)
    attributes: dict[str, str] = Field(default_factory=dict)


class TraceRef(_Model):
    """Where the event sits in a distributed trace (events mapped from OTLP spans carry it).

    ``kind`` says what the span was: ``llm`` (a model call), ``tool`` (a tool's output, which enters the
    model's context) or ``retrieval`` (retrieved documents, likewise). Tool and retrieval steps are scanned
    like a prompt (PII) but feed no per-model statistics (latency, drift, fairness)."""

    trace_id: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
    span_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    parent_span_id: Annotated[str | None, Field(pattern=r"^[0-9a-f]{16}$")] = None
    kind: Literal["llm", "tool", "retrieval"] = "llm"

    @property
    def is_llm_call(self) -> bool:
        """Whether the span was a model call (not a tool or retrieval step of an agent)."""
        return self.kind == "llm"


_OTEL_PREFIX = "gen_ai."


def _from_otel(data: dict[str, Any]) -> dict[str, Any]:
    """Map OpenTelemetry GenAI semantic-convention attributes onto the inference body."""
    out = {k: v for k, v in data.items() if not k.startswith(_OTEL_PREFIX) and k != "error.type"}
    usage = dict(out.get("usage") or {})
    if "gen_ai.usage.input_tokens" in data:
        usage.setdefault("input_tokens", data["gen_ai.usage.input_tokens"])
    if "gen_ai.usage.output_tokens" in data:
        usage.setdefault("output_tokens", data["gen_ai.usage.output_tokens"])
    if usage:
        out["usage"] = usage
    messages: list[Any] = []
    if "gen_ai.system_instructions" in data:
        instr = data["gen_ai.system_instructions"]
        messages.append({"role": "system", "content": instr if isinstance(instr, (str, list)) else str(instr)})
    if "gen_ai.input.messages" in data:
        msgs = data["gen_ai.input.messages"]
        if not isinstance(msgs, list):
            raise ValueError("gen_ai.input.messages must be a list of messages")
        messages.extend(msgs)
    if messages and "messages" not in out:
        out["messages"] = messages
    response = dict(out.get("response") or {})
    outputs = data.get("gen_ai.output.messages")
    if outputs:
        if not isinstance(outputs, list) or not isinstance(outputs[0], dict):
            raise ValueError("gen_ai.output.messages must be a list of messages")
        first = Message.model_validate({"role": "assistant", **outputs[0]})
        response.setdefault("content", first.text)
        if outputs[0].get("finish_reason"):
            response.setdefault("finish_reason", outputs[0]["finish_reason"])
    reasons = data.get("gen_ai.response.finish_reasons")
    if reasons:
        response.setdefault("finish_reason", reasons[0] if isinstance(reasons, list) else reasons)
    if response:
        out["response"] = response
    if "gen_ai.request.model" in data:
        out.setdefault("request_model", data["gen_ai.request.model"])
    if "gen_ai.response.model" in data:
        out.setdefault("response_model", data["gen_ai.response.model"])
    if "error.type" in data and data["error.type"]:
        out.setdefault("status", "error")
        out.setdefault("error", str(data["error.type"]))
    return out


class InferenceBody(_Model):
    """One prompt/response: OpenAI chat shape, or OpenTelemetry GenAI attribute names."""

    messages: list[Message] = Field(min_length=1)
    response: Response | None = None
    usage: Usage | None = None
    latency_ms: float | None = Field(default=None, ge=0, le=MAX_LATENCY_MS)
    status: Literal["ok", "error"] = "ok"
    error: str | None = Field(default=None, max_length=2000)
    cost_usd: float | None = Field(default=None, ge=0, le=MAX_COST_USD)
    user: UserInfo | None = None
    request_model: Identifier | None = None
    response_model: Identifier | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    trace: TraceRef | None = None
    """The OpenTelemetry span the event came from (trace id, span id, parent span id, step kind)."""

    @model_validator(mode="before")
    @classmethod
    def _accept_otel(cls, data: Any) -> Any:
        if isinstance(data, dict) and any(k.startswith(_OTEL_PREFIX) or k == "error.type" for k in data):
            return _from_otel(data)
        return data

    @property
    def prompt_text(self) -> str:
        """The last user message's text."""
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text
        return self.messages[-1].text

    @property
    def response_text(self) -> str:
        """The response's text, or ``""``."""
        return (self.response.content or "") if self.response else ""

    @property
    def is_llm_call(self) -> bool:
        """False for an agent's tool or retrieval step (see :class:`TraceRef`), True otherwise."""
        return self.trace is None or self.trace.is_llm_call


class EvalItem(_Model):
    """One item of an evaluation: a per-item score or correctness, optionally the texts."""

    model_config = ConfigDict(extra="allow")  # BBQ and other benchmark fields pass through

    id: _Id
    score: float | None = None
    correct: bool | None = None
    prediction: str | None = None
    references: list[str] = Field(default_factory=list)


class TrainingBody(_Model):
    """A training-run event.

    * ``run_started``: ``base_version``, ``dataset`` (reference) and ``dataset_hash``, ``params``
    * ``step``: ``step`` and ``metrics`` (loss, learning_rate, grad_norm, throughput…)
    * ``evaluation``: ``metrics`` ({name: value}) on ``eval_dataset``/``split``, optional per-item ``items``
    * ``run_finished``: ``status``, ``output_version`` (the version the run produced)
    * ``data_sample``: ``items`` — a sample of training rows (``{"text": …}`` or chat ``messages``)
    """

    run_id: _Id
    phase: Literal["run_started", "step", "evaluation", "run_finished", "data_sample"]
    base_version: str | None = None
    dataset: str | None = None
    dataset_hash: str | None = None
    step: int | None = Field(default=None, ge=0, le=MAX_STEP)
    metrics: dict[str, Annotated[float, Field(allow_inf_nan=True)] | None] = Field(default_factory=dict)
    """Metric values; NaN and ±Infinity are kept here (a diverged run's loss), null means "not measured"."""
    params: dict[str, Any] = Field(default_factory=dict)
    items: list[dict[str, Any]] = Field(default_factory=list)
    eval_dataset: str | None = None
    split: str | None = None
    output_version: str | None = None
    status: Literal["succeeded", "failed", "cancelled"] | None = None
    error: str | None = Field(default=None, max_length=10_000)


class FeedbackBody(_Model):
    """User or reviewer feedback on an earlier inference event."""

    target_event_id: _Id
    score: float | None = None
    thumbs: Literal["up", "down"] | None = None
    label: bool | None = None
    category: str | None = Field(default=None, min_length=1, max_length=200)
    """A reviewer's class for the judged event (e.g. its intent); retraining datasets label rows with it."""
    comment: str | None = Field(default=None, max_length=10_000)
    user: UserInfo | None = None


class DeploymentBody(_Model):
    """A model version was deployed, promoted or rolled back under an alias."""

    action: Literal["deploy", "promote", "rollback"] = "deploy"
    alias: str = "production"
    previous_version: str | None = None
    actor: str | None = None
    reason: str | None = None


class _Envelope(_Model):
    schema_version: Literal["1"]
    event_id: _Id
    occurred_at: datetime
    tenant: Identifier
    model: ModelRef

    @field_validator("occurred_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    @property
    def key(self) -> bytes:
        """The Kafka message key: the model name, so per-model state stays in one partition."""
        return f"{self.tenant}/{self.model.name}".encode()


class InferenceEvent(_Envelope):
    """An LLM call: prompt messages, response, usage, latency, status."""

    type: Literal["inference"]
    inference: InferenceBody

    @model_validator(mode="before")
    @classmethod
    def _model_from_otel(cls, data: Any) -> Any:
        # An OTel-shaped body may name the model only as gen_ai.request.model.
        if isinstance(data, dict) and "model" not in data and isinstance(data.get("inference"), dict):
            name = data["inference"].get("gen_ai.request.model")
            if name:
                version = data["inference"].get("gen_ai.response.model") or "unknown"
                data = {**data, "model": {"name": name, "version": version}}
        return data


class TrainingEvent(_Envelope):
    type: Literal["training"]
    training: TrainingBody


class FeedbackEvent(_Envelope):
    type: Literal["feedback"]
    feedback: FeedbackBody


class DeploymentEvent(_Envelope):
    type: Literal["deployment"]
    deployment: DeploymentBody


Event = Annotated[
    Union[InferenceEvent, TrainingEvent, FeedbackEvent, DeploymentEvent], Field(discriminator="type")
]
EventAdapter: TypeAdapter[Event] = TypeAdapter(Event)


def event_json_schema() -> dict[str, Any]:
    """The published JSON Schema of the envelope (all four event types)."""
    schema = EventAdapter.json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://warden.dev/schemas/event.v{SCHEMA_VERSION}.json"
    schema["title"] = f"Warden event (schema version {SCHEMA_VERSION})"
    return schema


def dump_event(event: BaseModel) -> bytes:
    """Serialise an event to the JSON bytes producers send."""
    return event.model_dump_json(by_alias=False, exclude_none=True).encode()


def write_json_schema(path: str) -> None:
    """Write the JSON Schema to ``path``."""
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(event_json_schema(), fh, indent=2, sort_keys=True)
        fh.write("\n")
