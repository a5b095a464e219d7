"""Refused input: why a payload was refused, and the dead letter that carries it to ``warden.dlq``."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from detectors.finding import stable_id


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a payload was refused: a stable machine code and a sentence for people."""

    code: str
    reason: str
    event_id: str | None = None
    tenant: str | None = None
    """The tenant the payload names, when it parsed far enough to name one (a claim, not verified)."""


class DeadLetter(BaseModel):
    """What goes to ``warden.dlq``: the reason and the original bytes (base64)."""

    dlq_id: str
    code: str
    reason: str
    source_topic: str
    partition: int | None = None
    offset: int | None = None
    event_id: str | None = None
    tenant: str | None = None
    """The tenant the payload names, if it got that far (tenant-scoped keys read their own dead letters)."""
    key_b64: str | None = None
    original_b64: str
    original_size: int
    received_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def build(
        cls,
        rejection: Rejection,
        raw: bytes,
        *,
        source_topic: str,
        partition: int | None = None,
        offset: int | None = None,
        key: bytes | None = None,
        keep_bytes: int = 1024 * 1024,
    ) -> DeadLetter:
        """A dead letter for ``raw``; its id is stable per source position (or per content)."""
        position = (source_topic, partition, offset) if offset is not None else ("content", stable_id(raw.hex()))
        return cls(
            dlq_id=stable_id("dlq", *position),
            code=rejection.code,
            reason=rejection.reason,
            source_topic=source_topic,
            partition=partition,
            offset=offset,
            event_id=rejection.event_id,
            tenant=rejection.tenant,
            key_b64=base64.b64encode(key).decode() if key else None,
            original_b64=base64.b64encode(raw[:keep_bytes]).decode(),
            original_size=len(raw),
        )

    def key_bytes(self) -> bytes | None:
        """The original message's key (the dead letter is published under it)."""
        return base64.b64decode(self.key_b64) if self.key_b64 else None

    def to_json(self) -> bytes:
        """The record as JSON bytes; never raises. Ids claimed by a payload may hold characters JSON cannot
        encode (an unpaired surrogate): then they are left out rather than losing the dead letter."""
        try:
            return self.model_dump_json().encode()
        except ValueError:
            safe = self.reason.encode("utf-8", "replace").decode("utf-8")
            return self.model_copy(update={"event_id": None, "tenant": None, "reason": safe}).model_dump_json().encode()
