"""SQLModel tables of the governance store.

Rows are keyed by the ids the stream computes (finding, decision, dead-letter ids), so a record
delivered twice is stored once. No table holds raw prompt text or raw PII: findings carry redacted
evidence, dead letters carry a digest of the original bytes (the bytes stay on the DLQ topic).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Text, text
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def assume_utc(value: datetime | None) -> datetime | None:
    """A naive datetime (SQLite hands them back) is UTC; an aware one is left as it is."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def to_utc(value: datetime | None) -> datetime | None:
    """A naive datetime is UTC; an aware one is converted to UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ts(index: bool = False, nullable: bool = False) -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), default=utcnow, index=index, nullable=nullable))


class FindingRow(SQLModel, table=True):
    """One finding of one detector."""

    __tablename__ = "findings"
    __table_args__ = (
        # INCLUDE (PostgreSQL): counting findings per detector over time reads the index only
        Index("ix_findings_tenant_time", "tenant", "occurred_at", postgresql_include=["detector"]),
        Index("ix_findings_model_time", "model", "occurred_at"),
        Index("ix_findings_occurred_at", "occurred_at", postgresql_include=["detector", "tenant"]),
        # one model's findings of one detector, newest first (the console's model page, lineage, drift report)
        Index("ix_findings_model_detector_time", "tenant", "model", "detector", "occurred_at"),
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


def _bucket_key() -> Any:
    return Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))


class FindingCountRow(SQLModel, table=True):
    """Findings per tenant, detector and severity per hour (a rollup of ``findings``, see :mod:`store.rollups`).

    ``bucket`` is the hour's start in Unix seconds (UTC); ``n`` the number of findings stored with an
    ``occurred_at`` in that hour. Kept in step with ``findings`` by ingest, retention and erasure; the
    console's overview sums it (6 h and 1 day buckets are sums of hours)."""

    __tablename__ = "finding_counts"
    __table_args__ = (Index("ix_finding_counts_bucket", "bucket"),)

    tenant: str = Field(primary_key=True, max_length=200)
    bucket: int = _bucket_key()
    detector: str = Field(primary_key=True, max_length=64)
    severity: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    n: int = Field(sa_column=Column(BigInteger, nullable=False))


class FindingDailyCountRow(SQLModel, table=True):
    """Findings per tenant, model, detector, kind and severity per day (a rollup of ``findings``, see
    :mod:`store.rollups`): what the compliance report counts. ``bucket`` is the day's start in Unix
    seconds (UTC)."""

    __tablename__ = "finding_counts_daily"

    tenant: str = Field(primary_key=True, max_length=200)
    bucket: int = _bucket_key()
    model: str = Field(primary_key=True, max_length=200)
    detector: str = Field(primary_key=True, max_length=64)
    kind: str = Field(primary_key=True, max_length=64)
    severity: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    n: int = Field(sa_column=Column(BigInteger, nullable=False))


class PiiEntityCountRow(SQLModel, table=True):
    """PII entities found per tenant, model and entity type per day (a rollup of the ``pii`` detector's
    findings, see :mod:`store.rollups`): each finding adds its evidence's ``counts``. ``bucket`` is the
    day's start in Unix seconds (UTC)."""

    __tablename__ = "pii_entity_counts"

    tenant: str = Field(primary_key=True, max_length=200)
    bucket: int = _bucket_key()
    model: str = Field(primary_key=True, max_length=200)
    entity_type: str = Field(primary_key=True, max_length=64)
    n: int = Field(sa_column=Column(BigInteger, nullable=False))


class DecisionRow(SQLModel, table=True):
    """One firing of one policy version."""

    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_tenant_time", "tenant", "created_at"),
        # the few tag decisions (e.g. block-promotion) of a model version: promotion checks and lineage
        Index("ix_decisions_tags", "tenant", "model", "version", postgresql_where=text("action = 'tag'"),
              sqlite_where=text("action = 'tag'")),
    )

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


class AuditVerificationRow(SQLModel, table=True):
    """What the last verifications of the audit chain found (:mod:`governance.audit`), one row per ``kind``:

    - ``full``: the last walk of the whole chain (periodic, ``GET /v1/audit/verify`` or the console's
      "full verification"): its result, how long it took, when and by whom;
    - ``checkpoint``: the entry up to which the chain is known to link from the first entry (``head_seq``,
      ``head_hash``), so a later check verifies only the entries after it. A full verification that finds
      the chain broken moves it back to the last good entry.
    """

    __tablename__ = "audit_verifications"

    kind: str = Field(primary_key=True, max_length=16)
    ok: bool
    checked: int
    head_seq: int
    head_hash: str = Field(max_length=64)
    first_broken_seq: int | None = None
    reason: str | None = None
    seconds: float = 0.0
    verified_at: datetime = _ts()
    verified_by: str = Field(max_length=200)


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


