"""The shape of a policy file (pydantic models); see ``policies/packs/builtin.yaml`` for examples.

A file holds ``policies: [ ... ]`` (or a single policy mapping, or a bare list). One policy::

    id: pii-leak                 # [a-z0-9][a-z0-9._-]*, unique in a policy set
    version: 3                   # int >= 1; every decision names the id and version that fired
    mode: enforce                # or monitor: decisions are recorded, marked mode=monitor, acted on by none
    priority: 0                  # higher runs first; see policies.engine for the order and suppress
    description: ...
    match: {detector: pii, severity: {gte: high}}   # see policies.conditions
    aggregate:                   # optional: fire on a window aggregate instead of on each finding
      function: ratio            # count | rate (per minute) | ratio (matching findings / events)
      window: 10m                # 90s, 10m, 1h, 1d or seconds
      step: 1m                   # optional: sliding window advancing by step (default: tumbling)
      group_by: [subject.tenant, subject.model]
      op: gt                     # gt | gte
      threshold: 0.01
      min_events: 100            # ratio: no firing before this many events in the window
      distinct: event_id         # optional: count distinct values of this field, not findings
    actions:
      - alert: {severity: high, summary: "...", route: pagerduty:ml-oncall, dedup_key: "{...}"}
      - job: {kind: retrain, approval: required, params: {...}}
      - tag: [pii, compliance]
      - suppress: {reason: "..."}
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from detectors.finding import Severity

ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
#: Most buckets one window may span (window / step).
MAX_BUCKETS = 1000


def parse_duration(value: Any) -> float:
    """``"10m"`` -> 600.0 seconds; numbers are seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '10m'")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    else:
        raise ValueError(f"invalid duration {value!r}; write e.g. 30s, 10m, 1h, 1d")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _severity_or_finding(value: Any) -> str:
    if value == "finding":
        return "finding"
    return Severity.parse(value).name


class AlertAction(_Strict):
    """Open (or update) an alert; the governance service deduplicates by ``dedup_key``."""

    severity: str = Field("finding", description="a severity name, or 'finding' to copy the finding's")
    summary: str | None = None
    route: str | None = Field(None, max_length=200)
    dedup_key: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> str:
        return _severity_or_finding(value)


class JobAction(_Strict):
    """Request a job (retrain, rollback, evaluate); ``approval: required`` waits for a person."""

    kind: Literal["retrain", "rollback", "evaluate"]
    approval: Literal["required", "auto"] = "required"
    params: dict[str, Any] = Field(default_factory=dict)
    severity: str = "finding"
    summary: str | None = None
    route: str | None = Field(None, max_length=200)
    dedup_key: str | None = None

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> str:
        return _severity_or_finding(value)


class TagAction(_Strict):
    """Attach tags to the finding (``tag: [a, b]`` is short for ``tag: {tags: [a, b]}``)."""

    tags: list[str] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"tags": [value]}
        if isinstance(value, list):
            return {"tags": value}
        return value


class SuppressAction(_Strict):
    """Stop every policy after this one (lower priority) from seeing the finding.

    ``record: false`` drops the suppress decision itself (nothing is published for the finding).
    """

    reason: str | None = None
    record: bool = True

    @model_validator(mode="before")
    @classmethod
    def _short(cls, value: Any) -> Any:
        if value is None or value is True:
            return {}
        if isinstance(value, str):
            return {"reason": value}
        return value


class Action(_Strict):
    """Exactly one of ``alert``, ``job``, ``tag``, ``suppress``."""

    alert: AlertAction | None = None
    job: JobAction | None = None
    tag: TagAction | None = None
    suppress: SuppressAction | None = None

    @model_validator(mode="before")
    @classmethod
    def _suppress_null(cls, value: Any) -> Any:
        # `- suppress:` (null) means a suppress with no options
        if isinstance(value, dict) and "suppress" in value and value["suppress"] is None:
            return {**value, "suppress": {}}
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Action:
        chosen = [n for n in ("alert", "job", "tag", "suppress") if getattr(self, n) is not None]
        if len(chosen) != 1:
            raise ValueError(f"an action is exactly one of alert, job, tag, suppress (got {chosen or 'none'})")
        return self

    @property
    def name(self) -> str:
        """``alert`` | ``job`` | ``tag`` | ``suppress``."""
        for n in ("alert", "job", "tag", "suppress"):
            if getattr(self, n) is not None:
                return n
        raise AssertionError("unreachable")


class AggregateSpec(_Strict):
    """A window aggregate over the findings a policy matches, per group key."""

    function: Literal["count", "rate", "ratio"]
    window: float = Field(description="seconds (or a duration string)")
    step: float | None = Field(None, description="sliding step; None: tumbling windows")
    group_by: list[str] = Field(default_factory=lambda: ["subject.tenant", "subject.model"], max_length=8)
    op: Literal["gt", "gte"] = "gt"
    threshold: float = Field(ge=0)
    min_events: int = Field(1, ge=1, description="ratio: least events in the window before it may fire")
    distinct: str | None = None
    max_groups: int = Field(10_000, ge=1, le=1_000_000)
    max_distinct: int = Field(50_000, ge=1, le=1_000_000)

    @field_validator("window", "step", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return None if value is None else parse_duration(value)

    @model_validator(mode="after")
    def _buckets(self) -> AggregateSpec:
        step = self.step or self.window
        if step > self.window:
            raise ValueError("step must not exceed window")
        k = self.window / step
        if abs(k - round(k)) > 1e-9:
            raise ValueError("window must be a whole number of steps")
        if round(k) > MAX_BUCKETS:
            raise ValueError(f"window / step must be at most {MAX_BUCKETS}")
        return self

    @property
    def step_s(self) -> float:
        return self.step or self.window

    @property
    def buckets(self) -> int:
        """Buckets per window (1 for tumbling windows)."""
        return int(round(self.window / self.step_s))


def alert_routes(policies: Iterable[Policy]) -> list[str]:
    """The routes the alerts of enforce-mode policies name (sorted, without duplicates; an alert without a
    route goes to the default route, named ``default`` here)."""
    return sorted({(a.alert.route or "default") for p in policies if p.mode == "enforce"
                   for a in p.actions if a.alert is not None})


class Policy(_Strict):
    """One policy: when ``match`` (and ``aggregate``, if any) holds, emit one decision per action."""

    id: str = Field(pattern=ID_PATTERN)
    version: int = Field(ge=1)
    mode: Literal["enforce", "monitor"] = "enforce"
    priority: int = 0
    description: str = ""
    match: dict[str, Any] = Field(default_factory=dict)
    aggregate: AggregateSpec | None = None
    actions: list[Action] = Field(min_length=1, max_length=16)

    @field_validator("match", mode="before")
    @classmethod
    def _null_match(cls, value: Any) -> Any:
        return {} if value is None else value
