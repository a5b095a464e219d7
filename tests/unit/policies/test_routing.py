"""Aggregates routed to the owner of their group: collected per batch, applied to stored group state."""

from __future__ import annotations

import json
from datetime import timedelta

from contracts.aggregates import AggregateDelta
from detectors.finding import Subject
from policies.engine import PolicyEngine
from policies.routing import AggregateCollector
from tests.unit.policies.test_engine import PII_RATIO, T0, _f, engine

PER_TENANT = PII_RATIO.replace("group_by: [subject.tenant, subject.model]", "group_by: [subject.tenant]")
COUNT = """
policies:
  - id: error-burst
    version: 2
    match: {detector: rule, kind: error_status}
    aggregate: {function: count, window: 5m, group_by: [subject.model], threshold: 4}
    actions:
      - alert: {severity: high, summary: "{aggregate.value} errors", route: default}
"""


class Table(dict):
    """A keyed store like a faust table: values round-trip through JSON."""

    def apply(self, e: PolicyEngine, deltas: list[AggregateDelta]) -> list:
        out = []
        for d in deltas:
            d = AggregateDelta.model_validate_json(d.model_dump_json())  # over the wire
            decisions, state = e.apply_delta(d, self.get(d.key))
            self[d.key] = json.loads(json.dumps(state))
            out += decisions
        return out


def _batch(e: PolicyEngine, c: AggregateCollector, model: str, start: int, n: int, every: int) -> list:
    """``n`` events of acme/``model`` one second apart, a PII finding on every ``every``-th."""
    local = []
    subject = Subject(tenant="acme", model=model)
    for i in range(start, start + n):
        e.observe_event(subject, T0 + timedelta(seconds=i), c)
        if i % every == every - 1:
            local += e.evaluate(_f(detector="pii", kind="pii_detected", subject=subject, at=i,
                                   event_id=f"{model}-{i}", evidence={}), c)
    return local


def test_routed_count_fires_like_local_evaluation_and_leaves_no_local_state() -> None:
    findings = [_f(kind="error_status", at=float(i * 30), event_id=f"e{i}", severity="high") for i in range(20)]
    local = engine(COUNT).evaluate_many(findings)
    routed_engine, table, routed = engine(COUNT), Table(), []
    for start in range(0, 20, 7):  # three batches
        c = AggregateCollector()
        assert all(routed_engine.evaluate(f, c) == [] for f in findings[start:start + 7])
        routed += table.apply(routed_engine, c.drain())
        assert len(c) == 0
    assert [d.decision_id for d in routed] == [d.decision_id for d in local] and len(local) == 2  # one per 5-minute window
    assert routed[0].finding_ids == local[0].finding_ids  # the same finding tipped the window
    assert routed_engine.compiled[0].aggregator is not None and len(routed_engine.compiled[0].aggregator) == 0


def test_a_group_spanning_two_workers_fires_on_their_combined_counts() -> None:
    # tenant-wide PII ratio (1 % over 10 min, at least 100 events); each model alone stays at 0.9 %
    one, two = engine(PER_TENANT), engine(PER_TENANT)
    c1, c2 = AggregateCollector(), AggregateCollector()
    assert _batch(one, c1, "chat", 0, 110, every=110) == []
    assert _batch(two, c2, "search", 0, 110, every=55) == []  # 2/110 alone: local would fire, routed does not
    owner, table = engine(PER_TENANT), Table()
    fired = table.apply(owner, c1.drain() + c2.drain())
    (d,) = fired  # (1 + 2) / 220 = 1.4 % > 1 %
    assert d.subject.tenant == "acme" and d.labels["aggregate.denominator"] == "220"
    assert d.labels["aggregate.numerator"] == "3"
    # at most one firing per window: more of the same window fires nothing, also after a "restart"
    restarted = engine(PER_TENANT)
    c = AggregateCollector()
    _batch(one, c, "chat", 110, 100, every=20)
    assert table.apply(restarted, c.drain()) == []


def test_state_survives_in_the_table_across_owners() -> None:
    table = Table()
    for model, owner in (("chat", engine(PER_TENANT)), ("chat", engine(PER_TENANT))):  # a new owner each batch
        c = AggregateCollector()
        _batch(owner, c, model, 0 if not table else 60, 60, every=61)  # events only, no finding
        assert table.apply(owner, c.drain()) == []
    (state,) = table.values()
    assert sum(b[2] for b in state[2]) == 120  # both batches' denominators are in the stored state
    c = AggregateCollector()
    owner = engine(PER_TENANT)
    _batch(owner, c, "chat", 120, 2, every=1)  # 2 findings in 122 events: 1.6 %
    (d,) = table.apply(owner, c.drain())
    assert d.labels["aggregate.denominator"] == "122"


def test_a_delta_from_another_policy_version_is_dropped() -> None:
    c = AggregateCollector()
    e = engine(COUNT)
    e.evaluate(_f(kind="error_status", at=0.0, event_id="x", severity="high"), c)
    (delta,) = c.drain()
    newer = engine(COUNT.replace("version: 2", "version: 3"))
    assert newer.apply_delta(delta, ["kept"]) == ([], ["kept"])
    assert engine(PII_RATIO).apply_delta(delta, None) == ([], None)
