"""The /healthz verdict from what the monitor observed: heartbeats, lag, the outbox."""

from __future__ import annotations

from datetime import UTC, datetime

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
