"""The policy engine: findings in, decisions out (pure; the stream worker calls it).

Order and suppress: policies run in descending ``priority``, ties in the order they were given
(file order, then pack order). An ``enforce`` policy with a ``suppress`` action that matches a
finding emits its decisions and then stops every policy after it from seeing that finding
(including aggregate policies: a suppressed finding is not counted). A ``monitor`` policy never
suppresses: its decisions are recorded with ``mode="monitor"`` and nothing acts on them.

Single-finding policies emit one decision per action per matching finding, with an id derived from
(policy id, version, action, action index, finding id): re-processing a finding yields the same ids.
Aggregate policies emit at most one decision per action per group per window, with an id derived
from (policy id, version, action, index, group key, window bounds); its subject carries the grouped
subject fields (``*`` for the others), ``finding_ids`` the finding that tipped the window, and the
labels ``aggregate.*`` the figures (function, value, threshold, numerator, denominator, window).
A decision's ``created_at`` is the event time of the finding that fired it, so replays are identical.

Speed: policies are compiled once and indexed by detector, so a finding meets only the policies that
can match it; the hot path is a dict lookup and a few closure calls per policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from contracts.aggregates import AggregateDelta
from contracts.decision import Decision
from detectors.finding import Finding, Subject
from policies.aggregate import Firing
from policies.compiler import CompiledPolicy, compile_policy
from policies.errors import CompileError, PolicyError, PolicyIssue, format_loc
from policies.routing import AggregateCollector
from policies.schema import Policy

SNAPSHOT_VERSION = 1


def epoch_seconds(ts: datetime | float | int) -> float:
    """Event time as Unix seconds; a naive datetime is taken as UTC."""
    if isinstance(ts, datetime):
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=UTC)
        return ts.timestamp()
    return float(ts)


class _EventView:
    """What subject predicates and group getters see of an inference event."""

    __slots__ = ("subject",)

    def __init__(self, subject: Subject) -> None:
        self.subject = subject


def compile_policies(policies: Iterable[Policy]) -> list[CompiledPolicy]:
    """Compile a policy set in evaluation order; raise :class:`PolicyError` listing every problem."""
    compiled: list[CompiledPolicy] = []
    issues: list[PolicyIssue] = []
    seen: set[str] = set()
    for order, policy in enumerate(policies):
        if policy.id in seen:
            issues.append(PolicyIssue(f"policy {policy.id}", "duplicate policy id in this policy set"))
            continue
        seen.add(policy.id)
        try:
            compiled.append(compile_policy(policy, order))
        except CompileError as e:
            issues.append(PolicyIssue(f"policy {policy.id}: {format_loc(e.loc)}", e.message))
    if issues:
        raise PolicyError(issues)
    compiled.sort(key=lambda p: (-p.priority, p.order))
    return compiled


class PolicyEngine:
    """Evaluate findings against a compiled policy set.

    >>> engine = PolicyEngine(load_pack())                # doctest: +SKIP
    >>> engine.observe_event(subject, occurred_at)        # every inference event (ratio denominators)
    >>> decisions = engine.evaluate(finding)              # every finding -> list[Decision]
    """

    def __init__(self, policies: Iterable[Policy]) -> None:
        self._compiled = compile_policies(policies)
        wildcard = [p for p in self._compiled if p.detectors is None]
        detectors = sorted({d for p in self._compiled if p.detectors for d in p.detectors})
        self._index: dict[str, tuple[CompiledPolicy, ...]] = {
            d: tuple(p for p in self._compiled if p.detectors is None or d in p.detectors) for d in detectors
        }
        self._wildcard: tuple[CompiledPolicy, ...] = tuple(wildcard)
        self._ratio = tuple(
            p for p in self._compiled if p.aggregator is not None and p.aggregator.config.function == "ratio"
        )
        self._by_id = {p.id: p for p in self._compiled}
        self.evaluated = 0
        self.suppressed = 0

    # ------------------------------------------------------------ reading

    @property
    def policies(self) -> list[Policy]:
        """The policies, in evaluation order."""
        return [p.policy for p in self._compiled]

    @property
    def compiled(self) -> Sequence[CompiledPolicy]:
        """Compiled policies in evaluation order (``matched`` / ``fired`` counters are live)."""
        return tuple(self._compiled)

    def policies_for(self, detector: str) -> list[str]:
        """Ids of the policies a finding of ``detector`` meets, in order."""
        return [p.id for p in self._index.get(detector, self._wildcard)]

    # ------------------------------------------------------------ evaluation

    def observe_event(self, subject: Subject, ts: datetime | float,
                      routed: AggregateCollector | None = None) -> None:
        """Count one inference event in the denominator of every ratio policy whose subject filter admits it
        (into ``routed`` instead of the local windows when given)."""
        if not self._ratio:
            return
        view = _EventView(subject)
        t = epoch_seconds(ts)
        for p in self._ratio:
            sp = p.subject_predicate
            if sp is None or sp(view):
                if routed is None:
                    p.aggregator.observe_event(p.group_of(view), t)  # type: ignore[union-attr, misc]
                else:
                    routed.add_event(p, p.group_of(view), t)  # type: ignore[misc]

    def evaluate(self, finding: Finding, routed: AggregateCollector | None = None) -> list[Decision]:
        """All decisions the policies make on one finding (empty when none fires).

        With ``routed``, aggregate policies do not touch the local windows: the finding goes into the
        collector, and the decisions come later from :meth:`apply_delta` where the group's state lives.
        """
        self.evaluated += 1
        policies = self._index.get(finding.detector)
        if policies is None:
            policies = self._wildcard
        out: list[Decision] = []
        for p in policies:
            if not p.predicate(finding):
                continue
            p.matched += 1
            agg = p.aggregator
            if agg is None:
                key = (finding.finding_id,)
                subject = finding.subject
                for build in p.builders:
                    out.append(build(finding, None, subject, key))
                p.fired += len(p.builders)
                if p.stops:
                    self.suppressed += 1
                    break
            else:
                dist = p.distinct_of
                d = None if dist is None else dist(finding)
                group, ts = p.group_of(finding), epoch_seconds(finding.occurred_at)  # type: ignore[misc]
                if routed is not None:
                    routed.add_finding(p, group, ts, None if d is None else str(d), finding)
                    continue
                out.extend(self._fire(p, agg.add(group, ts, None if d is None else str(d)), finding))
        return out

    @staticmethod
    def _fire(p: CompiledPolicy, firing: Firing | None, finding: Finding) -> list[Decision]:
        if firing is None:
            return []
        ctx = p.aggregate_context(firing)
        subject = p.aggregate_subject(firing.group)
        key = ("|".join(firing.group), ctx["window_start"], ctx["window_end"])
        p.fired += len(p.builders)
        return [build(finding, ctx, subject, key) for build in p.builders]

    def apply_delta(self, delta: AggregateDelta, state: list[Any] | None) -> tuple[list[Decision], list[Any] | None]:
        """Apply a routed batch of one group to that group's ``state`` (``None``: no state yet); returns the
        decisions it fires and the group's new state to store.

        A delta made under another version or definition of its policy, or for a policy this set does
        not have, is dropped (no decisions, state unchanged): policies changed between the two steps.
        """
        p = self._by_id.get(delta.policy_id)
        if (p is None or p.aggregator is None or p.version != delta.policy_version
                or p.fingerprint != delta.fingerprint):
            return [], state
        agg = p.aggregator
        group = tuple(delta.group)
        agg.set_group_state(group, state)
        for ts, count in delta.events:
            agg.observe_event(group, ts, count)
        out: list[Decision] = []
        for item in delta.findings:
            out.extend(self._fire(p, agg.add(group, item.ts, item.distinct), item.finding))
        new_state = agg.group_state(group)
        agg.set_group_state(group, None)  # the caller's store holds it; keep nothing stale here
        return out, new_state

    def evaluate_many(self, findings: Iterable[Finding]) -> list[Decision]:
        """Evaluate findings in order; concatenated decisions."""
        out: list[Decision] = []
        for f in findings:
            out.extend(self.evaluate(f))
        return out

    # ------------------------------------------------------------ state

    def snapshot(self) -> dict[str, Any]:
        """The aggregate state of every aggregate policy, as plain JSON-ready data."""
        return {
            "version": SNAPSHOT_VERSION,
            "aggregates": {
                p.id: {"policy_version": p.version, "fingerprint": p.fingerprint, "state": p.aggregator.snapshot()}
                for p in self._compiled
                if p.aggregator is not None
            },
        }

    def restore(self, state: dict[str, Any]) -> list[str]:
        """Load aggregate state saved by :meth:`snapshot`; return the ids of the policies restored.

        State saved under another version or definition (match or aggregate) of a policy is dropped:
        that policy starts with empty windows.
        """
        if not isinstance(state, dict) or state.get("version") != SNAPSHOT_VERSION:
            raise ValueError("not a policy engine snapshot of a supported version")
        saved = state.get("aggregates", {})
        restored = []
        for p in self._compiled:
            entry = saved.get(p.id)
            if p.aggregator is None or not entry:
                continue
            if entry.get("policy_version") != p.version or entry.get("fingerprint") != p.fingerprint:
                continue
            p.aggregator = type(p.aggregator).restore(entry["state"], p.aggregator.config)
            restored.append(p.id)
        return restored
