"""The /healthz verdict from what the monitor observed: heartbeats, lag, the outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session

from api.config import HealthConfig
from api.monitor import HealthMonitor
from contracts.heartbeat import Heartbeat

T0 = 1_800_000_000.0


def _monitor(**config: object) -> HealthMonitor:
    m = HealthMonitor("127.0.0.1:1", engine=None, config=HealthConfig(**config), governance_group="g")  # type: ignore[arg-type]
    m.started = T0
    return m


def _beat(m: HealthMonitor, instance: str, at: float, state: str = "running", **counters: int) -> None:
    beat = Heartbeat(instance=instance, group="w", pid=7, started_at=datetime.fromtimestamp(T0, UTC), interval_s=5,
                     state=state, counters=counters)
    m.observe(beat.model_dump_json().encode(), int(at * 1000))


def test_a_silent_worker_degrades_and_a_fresh_heartbeat_clears_it() -> None:
    m = _monitor(worker_stale_s=30)
    _beat(m, "worker@a", T0 + 10)
    assert m.report(T0 + 20).reasons == []
    silent = m.report(T0 + 50)
    assert len(silent.reasons) == 1 and "worker@a" in silent.reasons[0] and "40 s" in silent.reasons[0]
    assert silent.details["workers"]["worker@a"]["state"] == "silent"
    _beat(m, "worker@a", T0 + 55)  # restarted: same instance, beating again
    assert m.report(T0 + 60).reasons == []


def test_an_old_heartbeat_read_late_does_not_hide_a_newer_one() -> None:
    m = _monitor(worker_stale_s=30)
    _beat(m, "worker@a", T0 + 100)
    _beat(m, "worker@a", T0 + 10)
    assert m.report(T0 + 110).reasons == []


def test_a_worker_stopped_on_purpose_is_not_a_failure_and_a_forgotten_one_disappears() -> None:
    m = _monitor(worker_stale_s=30, forget_after_s=600)
    _beat(m, "worker@a", T0, state="stopped")
    _beat(m, "worker@b", T0)
    report = m.report(T0 + 100)
    assert [r for r in report.reasons if "worker@a" in r] == [] and any("worker@b" in r for r in report.reasons)
    assert m.report(T0 + 700).details["workers"] == {}


def test_an_expected_worker_that_never_reports_degrades_after_the_grace() -> None:
    m = _monitor(expect_worker=True, startup_grace_s=60)
    early = m.report(T0 + 10)
    assert early.reasons == [] and "start-up grace" in early.warnings[0]
    assert "no stream worker is running" in m.report(T0 + 61).reasons[0]
    assert _monitor(expect_worker=False).report(T0 + 1000).reasons == []


def test_lag_beyond_the_bound_and_overdue_notifications_degrade() -> None:
    m = _monitor(max_lag=100, outbox_max_age_s=300)
    groups = {"ok": True, "groups": [{"group": "w", "state": "Stable", "members": 1, "total_lag": 101},
                                     {"group": "g", "state": "Stable", "members": 1, "total_lag": 5}]}
    m.outbox = {"waiting": 9, "overdue": 3, "oldest_overdue_s": 900}
    reasons = m.report(T0 + 1, groups=groups, worker_group="w", governance_group="g").reasons
    assert any("stream workers' group (w) is 101 messages behind" in r for r in reasons)
    assert any("3 alert notifications are overdue" in r for r in reasons)
    groups["groups"][0]["total_lag"] = 100
    m.outbox = {"waiting": 9, "overdue": 0}
    assert m.report(T0 + 1, groups=groups, worker_group="w", governance_group="g").reasons == []


def test_an_agent_restart_is_a_warning() -> None:
    m = _monitor()
    _beat(m, "worker@a", T0, agent_starts=3)
    assert "restarted 2 time(s)" in m.report(T0 + 1).warnings[0]


def test_a_store_that_refuses_writes_degrades_with_the_reason_and_for_how_long() -> None:
    m = _monitor()
    full = m.report(T0 + 100, store_error="the disk holding the store is full", store_error_since=T0 + 40)
    assert len(full.reasons) == 1
    assert "store refuses writes for 60 s (the disk holding the store is full)" in full.reasons[0]
    assert "stopped consuming" in full.reasons[0]
    assert m.report(T0 + 101).reasons == []


def test_notifications_failing_longer_than_the_bound_are_overdue_though_each_retry_is_due_later(tmp_path: Path) -> None:
    """A receiver that refuses: every failed attempt moves next_attempt_at ahead, so lateness counts from when the
    notification was queued. Notifications held on purpose (a group's wait) are not overdue before they are due."""
    from store.db import init_db, make_engine
    from store.models import OutboxRow

    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    init_db(engine)
    now = datetime.now(UTC)
    rows = [  # (attempts, queued s ago, due in s, destination)
        (3, 60, 5, "webhook:ops"),       # failing for a minute, next retry in 5 s: overdue
        (1, 5, 2, "webhook:ops"),        # failed once, queued 5 s ago: not yet
        (0, 200, 100, "slack:ml"),       # waiting for its group's interval: not due, not overdue
        (0, 90, -40, "pagerduty:ml"),    # due 40 s ago and never tried (a dispatcher that does not run): overdue
    ]
    with Session(engine) as session:
        for i, (attempts, queued, due, dest) in enumerate(rows):
            session.add(OutboxRow(delivery_id=f"d{i}", destination=dest, alert_id=f"a{i}", tenant="acme",
                                  event="trigger", payload={}, status="pending", attempts=attempts,
                                  created_at=now - timedelta(seconds=queued), next_attempt_at=now + timedelta(seconds=due)))
        session.commit()
    m = HealthMonitor("127.0.0.1:1", engine, HealthConfig(outbox_max_age_s=20), governance_group="g")
    outbox = m._outbox()
    assert outbox["waiting"] == 4 and outbox["overdue"] == 2
    assert outbox["destinations"] == ["pagerduty:ml", "webhook:ops"] and 55 <= outbox["oldest_overdue_s"] <= 65
    m.outbox = outbox
    [reason] = m.report(T0 + 1).reasons
    assert "2 alert notifications to pagerduty:ml, webhook:ops are overdue by more than 20 s" in reason
    engine.dispose()
