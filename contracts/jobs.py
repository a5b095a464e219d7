"""Messages of the job topics: :class:`JobCommand` on ``warden.jobs``, :class:`JobStatus` on ``warden.job-status``.

A job has an idempotent id: the same request (same policy decision, or the same idempotency key given to
``POST /v1/jobs``) always yields the same ``job_id``, so a request delivered twice runs once and the store
upserts its statuses. Messages are keyed by ``job_id``: a job and its cancellation land in the same
partition, and jobs spread over the partitions (more workers = more GPUs).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from detectors.finding import stable_id

if TYPE_CHECKING:  # pragma: no cover
    from contracts.decision import Decision

JobKind = Literal["retrain", "evaluate", "promote", "rollback"]
JobState = Literal["queued", "awaiting_approval", "running", "succeeded", "failed", "cancelled"]
TERMINAL_STATES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
Task = Literal["classification", "causal_lm"]


def _now() -> datetime:
    return datetime.now(UTC)


class _Msg(BaseModel):
    model_config = ConfigDict(extra="ignore")


class DatasetSpec(_Msg):
    """Which slice of the stream's history becomes the training set."""

    since: datetime | None = None
    until: datetime | None = None
    versions: list[str] = Field(default_factory=list)
    """Keep only rows produced by these model versions (empty: all)."""
    labels: list[str] = Field(default_factory=list)
    """Keep only rows with these feedback labels (empty: all labelled rows)."""
    min_rows: int = Field(default=8, ge=1)
    max_rows: int | None = Field(default=None, ge=1)
    eval_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    split_seed: int = 0


class TrainSpec(_Msg):
    """How to fine-tune."""

    task: Task = "classification"
    base: str = "production"
    """``production`` (the model's current production version), ``tiny``, ``minilm``, or a version name."""
    epochs: float = Field(default=1.0, gt=0)
    max_steps: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=32, ge=1)
    learning_rate: float = Field(default=5e-5, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    warmup_ratio: float = Field(default=0.06, ge=0, lt=1)
    max_length: int = Field(default=64, ge=8, le=2048)
    seed: int = 0
    checkpoint_every: int | None = Field(default=None, ge=1)
    """Save a checkpoint every N optimiser steps (None: only the final model)."""


class GateRule(_Msg):
    """One champion/challenger comparison: the challenger must beat the champion on ``metric`` by ``min_delta``."""

    metric: str
    direction: Literal["higher", "lower"] = "higher"
    min_delta: float = 0.0


def default_gate(task: Task) -> list[GateRule]:
    """The gate a job gets when it names none."""
    if task == "classification":
        return [GateRule(metric="accuracy", direction="higher"), GateRule(metric="macro_f1", direction="higher")]
    return [GateRule(metric="eval_loss", direction="lower")]


class JobSpec(_Msg):
    """One job: what to do, to which model, under which approval, retries and time-out."""

    job_id: str = Field(min_length=1, max_length=200)
    kind: JobKind
    tenant: str = Field(min_length=1, max_length=200)
    model: str = Field(min_length=1, max_length=200)
    version: str | None = None
    """rollback/promote: the target version (rollback: None = the previous production version);
    evaluate: the version to evaluate (None = production)."""
    alias: str = "production"
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    gate: list[GateRule] = Field(default_factory=list)
    promote: Literal["auto", "approval", "never"] = "approval"
    """retrain: switch the alias to the candidate when the gate passes (auto), or wait for approval."""
    approval: Literal["required", "auto"] = "auto"
    approved_by: str | None = None
    approved_at: datetime | None = None
    requested_by: str = "api"
    decision_id: str | None = None
    reason: str | None = Field(default=None, max_length=2000)
    max_attempts: int = Field(default=3, ge=1, le=20)
    timeout_s: float = Field(default=3600.0, gt=0)
    created_at: datetime = Field(default_factory=_now)

    @model_validator(mode="after")
    def _fill_gate(self) -> JobSpec:
        if not self.gate:
            self.gate = default_gate(self.train.task)
        return self

    @property
    def approved(self) -> bool:
        """Whether the job may run: it needs no approval, or a person approved it."""
        return self.approval == "auto" or bool(self.approved_by)

    @staticmethod
    def make_id(tenant: str, model: str, kind: str, idempotency_key: str) -> str:
        """The idempotent job id of a request (same key, same id)."""
        return stable_id("job", tenant, model, kind, idempotency_key)

    @classmethod
    def from_decision(cls, decision: Decision, **overrides: Any) -> JobSpec:
        """The job a policy decision asks for; its id derives from the decision id (idempotent)."""
        if decision.job is None:
            raise ValueError(f"decision {decision.decision_id} requests no job")
        params = dict(decision.job.params)
        data: dict[str, Any] = {
            "job_id": stable_id("job", decision.decision_id),
            "kind": decision.job.kind,
            "tenant": decision.subject.tenant,
            "model": decision.subject.model,
            "approval": decision.job.approval,
            "requested_by": f"policy:{decision.policy_id}@{decision.policy_version}",
            "decision_id": decision.decision_id,
            "reason": decision.summary[:2000],
        }
        for key in ("version", "alias", "dataset", "train", "gate", "promote", "max_attempts", "timeout_s"):
            if key in params:
                data[key] = params[key]
        data.update(overrides)
        return cls.model_validate(data)

    def approve(self, actor: str, at: datetime | None = None) -> JobSpec:
        """A copy approved by ``actor`` (operator or admin; the API checks the role)."""
        return self.model_copy(update={"approved_by": actor, "approved_at": at or _now()})


class JobCommand(_Msg):
    """A message on ``warden.jobs``: run a job, or cancel one."""

    op: Literal["run", "cancel"]
    job_id: str
    job: JobSpec | None = None
    actor: str | None = None
    reason: str | None = None
    at: datetime = Field(default_factory=_now)

    @model_validator(mode="after")
    def _consistent(self) -> JobCommand:
        if self.op == "run" and (self.job is None or self.job.job_id != self.job_id):
            raise ValueError("a run command carries the job whose id it names")
        return self

    @classmethod
    def run(cls, job: JobSpec) -> JobCommand:
        return cls(op="run", job_id=job.job_id, job=job)

    @classmethod
    def cancel(cls, job_id: str, actor: str, reason: str | None = None) -> JobCommand:
        return cls(op="cancel", job_id=job_id, actor=actor, reason=reason)

    @property
    def key(self) -> bytes:
        return self.job_id.encode()

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class JobStatus(_Msg):
    """A message on ``warden.job-status``; the governance service upserts by ``status_id``."""

    status_id: str
    job_id: str
    kind: JobKind
    tenant: str
    model: str
    state: JobState
    attempt: int = Field(default=0, ge=0)
    seq: int = Field(default=0, ge=0)
    """Order of this status within the job's attempt (0, 1, 2…)."""
    progress: float = Field(default=0.0, ge=0.0, le=1.0)
    phase: str | None = None
    message: str | None = None
    worker: str | None = None
    result: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    at: datetime = Field(default_factory=_now)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @classmethod
    def of(cls, job: JobSpec, state: JobState, *, attempt: int = 0, seq: int = 0, **fields: Any) -> JobStatus:
        """A status of ``job``; the id is stable per (job, attempt, seq, state)."""
        return cls(
            status_id=stable_id("job-status", job.job_id, attempt, seq, state),
            job_id=job.job_id, kind=job.kind, tenant=job.tenant, model=job.model,
            state=state, attempt=attempt, seq=seq, **fields,
        )

    @property
    def key(self) -> bytes:
        return self.job_id.encode()

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()
