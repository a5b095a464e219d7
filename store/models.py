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


def assume_utc(value: datetime | None) -> datetime | None:
    """A naive datetime (SQLite hands them back) is UTC; an aware one is left as it is."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def to_utc(value: datetime | None) -> datetime | None:
    """A naive datetime is UTC; an aware one is converted to UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _ts(index: bool = False, nullable: bool = False) -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), default=utcnow, index=index, nullable=nullable))


class FindingRow(SQLModel, table=True):
    """One finding of one detector."""

    __tablename__ = "findings"
    __table_args__ = (
        Index("ix_findings_tenant_time", "tenant", "occurred_at"),
        Index("ix_findings_model_time", "model", "occurred_at"),
        Index("ix_findings_occurred_at", "occurred_at"),
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
    user_hash: str | None = Field(default=None, index=True, max_length=64)
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
    __table_args__ = (
        Index("ix_alerts_tenant_status", "tenant", "status"),
        Index("ix_alerts_tenant_last_seen", "tenant", "last_seen"),
    )

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
    acknowledged_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    acknowledged_by: str | None = Field(default=None, max_length=200)
    resolved_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    resolved_by: str | None = Field(default=None, max_length=200)
    silenced_until: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


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
    tenant: str | None = Field(default=None, index=True, max_length=200)
    original_size: int
    original_sha256: str = Field(max_length=64)
    received_at: datetime = _ts(index=True)


# ---------------------------------------------------------------- governance (keys, audit, registry)


class ApiKeyRow(SQLModel, table=True):
    """An API key: only its SHA-256 is stored; ``prefix`` is the visible part that names it."""

    __tablename__ = "api_keys"

    key_id: str = Field(primary_key=True, max_length=32)
    prefix: str = Field(max_length=32, unique=True)
    key_hash: str = Field(max_length=64)
    name: str = Field(default="", max_length=200)
    role: str = Field(max_length=16)
    tenants: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_by: str = Field(max_length=200)
    created_at: datetime = _ts()
    expires_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class AuditRow(SQLModel, table=True):
    """One audit entry. ``content`` is the canonical JSON that ``content_hash`` covers; the other
    columns are projections of it for indexed queries. ``hash = sha256(prev_hash + content_hash)``.
    Append-only: the store refuses UPDATE/DELETE in code and in the database (triggers)."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_tenant_seq", "tenant", "seq"),
        Index("ix_audit_tenant_action_seq", "tenant", "action", "seq"),
        Index("ix_audit_at_seq", "at", "seq"),
        Index("ix_audit_action_seq", "action", "seq"),
        Index("ix_audit_actor_seq", "actor", "seq"),
        Index("ix_audit_target_seq", "target_id", "seq"),
    )

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: datetime = _ts()
    actor: str = Field(max_length=200)
    action: str = Field(max_length=64)
    tenant: str | None = Field(default=None, max_length=200)
    target_type: str = Field(max_length=64)
    target_id: str = Field(max_length=500)
    content: str
    prev_hash: str = Field(max_length=64)
    content_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class RegisteredModelRow(SQLModel, table=True):
    """A model of a tenant, the parent of its versions and aliases."""

    __tablename__ = "registered_models"

    tenant: str = Field(primary_key=True, max_length=200)
    name: str = Field(primary_key=True, max_length=200)
    description: str = ""
    created_by: str = Field(max_length=200)
    created_at: datetime = _ts()


class ModelVersionRow(SQLModel, table=True):
    """A version of a model: artifact, lineage (parent, dataset), metrics, origin (job or by hand)."""

    __tablename__ = "model_versions"

    tenant: str = Field(primary_key=True, max_length=200)
    model: str = Field(primary_key=True, max_length=200)
    version: str = Field(primary_key=True, max_length=200)
    artifact_uri: str = Field(max_length=2000)
    parent_version: str | None = Field(default=None, max_length=200)
    dataset_ref: str | None = Field(default=None, max_length=2000)
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    source: str = Field(default="manual", max_length=16)
    job_id: str | None = Field(default=None, max_length=200)
    created_by: str = Field(max_length=200)
    created_at: datetime = _ts()


class AliasRow(SQLModel, table=True):
    """Where an alias points now."""

    __tablename__ = "model_aliases"

    tenant: str = Field(primary_key=True, max_length=200)
    model: str = Field(primary_key=True, max_length=200)
    alias: str = Field(primary_key=True, max_length=100)
    version: str = Field(max_length=200)
    updated_by: str = Field(max_length=200)
    updated_at: datetime = _ts()


class AliasHistoryRow(SQLModel, table=True):
    """Every switch of an alias (who, when, why, from which version to which)."""

    __tablename__ = "model_alias_history"
    __table_args__ = (
        Index("ix_alias_history_lookup", "tenant", "model", "alias", "switched_at"),
        Index("ix_alias_history_tenant_time", "tenant", "switched_at"),
    )

    switch_id: str = Field(primary_key=True, max_length=64)
    tenant: str = Field(max_length=200)
    model: str = Field(max_length=200)
    alias: str = Field(max_length=100)
    from_version: str | None = Field(default=None, max_length=200)
    to_version: str = Field(max_length=200)
    action: str = Field(default="promote", max_length=16)
    actor: str = Field(max_length=200)
    reason: str = ""
    switched_at: datetime = _ts()


class GovernanceSettingRow(SQLModel, table=True):
    """A governance setting changed at run time (e.g. retention); every change is audited."""

    __tablename__ = "governance_settings"

    key: str = Field(primary_key=True, max_length=100)
    value: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_by: str = Field(max_length=200)
    updated_at: datetime = _ts()
