"""Aggregate inputs routed to where their group's window lives.

A window aggregate ("PII in more than 1 % of responses over 10 minutes per model") may group
findings that different stream workers see: events are partitioned by tenant/model, a group may span
models. So the stream worker does not update windows itself; for each batch it collects, per
(aggregate policy, group), the inputs it saw — inference events counted per window bucket (ratio
denominators) and the matching findings in order — as one :class:`AggregateDelta`, published keyed by
:attr:`AggregateDelta.key`. The worker that owns that key applies it to the group's state
(``PolicyEngine.apply_delta``) and keeps the state in a keyed, changelogged store (a faust table),
so a restart or rebalance resumes every window where it was.

Pure: no Kafka here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from contracts.aggregates import AggregateDelta, AggregateFinding
from detectors.finding import Finding

if TYPE_CHECKING:
    from policies.compiler import CompiledPolicy


class AggregateCollector:
    """Collects a batch's aggregate inputs; :meth:`drain` hands them over as deltas."""

    def __init__(self) -> None:
        self._deltas: dict[tuple[str, tuple[str, ...]], AggregateDelta] = {}
        self._events: dict[tuple[str, tuple[str, ...]], dict[float, int]] = {}

    def _delta(self, policy: CompiledPolicy, group: tuple[str, ...]) -> AggregateDelta:
        k = (policy.id, group)
        d = self._deltas.get(k)
        if d is None:
            d = self._deltas[k] = AggregateDelta(policy_id=policy.id, policy_version=policy.version,
                                                 fingerprint=policy.fingerprint, group=list(group))
        return d

    def add_event(self, policy: CompiledPolicy, group: tuple[str, ...], ts: float) -> None:
        """Count one inference event in the denominator (combined per window bucket)."""
        self._delta(policy, group)
        step = policy.aggregator.config.step_s  # type: ignore[union-attr]
        bucket = (ts // step) * step
        counts = self._events.setdefault((policy.id, group), {})
        counts[bucket] = counts.get(bucket, 0) + 1

    def add_finding(self, policy: CompiledPolicy, group: tuple[str, ...], ts: float, distinct: str | None,
                    finding: Finding) -> None:
        """Record one matching finding (applied in the order given)."""
        self._delta(policy, group).findings.append(AggregateFinding(ts=ts, distinct=distinct, finding=finding))

    def __len__(self) -> int:
        return len(self._deltas)

    def drain(self) -> list[AggregateDelta]:
        """The collected deltas (events sorted by bucket), leaving the collector empty."""
        out = []
        for k, d in self._deltas.items():
            d.events = sorted(self._events.get(k, {}).items())
            out.append(d)
        self._deltas, self._events = {}, {}
        return out
