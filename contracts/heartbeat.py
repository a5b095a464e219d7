"""What a stream worker publishes on ``warden.heartbeats`` every few seconds, so that the governance
service's ``/healthz`` can tell a live worker from a dead one (worker and API may be separate processes,
hosts or containers: the broker is what they share)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field


class Heartbeat(BaseModel):
    """One worker's sign of life, keyed on the topic by ``instance``."""

    model_config = ConfigDict(extra="ignore")

    role: str = "worker"
    instance: str = Field(min_length=1, max_length=300)
    """Stable across restarts of the same worker (``<worker id>@<host>``): a restarted worker replaces its
    predecessor instead of leaving a silent one behind."""
    group: str
    """The consumer group the worker reads its input in."""
    pid: int
    started_at: datetime
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    interval_s: float
    """How often the worker sends one (the API judges silence against this)."""
    state: str = "running"
    """``running``, or ``stopped`` for the last heartbeat of a worker shut down on purpose."""
    counters: dict[str, int] = Field(default_factory=dict)
    """Events, dead letters, findings … since the process started; ``agent_starts`` above 1 means faust
    restarted a crashed agent."""
