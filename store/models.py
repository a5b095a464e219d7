"""SQLModel tables of the governance store.

Rows are keyed by the ids the stream computes (finding, decision, dead-letter ids), so a record
delivered twice is stored once. No table holds raw prompt text or raw PII: findings carry redacted
evidence, dead letters carry a digest of the original bytes (the bytes stay on the DLQ topic).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _ts(index: bool = False, nullable: bool = False) -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), default=utcnow, index=index, nullable=nullable))


class FindingRow(SQLModel, table=True):
    """One finding of one detector."""

    __tablename__ = "findings"
    __table_args__ = (
        Index("ix_findings_tenant_time", "tenant", "occurred_at"),
        Index("ix_findings_model_time", "model", "occurred_at"),
    )

    finding_id: str = Field(primary_key=True, max_length=64)
    detector: str = Field(index=True, max_length=64)
    kind: str = Field(max_length=64)
    tenant: str = Field(max_length=200)
    model: str = Field(max_length=200)
    version: str | None = Field(default=None, max_length=200)
    severity: int
    score: float
    summary: str
    evidence: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    event_id: str | None = Field(default=None, index=True, max_length=200)
    window_start: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    window_end: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    window_n: int | None = None
    occurred_at: datetime = _ts()
    recorded_at: datetime = _ts()


class DecisionRow(SQLModel, table=True):
    """One firing of one policy version."""

    __tablename__ = "decisions"
    __table_args__ = (Index("ix_decisions_tenant_time", "tenant", "created_at"),)

    decision_id: str = Field(primary_key=True, max_length=64)
    policy_id: str = Field(index=True, max_length=200)
    policy_version: int
    mode: str = Field(max_length=16)
    action: str = Field(max_length=16)
    tenant: str = Field(max_length=200)
    model: str = Field(max_length=200)
    version: str | None = Field(default=None, max_length=200)
    severity: int
    summary: str
    detector: str | None = Field(default=None, max_length=64)
    dedup_key: str | None = Field(default=None, index=True, max_length=500)
    route: str | None = Field(default=None, max_length=200)
    finding_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    job: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()
    recorded_at: datetime = _ts()


class AlertRow(SQLModel, table=True):
    """An alert: alert decisions with the same dedup key (per tenant) fold into one."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_tenant_status", "tenant", "status"),)

    alert_id: str = Field(primary_key=True, max_length=64)
    dedup_key: str = Field(max_length=500)
    tenant: str = Field(max_length=200)
    model: str = Field(max_length=200)
    severity: int
    status: str = Field(default="triggered", max_length=16)
    summary: str
    route: str | None = Field(default=None, max_length=200)
    policy_id: str = Field(max_length=200)
    count: int = 1
    last_decision_id: str = Field(max_length=64)
    first_seen: datetime = _ts()
    last_seen: datetime = _ts(index=True)


class DeadLetterRow(SQLModel, table=True):
    """A payload the stream refused; the original bytes stay on the DLQ topic (digest here)."""

    __tablename__ = "dead_letters"

    dlq_id: str = Field(primary_key=True, max_length=64)
    code: str = Field(index=True, max_length=64)
    reason: str
    source_topic: str = Field(max_length=200)
    partition: int | None = None
    offset: int | None = None
    event_id: str | None = Field(default=None, max_length=200)
    original_size: int
    original_sha256: str = Field(max_length=64)
    received_at: datetime = _ts(index=True)
