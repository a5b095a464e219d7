"""What travels on ``warden.aggregates``: one batch's inputs to one group of one aggregate policy.

Built by :class:`policies.routing.AggregateCollector` in the worker that saw the events, applied by the
worker that owns the group's window (``PolicyEngine.apply_delta``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from detectors.finding import Finding


class AggregateFinding(BaseModel):
    """One finding matched by an aggregate policy."""

    model_config = ConfigDict(extra="forbid")

    ts: float
    distinct: str | None = None
    finding: Finding


class AggregateDelta(BaseModel):
    """What one batch adds to one group of one aggregate policy."""

    model_config = ConfigDict(extra="forbid")

    policy_id: str
    policy_version: int
    fingerprint: str
    group: list[str]
    events: list[tuple[float, int]] = Field(default_factory=list)
    """(bucket start in epoch seconds, inference events counted) for ratio denominators."""
    findings: list[AggregateFinding] = Field(default_factory=list)

    @property
    def key(self) -> str:
        """The routing and state key: policy id and group."""
        return "\x1f".join([self.policy_id, *self.group])
