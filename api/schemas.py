"""What the governance API answers: one response model per shape, so ``/openapi.json`` (and ``/docs``)
describe the real responses.

Request bodies stay next to the routes that take them. The models here mirror the views the routes
build (``governance`` view functions, row dumps); they forbid unknown fields, so a view that grows a
field fails loudly (a test, a 500) until the model names it, instead of the field vanishing from the
wire. Datetimes are ISO 8601 in UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.jobs import JobKind, JobState
from governance.retention import Retention


class Out(BaseModel):
    """Base of the response models: exactly the fields named (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")


SeverityName = Literal["info", "low", "medium", "high", "critical"]
"""A severity by name (``detectors.finding.Severity``), lowest first."""

NEXT_CURSOR = "pass as ``cursor`` to read the next page; null on the last page"


# ---------------------------------------------------------------- records


class Finding(Out):
    """One finding of one detector (evidence is redacted: no raw PII)."""

    finding_id: str
    detector: str = Field(description="pii, rule, drift, anomaly, bias, security or training")
    kind: str = Field(description="what the detector found, e.g. email, distribution_drift, latency_spike")
    tenant: str
    model: str
    version: str | None
    severity: SeverityName
    score: float
    summary: str
    evidence: dict[str, Any] = Field(description="the detector's redacted evidence (shape depends on detector/kind)")
    event_id: str | None = Field(description="the event the finding is about (none for window findings)")
    window_start: datetime | None
    window_end: datetime | None
    window_n: int | None = Field(description="events in the window (window findings)")
    user_hash: str | None = Field(description="keyed hash of the end user (erasure finds findings by it)")
    occurred_at: datetime
    recorded_at: datetime


class Alert(Out):
    """An alert: the alert decisions of one dedup key and tenant folded into one."""

    alert_id: str
    dedup_key: str
    tenant: str
    model: str
    severity: SeverityName
    status: Literal["triggered", "acknowledged", "resolved"]
    summary: str
    route: str | None = Field(description="the policy's alert route (which destinations are notified)")
    policy_id: str
    count: int = Field(description="decisions folded into this alert")
    last_decision_id: str
    first_seen: datetime
    last_seen: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    silenced_until: datetime | None


class DeadLetter(Out):
    """A payload the stream refused; the original bytes stay on ``warden.dlq`` (their digest is here)."""

    dlq_id: str
    code: str = Field(description="why it was refused, e.g. malformed_json, schema_invalid")
    reason: str
    source_topic: str
    partition: int | None
    offset: int | None
    event_id: str | None
    tenant: str | None = Field(description="the tenant the payload names (none when it did not parse that far)")
    original_size: int = Field(description="bytes of the original payload")
    original_sha256: str
    received_at: datetime


class FindingPage(Out):
    items: list[Finding]
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class AlertPage(Out):
    items: list[Alert]
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class DeadLetterPage(Out):
    items: list[DeadLetter]
    next_cursor: str | None = Field(description=NEXT_CURSOR)


# ---------------------------------------------------------------- alert lifecycle


class AlertEvent(Out):
    """One entry of an alert's history."""

    seq: int
    at: datetime
    kind: str = Field(description="triggered, reopened, suppressed, notification_queued, notified, delivery_failed, "
                                  "acknowledged, resolved, auto_resolved, renotified, escalated")
    actor: str
    detail: dict[str, Any]


class AlertHistory(Out):
    alert: Alert
    items: list[AlertEvent] = Field(description="oldest first")


class DeliveryAttempt(Out):
    """One attempt to deliver one notification to one destination."""

    seq: int
    at: datetime
    destination: str
    alert_id: str
    tenant: str
    event: str = Field(description="trigger, acknowledge, resolve, …")
    delivery_id: str = Field(description="the same over retries (receivers may use it as an idempotency key)")
    attempt: int
    outcome: str = Field(description="delivered, retry, failed or expired")
    status_code: int | None
    error: str | None
    latency_ms: float


class DeliveryPage(Out):
    items: list[DeliveryAttempt] = Field(description="newest first")
    next_before_seq: int | None = Field(description="pass as ``before_seq`` for the next page; null on the last")


class Matcher(BaseModel):
    """A label matcher: ``=`` equal, ``!=`` not equal, ``=~`` / ``!~`` full regular-expression match or not."""

    name: str
    value: str = ""
    op: Literal["=", "!=", "=~", "!~"] = "="


class Silence(Out):
    """A silence: the tenant's alerts whose labels match every matcher notify nobody while it is active."""

    silence_id: str
    tenant: str
    matchers: list[Matcher]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    reason: str
    created_at: datetime
    expired_at: datetime | None = Field(description="when it was ended by hand")
    expired_by: str | None
    active: bool = Field(description="in force now")


class SilenceList(Out):
    items: list[Silence] = Field(description="newest first")


# ---------------------------------------------------------------- keys


class ApiKey(Out):
    """An API key as lists show it: no secret, no hash."""

    key_id: str
    prefix: str = Field(description="the visible part of the key that names it")
    name: str
    role: Literal["admin", "operator", "auditor", "producer"]
    tenants: list[str] = Field(description='the tenants the key may act on; ["*"]: every tenant')
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class IssuedKey(ApiKey):
    """A key just created, with its secret (shown this once; the store keeps only its SHA-256)."""

    key: str = Field(description="the secret: send it as ``Authorization: Bearer <key>``")
    note: str


class ApiKeyList(Out):
    items: list[ApiKey] = Field(description="newest first")


# ---------------------------------------------------------------- audit


class AuditEntry(Out):
    """One entry of the hash-chained audit trail: its canonical content and its chain fields."""

    seq: int
    at: datetime
    actor: str
    action: str = Field(description="e.g. alias.switched, key.created, alert.acknowledged")
    tenant: str | None
    target_type: str
    target_id: str
    before: Any = Field(description="the target before the change (JSON; null for a creation)")
    after: Any = Field(description="the target after the change (JSON)")
    prev_hash: str = Field(description="hash of the previous entry")
    content_hash: str = Field(description="sha256 of the canonical content")
    hash: str = Field(description="sha256(prev_hash + content_hash)")


class AuditPage(Out):
    items: list[AuditEntry] = Field(description="newest first")
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class AuditVerification(Out):
    """The outcome of verifying the chain (the whole of it, or the entries after the checkpoint)."""

    scope: Literal["full", "new"] = Field(description="full: the whole chain; new: the entries after the checkpoint")
    ok: bool
    checked: int = Field(description="entries checked")
    head_seq: int
    head_hash: str
    first_broken_seq: int | None = Field(description="the first entry that does not chain (when not ok)")
    reason: str | None = Field(description="why the chain is broken (when not ok)")
    seconds: float


class RecordedVerification(Out):
    """A verification as recorded: what it found, when and by whom."""

    kind: Literal["full", "checkpoint"]
    ok: bool
    checked: int
    head_seq: int = Field(description="full: the head verified; checkpoint: the chain links from the first "
                                      "entry up to this one")
    head_hash: str
    first_broken_seq: int | None
    reason: str | None
    seconds: float
    verified_at: datetime
    verified_by: str


class VerificationStatus(Out):
    full: RecordedVerification | None = Field(description="the last walk of the whole chain (none yet: null)")
    checkpoint: RecordedVerification | None


class AuditHead(Out):
    """The chain head: publish it to prove later exports complete."""

    seq: int
    hash: str
    verification: VerificationStatus


# ---------------------------------------------------------------- registry and lineage


class RegisteredModel(Out):
    tenant: str
    name: str
    description: str
    created_by: str
    created_at: datetime


class RegisteredModelWithAliases(RegisteredModel):
    aliases: dict[str, str] = Field(description="alias → the version it points to")


class ModelVersion(Out):
    """A version of a model: artifact, lineage (parent, dataset), metrics, origin (a job or by hand)."""

    tenant: str
    model: str
    version: str
    artifact_uri: str
    parent_version: str | None
    dataset_ref: str | None
    metrics: dict[str, Any]
    source: str = Field(description="manual or job")
    job_id: str | None
    created_by: str
    created_at: datetime


class ModelAlias(Out):
    """Where an alias points now."""

    tenant: str
    model: str
    alias: str
    version: str
    updated_by: str
    updated_at: datetime


class AliasHistoryEntry(Out):
    """One switch of an alias: who, when, why, from which version to which."""

    switch_id: str
    tenant: str
    model: str
    alias: str
    from_version: str | None
    to_version: str
    action: str = Field(description="deploy, promote or rollback")
    actor: str
    reason: str
    switched_at: datetime


class AliasSwitched(AliasHistoryEntry):
    """An alias switch and its ``deployment`` event."""

    event_id: str = Field(description="the deployment event's id (the switch's id)")
    topic: str
    published: bool = Field(description="whether Kafka acknowledged the deployment event")


class RegisteredModelList(Out):
    items: list[RegisteredModel]


class ModelVersionList(Out):
    items: list[ModelVersion] = Field(description="newest first")


class ModelAliasList(Out):
    items: list[ModelAlias]


class AliasHistory(Out):
    items: list[AliasHistoryEntry] = Field(description="newest first")
    at: datetime | None = Field(default=None, description="the time asked about (only when ``at`` was given)")
    version_at: str | None = Field(default=None, description="the version the alias named at ``at`` (only then)")


class LineageFinding(Out):
    """A finding as a lineage step shows it (evidence without report samples)."""

    finding_id: str
    detector: str
    kind: str
    version: str | None
    severity: SeverityName
    score: float
    summary: str
    evidence: dict[str, Any]
    event_id: str | None
    occurred_at: datetime


class TrainingRun(Out):
    """The training run that produced the version (its start and end findings merged)."""

    run_id: str
    base_version: str | None
    status: str | None = Field(description="succeeded, failed or cancelled")
    params: dict[str, Any]
    output_version: str
    started_at: datetime | None
    finished_at: datetime
    dataset: str | None
    dataset_hash: str | None
    findings: list[LineageFinding] = Field(description="the run's training findings (loss, gradients…)")
    findings_count: int = Field(description="how many step findings the run has (at most the listed maximum)")


class LineageDataset(Out):
    reference: str | None
    hash: str | None


class PromotionBlock(Out):
    """An enforce-mode ``block-promotion`` decision that still stands on the version."""

    decision_id: str
    policy_id: str
    policy_version: int
    summary: str
    detector: str | None
    finding_ids: list[str]
    created_at: datetime


class LineageVersion(Out):
    registered: bool = Field(description="whether the registry holds the version")
    row: ModelVersion | None
    parent_version: str | None
    findings: list[LineageFinding] = Field(description="evaluation regressions, PII in the training data")
    promotion_blocked: bool
    blocks: list[PromotionBlock]


class DriftReference(Out):
    source: Any
    pinned_at: Any


class LineageDrift(Out):
    references: list[DriftReference] = Field(description="the drift references the version was compared with")
    findings: list[LineageFinding]


class Lineage(Out):
    """training run → dataset → registry version → deployments → drift reference, each with its findings."""

    tenant: str
    model: str
    version: str
    run: TrainingRun | None
    dataset: LineageDataset | None
    model_version: LineageVersion
    deployments: list[AliasHistoryEntry] = Field(description="alias switches to this version, oldest first")
    drift_reference: LineageDrift


# ---------------------------------------------------------------- reports


class ReportPeriod(Out):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field(alias="from", description="start (ISO 8601)")
    to: str = Field(description="end, excluded (ISO 8601)")


class PiiSection(Out):
    findings: int
    entities_by_model: dict[str, dict[str, int]] = Field(description="model → entity type → count")


class DetectorCount(Out):
    kind: str
    model: str
    severity: str
    count: int


class DetectorSection(Out):
    total: int
    by: list[DetectorCount]


class DurationStats(Out):
    """Seconds from an alert's first sighting to the act (null without any)."""

    n: int
    mean_s: float | None
    median_s: float | None
    p90_s: float | None
    max_s: float | None


class ReportAlert(Out):
    alert_id: str
    model: str
    severity: str
    status: str
    summary: str
    first_seen: str
    acknowledged_at: str | None
    resolved_at: str | None


class AlertsSection(Out):
    opened: int
    by_status: dict[str, int]
    by_severity: dict[str, int]
    time_to_acknowledge: DurationStats
    time_to_resolve: DurationStats
    items: list[ReportAlert]


class JobsSection(Out):
    requested_by_policy: int
    by_kind: dict[str, int]
    audited_state_changes: dict[str, int]


class ReportAliasSwitch(Out):
    model: str
    alias: str
    from_version: str | None
    to_version: str
    action: str
    actor: str
    reason: str
    at: str


class AuditSection(Out):
    entries_by_action: dict[str, int]


class ComplianceReport(Out):
    """A tenant's compliance report for a period (``format=csv`` flattens it to section,group,metric,value)."""

    tenant: str
    period: ReportPeriod
    generated_at: str
    pii: PiiSection
    findings: dict[str, DetectorSection] = Field(description="per detector (pii, drift, anomaly, bias and others)")
    alerts: AlertsSection = Field(description="alerts first seen in the period")
    jobs: JobsSection
    alias_switches: list[ReportAliasSwitch]
    audit: AuditSection


# ---------------------------------------------------------------- lifecycle


class PurgeResult(Out):
    deleted: dict[str, int] = Field(description="records deleted (or that would be, on a dry run) per kind")
    cutoffs: dict[str, str | None] = Field(description="per kind: records older than this were purged (null: kept)")
    retention: Retention
    dry_run: bool


class ErasureResult(Out):
    user_hash: str = Field(description="the keyed hash the store knows the user by (the id itself is never kept)")
    deleted: dict[str, int] = Field(description="records deleted per kind")
    tenants: list[str] = Field(description='the tenants the erasure covered; ["*"]: every tenant')


# ---------------------------------------------------------------- jobs


class JobStatusEntry(Out):
    """One status a job's worker published."""

    status_id: str
    job_id: str
    state: JobState
    attempt: int
    seq: int
    progress: float
    phase: str | None
    message: str | None
    worker: str | None
    error: str | None
    result: dict[str, Any]
    at: datetime


class Job(Out):
    """A requested job and its latest state."""

    job_id: str
    kind: JobKind
    tenant: str
    model: str
    version: str | None
    state: JobState
    approval: Literal["required", "auto"]
    approved_by: str | None
    requested_by: str
    decision_id: str | None = Field(description="the policy decision that requested it (none: a person did)")
    attempt: int
    seq: int
    progress: float
    message: str | None
    result: dict[str, Any]
    spec: dict[str, Any] = Field(description="the full job spec (contracts.jobs.JobSpec)")
    created_at: datetime
    updated_at: datetime


class JobWithStatuses(Job):
    statuses: list[JobStatusEntry] = Field(description="every status its workers published, in order")


class JobPage(Out):
    items: list[Job] = Field(description="newest first")
    next_cursor: str | None = Field(description=NEXT_CURSOR)


class CancelRequested(Out):
    job_id: str
    status: Literal["cancel_requested"]


# ---------------------------------------------------------------- drift, events, health


class DriftReportData(Out):
    """Evidently's data-drift report of a drifted window, as data."""

    finding_id: str
    drifted: list[str] | None = Field(description="the features that drifted")
    report: dict[str, Any] = Field(description="Evidently's report (its ``as_dict`` form)")


class EventAccepted(Out):
    event_id: str
    topic: str = Field(description="the topic the event was published to")
    status: Literal["accepted"]


class EventSchema(BaseModel):
    """The JSON Schema (draft 2020-12) of the event envelope: ``oneOf`` the four event types."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_: str = Field(alias="$schema")
    id_: str = Field(alias="$id")
    title: str


class HealthReport(BaseModel):
    """Every role of the deployment; ``status`` degraded names its ``reasons``."""

    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "degraded"]
    reasons: list[str]
    warnings: list[str] = Field(description="what does not degrade the service but someone should know")
    broker: dict[str, Any]
    database: dict[str, Any]
    consumer_groups: dict[str, Any] = Field(description="state and lag of the workers' and the governance groups")
    alerting: dict[str, Any]
