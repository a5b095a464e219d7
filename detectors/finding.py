"""The :class:`Finding` type every detector returns.

A finding names its detector, its subject (tenant, model, version), a severity, a score,
redacted evidence, the window it covers and a stable id. The id is derived from the
finding's identity (detector, kind, subject and the event id or window), so that
re-processing the same input after a crash yields the same id and the store can upsert.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

_NAMESPACE = uuid.UUID("6f1d3f3e-5b7c-4f0a-9d8e-2a1b3c4d5e6f")


class Severity(IntEnum):
    """Ordered severities; comparisons (``>=``) follow the order below."""

    info = 0
    low = 1
    medium = 2
    high = 3
    critical = 4

    @classmethod
    def parse(cls, value: str | int | Severity) -> Severity:
        """Accept a name (``"high"``), an int or a Severity."""
        if isinstance(value, Severity):
            return value
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[str(value).lower()]
        except KeyError:
            raise ValueError(f"unknown severity {value!r}; expected one of {[s.name for s in cls]}") from None


class Subject(BaseModel):
    """What a finding is about: a tenant's model version."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    model: str
    version: str | None = None


class Window(BaseModel):
    """The span of data a windowed finding covers."""

    model_config = ConfigDict(frozen=True)

    start: datetime
    end: datetime
    n: int = Field(ge=0)


def stable_id(*parts: object) -> str:
    """A deterministic UUID (v5) from the given parts; same parts, same id."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join("" if p is None else str(p) for p in parts)))


class Finding(BaseModel):
    """One thing a detector found. Evidence must already be redacted."""

    finding_id: str
    detector: str
    kind: str
    subject: Subject
    severity: Severity
    score: float
    summary: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    event_id: str | None = None
    window: Window | None = None
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @field_validator("severity", mode="before")
    @classmethod
    def _parse_severity(cls, value: Any) -> Severity:
        return Severity.parse(value)

    @field_serializer("severity")
    def _dump_severity(self, value: Severity) -> str:
        return value.name

    @classmethod
    def create(
        cls,
        *,
        detector: str,
        kind: str,
        subject: Subject,
        severity: Severity | str,
        score: float,
        summary: str,
        evidence: dict[str, Any] | None = None,
        event_id: str | None = None,
        window: Window | None = None,
        occurred_at: datetime | None = None,
        key: str | None = None,
    ) -> Finding:
        """Build a finding whose id is derived from its identity.

        The id covers detector, kind, subject, the event id and the window (or ``key``
        when several findings of one kind come from the same event or window).
        """
        fid = stable_id(
            detector,
            kind,
            subject.tenant,
            subject.model,
            subject.version,
            event_id,
            window.start.isoformat() if window else None,
            window.end.isoformat() if window else None,
            key,
        )
        return cls(
            finding_id=fid,
            detector=detector,
            kind=kind,
            subject=subject,
            severity=Severity.parse(severity),
            score=score,
            summary=summary,
            evidence=evidence or {},
            event_id=event_id,
            window=window,
            occurred_at=occurred_at or datetime.now(UTC),
        )
