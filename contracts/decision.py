"""The :class:`Decision` type a policy produces when it fires."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, Field, field_serializer, field_validator

from detectors.finding import Severity, Subject, stable_id


class DecisionAction(str, Enum):
    """What a decision asks the governance service to do."""

    alert = "alert"
    job = "job"
    tag = "tag"
    suppress = "suppress"


class JobRequest(BaseModel):
    """A job a policy asks for (retrain, rollback, evaluate)."""

    kind: Literal["retrain", "rollback", "evaluate"]
    approval: Literal["required", "auto"] = "required"
    params: dict[str, Any] = Field(default_factory=dict)


class Decision(BaseModel):
    """One firing of one policy (id and version) on one finding or one window aggregate."""

    decision_id: str
    policy_id: str
    policy_version: int
    mode: Literal["enforce", "monitor"] = "enforce"
    action: DecisionAction
    subject: Subject
    severity: Severity
    summary: str
    finding_ids: list[str] = Field(default_factory=list)
    detector: str | None = None
    dedup_key: str | None = None
    route: str | None = None
    job: JobRequest | None = None
    tags: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @field_validator("severity", mode="before")
    @classmethod
    def _parse_severity(cls, value: Any) -> Severity:
        return Severity.parse(value)

    @field_serializer("severity")
    def _dump_severity(self, value: Severity) -> str:
        return value.name

    @staticmethod
    def make_id(policy_id: str, policy_version: int, action: str, *key: object) -> str:
        """Stable id: the same policy firing on the same input always gets the same id."""
        return stable_id("decision", policy_id, policy_version, action, *key)
