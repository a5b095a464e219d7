"""Dry run: replay findings through a candidate policy set and report what would fire (pure).

Nothing is published or stored: a fresh :class:`~policies.engine.PolicyEngine` evaluates the
findings in the order given and the report counts, per policy, the findings matched and the
decisions by action. For ratio policies pass the inference events too (``events``: ``(subject, ts)``
pairs); events and findings are merged by event time (both must be in time order; at equal times an
event comes before a finding, as in the stream). The CLI (``warden policy test``) wraps this.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contracts.decision import Decision
from detectors.finding import Finding, Subject
from policies.engine import PolicyEngine, epoch_seconds
from policies.schema import Policy


@dataclass(slots=True)
class PolicyTally:
    """What one policy did during a dry run."""

    policy_id: str
    version: int
    mode: str
    matched: int = 0
    decisions: int = 0
    by_action: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class DryRunReport:
    """Result of :func:`dry_run`; ``decisions`` holds at most ``max_decisions`` of them (first ones)."""

    findings: int
    events: int
    skipped: int
    suppressed: int
    total_decisions: int
    policies: list[PolicyTally]
    decisions: list[Decision]

    def fired(self) -> dict[str, int]:
        """Decisions per policy id (policies that fired only)."""
        return {t.policy_id: t.decisions for t in self.policies if t.decisions}

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (decisions as JSON-mode dumps)."""
        return {
            "findings": self.findings,
            "events": self.events,
            "skipped": self.skipped,
            "suppressed": self.suppressed,
            "total_decisions": self.total_decisions,
            "policies": [
                {
                    "policy_id": t.policy_id,
                    "version": t.version,
                    "mode": t.mode,
                    "matched": t.matched,
                    "decisions": t.decisions,
                    "by_action": dict(t.by_action),
                }
                for t in self.policies
            ],
            "decisions": [d.model_dump(mode="json") for d in self.decisions],
        }

    def to_text(self, show: int = 20) -> str:
        """A readable summary: one line per policy, then the first ``show`` decisions."""
        lines = [
            f"replayed {self.findings} findings and {self.events} events"
            + (f" ({self.skipped} before --since skipped)" if self.skipped else "")
            + f": {self.total_decisions} decisions would be made, {self.suppressed} findings suppressed",
            f"{'policy':<32} {'ver':>4} {'mode':<8} {'matched':>8} {'decisions':>9}  actions",
        ]
        for t in self.policies:
            actions = ", ".join(f"{k}={v}" for k, v in sorted(t.by_action.items())) or "-"
            lines.append(f"{t.policy_id:<32} {t.version:>4} {t.mode:<8} {t.matched:>8} {t.decisions:>9}  {actions}")
        for d in self.decisions[:show]:
            extra = f" route={d.route}" if d.route else ""
            extra += f" job={d.job.kind}({d.job.approval})" if d.job else ""
            extra += f" tags={','.join(d.tags)}" if d.tags else ""
            lines.append(
                f"  {d.created_at.isoformat()} {d.policy_id}@v{d.policy_version} {d.mode} {d.action.value}"
                f" {d.severity.name} {d.subject.tenant}/{d.subject.model}: {d.summary}{extra}"
            )
        if self.total_decisions > show:
            lines.append(f"  ... {self.total_decisions - min(show, len(self.decisions))} more")
        return "\n".join(lines)


def _merged(findings: Iterable[Finding], events: Iterable[tuple[Subject, Any]] | None) -> Iterator[Any]:
    if events is None:
        yield from findings
        return
    fs = ((epoch_seconds(f.occurred_at), 1, i, f) for i, f in enumerate(findings))
    es = ((epoch_seconds(ts), 0, i, (subj, ts)) for i, (subj, ts) in enumerate(events))
    for _t, _k, _i, item in heapq.merge(es, fs):
        yield item


def dry_run(
    policies: Iterable[Policy],
    findings: Iterable[Finding],
    *,
    events: Iterable[tuple[Subject, datetime | float]] | None = None,
    since: datetime | None = None,
    max_decisions: int = 10_000,
) -> DryRunReport:
    """Replay ``findings`` (and ``events``) through ``policies``; return what would have fired.

    ``since`` skips findings and events before that time (counted in ``skipped``). Raises
    :class:`~policies.errors.PolicyError` when the policies do not compile.
    """
    engine = PolicyEngine(policies)
    t_since = None if since is None else epoch_seconds(since)
    n_findings = n_events = skipped = total = 0
    kept: list[Decision] = []
    by_action: dict[str, Counter[str]] = {p.id: Counter() for p in engine.compiled}
    for item in _merged(findings, events):
        if isinstance(item, Finding):
            if t_since is not None and epoch_seconds(item.occurred_at) < t_since:
                skipped += 1
                continue
            n_findings += 1
            for d in engine.evaluate(item):
                total += 1
                by_action[d.policy_id][d.action.value] += 1
                if len(kept) < max_decisions:
                    kept.append(d)
        else:
            subject, ts = item
            if t_since is not None and epoch_seconds(ts) < t_since:
                skipped += 1
                continue
            n_events += 1
            engine.observe_event(subject, ts)
    tallies = [
        PolicyTally(p.id, p.version, p.mode, p.matched, p.fired, dict(by_action[p.id])) for p in engine.compiled
    ]
    return DryRunReport(n_findings, n_events, skipped, engine.suppressed, total, tallies, kept)