# ---------------------------------------------------------------- alert lifecycle (governance.alerting)


def _tsf(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable, index=index))


def _now_field(index: bool = False) -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), default=utcnow, nullable=False,
                                                           index=index))


class AlertTrackRow(SQLModel, table=True):
    """Lifecycle bookkeeping of one alert beside ``alerts``: labels, episode, who was notified,
    when to re-notify and escalate, and whether a trigger is held back by a silence."""

    __tablename__ = "alert_tracking"
    __table_args__ = (
        Index("ix_alert_tracking_renotify", "next_renotify_at"),
        Index("ix_alert_tracking_escalation", "next_escalation_at"),
        Index("ix_alert_tracking_suppressed", "suppressed"),
    )

    alert_id: str = Field(primary_key=True, max_length=64)
    tenant: str = Field(max_length=200)
    labels: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    episode: int = 1
    destinations: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    suppressed: bool = False
    notified_at: datetime | None = _tsf()
    escalation_step: int = 0
    next_renotify_at: datetime | None = _tsf()
    next_escalation_at: datetime | None = _tsf()
    updated_at: datetime = _now_field()


class AlertEventRow(SQLModel, table=True):
    """One entry of an alert's history (``seq`` orders them)."""

    __tablename__ = "alert_events"
    __table_args__ = (Index("ix_alert_events_alert_seq", "alert_id", "seq"),)

    seq: int | None = Field(default=None, primary_key=True)
    alert_id: str = Field(max_length=64)
    tenant: str = Field(max_length=200)
    at: datetime = _now_field()
    kind: str = Field(max_length=32)
    actor: str = Field(max_length=200)
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class SilenceRow(SQLModel, table=True):
    """A silence: alerts of ``tenant`` whose labels match every matcher notify nobody in
    ``[starts_at, ends_at)`` (or until expired by hand)."""

    __tablename__ = "alert_silences"
    __table_args__ = (Index("ix_alert_silences_tenant_ends", "tenant", "ends_at"),)

    silence_id: str = Field(primary_key=True, max_length=64)
    tenant: str = Field(max_length=200)
    matchers: list[dict[str, str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    starts_at: datetime = _now_field()
    ends_at: datetime = _now_field()
    created_by: str = Field(max_length=200)
    reason: str = ""
    created_at: datetime = _now_field()
    expired_at: datetime | None = _tsf()
    expired_by: str | None = Field(default=None, max_length=200)


class AlertGroupRow(SQLModel, table=True):
    """Flush times of one notification group of one destination."""

    __tablename__ = "alert_groups"

    destination: str = Field(primary_key=True, max_length=200)
    group_key: str = Field(primary_key=True, max_length=500)
    next_flush_at: datetime | None = _tsf()
    last_flush_at: datetime | None = _tsf()


class OutboxRow(SQLModel, table=True):
    """One notification to one destination. ``status``: pending → sending → delivered | failed
    (a 4xx other than 429) | expired (still failing after the destination's max age).

    ``delivery_id`` stays the same over retries (receivers may use it as an idempotency key)."""

    __tablename__ = "alert_outbox"
    __table_args__ = (
        Index("ix_alert_outbox_due", "destination", "status", "next_attempt_at"),
        Index("ix_alert_outbox_order", "destination", "alert_id", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(max_length=64, unique=True)
    destination: str = Field(max_length=200)
    alert_id: str = Field(max_length=64)
    tenant: str = Field(max_length=200)
    event: str = Field(max_length=16)
    group_key: str | None = Field(default=None, max_length=500)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", max_length=16)
    attempts: int = 0
    created_at: datetime = _now_field()
    next_attempt_at: datetime = _now_field()
    lease_until: datetime | None = _tsf()
    delivered_at: datetime | None = _tsf()
    last_status_code: int | None = None
    last_error: str | None = None


class DeliveryLogRow(SQLModel, table=True):
    """One delivery attempt (outcome ``delivered | retry | failed | expired``)."""

    __tablename__ = "alert_delivery_log"
    __table_args__ = (
        Index("ix_alert_delivery_log_destination", "destination", "seq"),
        Index("ix_alert_delivery_log_outbox", "outbox_id"),
    )

    seq: int | None = Field(default=None, primary_key=True)
    outbox_id: int
    delivery_id: str = Field(max_length=64)
    destination: str = Field(max_length=200)
    alert_id: str = Field(max_length=64)
    tenant: str = Field(max_length=200)
    event: str = Field(max_length=16)
    attempt: int
    at: datetime = _now_field()
    outcome: str = Field(max_length=16)
    status_code: int | None = None
    error: str | None = None
    latency_ms: float = 0.0


ALERTING_TABLES: tuple[type[SQLModel], ...] = (
    AlertTrackRow, AlertEventRow, SilenceRow, AlertGroupRow, OutboxRow, DeliveryLogRow,
)


def ensure_alerting_tables(engine: Engine) -> None:
    """Create the alerting tables where missing (tests and benchmarks before the migration lands;
    ``store.migrations.alerting`` is what ``init_db`` runs)."""
    SQLModel.metadata.create_all(engine, tables=[t.__table__ for t in ALERTING_TABLES])  # type: ignore[attr-defined]


# ---------------------------------------------------------------- jobs (governance.jobs)


class JobRow(SQLModel, table=True):
    """A requested job and its latest state."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_tenant_created", "tenant", "created_at"),)

    job_id: str = Field(primary_key=True, max_length=200)
    kind: str = Field(max_length=32)
    tenant: str = Field(max_length=200)
    model: str = Field(max_length=200)
    version: str | None = Field(default=None, max_length=200)
    state: str = Field(max_length=32)
    approval: str = Field(max_length=16)
    approved_by: str | None = Field(default=None, max_length=200)
    requested_by: str = Field(max_length=200)
    decision_id: str | None = Field(default=None, max_length=64)
    attempt: int = 0
    seq: int = 0
    progress: float = 0.0
    message: str | None = None
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    spec: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), default=utcnow))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), default=utcnow))


class JobStatusRow(SQLModel, table=True):
    """One status event of a job (queued, running with progress, succeeded, failed, cancelled…)."""

    __tablename__ = "job_statuses"

    status_id: str = Field(primary_key=True, max_length=64)
    job_id: str = Field(index=True, max_length=200)
    state: str = Field(max_length=32)
    attempt: int = 0
    seq: int = 0
    progress: float = 0.0
    phase: str | None = Field(default=None, max_length=64)
    message: str | None = None
    worker: str | None = Field(default=None, max_length=200)
    error: str | None = None
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime = Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), default=utcnow))


# ---------------------------------------------------------------- training history (governance.history)


def _ts_required(index: bool = False) -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=index))


class SampleRow(SQLModel, table=True):
    """One inference event's redacted prompt and response."""

    __tablename__ = "samples"
    __table_args__ = (Index("ix_samples_model_time", "tenant", "model", "occurred_at"),)

    event_id: str = Field(primary_key=True, max_length=200)
    tenant: str = Field(max_length=200)
    model: str = Field(max_length=200)
    version: str | None = Field(default=None, max_length=200)
    occurred_at: datetime = _ts_required()
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    response: str = Field(sa_column=Column(Text, nullable=False))
    user_hash: str | None = Field(default=None, index=True, max_length=64)


class SampleLabelRow(SQLModel, table=True):
    """One feedback event's label for a sample (the sample may arrive after it)."""

    __tablename__ = "sample_labels"
    __table_args__ = (Index("ix_sample_labels_target", "target_event_id", "occurred_at"),)

    feedback_id: str = Field(primary_key=True, max_length=200)
    target_event_id: str = Field(max_length=200)
    tenant: str = Field(max_length=200, index=True)
    model: str = Field(max_length=200)
    occurred_at: datetime = _ts_required()
    label: str | None = Field(default=None, max_length=200)
    score: float | None = None


# ---------------------------------------------------------------- console sessions (api.console)


class ConsoleSessionRow(SQLModel, table=True):
    """A person's signed-in session in the web console.

    Keyed by the SHA-256 of the random cookie value (the store never holds a usable cookie). It names the
    key that signed in (``key_id``; None for the bootstrap admin key) and that key's hash, so every request
    re-checks the key: revoking or expiring the key ends its sessions. ``csrf_token`` is the session's
    synchronizer token, which every state-changing form must echo.
    """

    __tablename__ = "console_sessions"
    __table_args__ = (Index("ix_console_sessions_expires", "expires_at"),)

    session_id: str = Field(primary_key=True, max_length=64)
    key_id: str | None = Field(default=None, max_length=32)
    key_hash: str = Field(max_length=64)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = _now_field()
    expires_at: datetime = _now_field()
