"""Security windows: attack and toxic-response rates by cohort, and the regression test after a deployment."""

from __future__ import annotations

import random

from detectors.finding import Subject
from detectors.security import SecurityMonitor, SecurityWindowConfig
from detectors.security.monitor import two_proportion_p

T0 = 1_800_000_000.0  # a window boundary of 900 s


def _feed(mon: SecurityMonitor, version: str, n: int, toxic_rate: float, start: float, seed: int = 0,
          attack_rate: float = 0.0) -> list:
    rng = random.Random(seed)
    found = []
    for i in range(n):
        found += mon.observe(Subject(tenant="acme", model="bot", version=version), start + i * (1800.0 / n),
                             attack=rng.random() < attack_rate, toxic_response=rng.random() < toxic_rate,
                             attributes={"gender": "f" if i % 2 else "m", "age_band": "65+"})
    return found


def test_two_proportion_p_is_small_only_for_a_real_rise() -> None:
    assert two_proportion_p(10, 1000, 60, 1000) < 1e-6
    assert two_proportion_p(10, 1000, 12, 1000) > 0.3
    assert two_proportion_p(60, 1000, 10, 1000) > 0.99  # a fall is not a rise
    assert two_proportion_p(0, 0, 5, 10) == 1.0


def test_a_closed_window_reports_rates_overall_and_by_cohort() -> None:
    mon = SecurityMonitor(SecurityWindowConfig(window_s=900, min_group=10))
    found = _feed(mon, "1", 200, toxic_rate=0.1, start=T0, attack_rate=0.2)
    windows = [f for f in found if f.kind == "security_window"]
    assert len(windows) == 1  # the second half-hour's window is still open
    w = windows[0]
    assert w.evidence["events"] == 100 and w.window is not None and w.window.n == 100
    assert 0.1 <= w.evidence["attack_rate"] <= 0.3 and w.severity.name == "low"  # >= 5 % attacks
    assert {"gender=f", "gender=m", "age_band=65+"} <= set(w.evidence["cohorts"])
    assert mon.flush(Subject(tenant="acme", model="bot"))[0].evidence["events"] == 100


def test_a_more_toxic_deployment_is_a_regression_once() -> None:
    mon = SecurityMonitor(SecurityWindowConfig(window_s=900, min_responses=200, min_group=30))
    mon.deployed("acme", "bot", "1")
    _feed(mon, "1", 600, toxic_rate=0.01, start=T0, seed=1)
    mon.deployed("acme", "bot", "2")
    found = _feed(mon, "2", 1200, toxic_rate=0.08, start=T0 + 1800, seed=2)
    regressions = [f for f in found if f.kind == "toxicity_regression"]
    assert len(regressions) == 1
    r = regressions[0]
    assert r.subject.version == "2" and r.severity.name == "high"
    assert r.evidence["baseline_version"] == "1" and r.evidence["after"] > r.evidence["before"]
    assert r.evidence["p_value"] < 0.01 and r.evidence["cohorts"]


def test_an_equally_toxic_deployment_is_not_a_regression() -> None:
    mon = SecurityMonitor(SecurityWindowConfig(window_s=900, min_responses=200))
    mon.deployed("acme", "bot", "1")
    _feed(mon, "1", 800, toxic_rate=0.03, start=T0, seed=3)
    mon.deployed("acme", "bot", "2")
    found = _feed(mon, "2", 800, toxic_rate=0.03, start=T0 + 1800, seed=4)
    assert not [f for f in found if f.kind == "toxicity_regression"]


def test_state_round_trips_per_model() -> None:
    mon = SecurityMonitor()
    mon.deployed("acme", "bot", "1")
    _feed(mon, "1", 50, toxic_rate=0.5, start=T0)
    state = mon.model_state("acme", "bot")
    assert state is not None and mon.model_state("acme", "other") is None
    other = SecurityMonitor()
    assert other.restore_model("acme", "bot", state) == 1
    assert other.model_state("acme", "bot") == state
    assert other.restore_model("acme", "bot", state) == 0  # state held here wins
    other.forget_model("acme", "bot")
    assert other.model_state("acme", "bot") is None
