"""Benchmark: single-finding policy evaluation throughput on the built-in pack (findings/s per core).

Run: ``.venv/bin/python -m bench.policies [--n 50000] [--repeats 7]``. One process, one thread, so
the figure is per core. Findings (a deterministic mix of the five detectors, kinds and severities)
are built before timing; each repeat evaluates all of them with a fresh engine and the median is
reported. Times are this process's CPU time (``time.process_time``): that is what "per core" means,
and other jobs on a shared machine disturb it least (the wall-clock figure is printed too). A
baseline measured in the same run (a loop that only looks up each finding's detector) puts the
figure in context. Last line: the headline figure against the goal.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from detectors.finding import Finding, Severity, Subject
from policies.engine import PolicyEngine
from policies.loader import load_pack

GOAL = 50_000.0


def make_findings(n: int, seed: int = 7) -> list[Finding]:
    """A deterministic, production-like mix of findings over ~an hour for 20 tenant/model subjects."""
    rng = random.Random(seed)
    subjects = [Subject(tenant=f"t{t}", model=f"m{m}", version="1") for t in range(5) for m in range(4)]
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    sev = list(Severity)
    out: list[Finding] = []
    for i in range(n):
        s = rng.choice(subjects)
        ts = t0 + timedelta(seconds=i * 3600 / n)
        r = rng.random()
        severity = rng.choices(sev, weights=[10, 30, 35, 20, 5])[0]
        if r < 0.35:
            kind = rng.choice(["error_status", "latency_slo"])
            ev: dict[str, Any]
            ev = {"error_type": "timeout"} if kind == "error_status" else {"latency_ms": 9000.0, "slo_ms": 5000.0}
            det = "rule"
            severity = Severity.high if kind == "error_status" else rng.choice([Severity.medium, Severity.high])
        elif r < 0.65:
            det, kind = "pii", "pii_detected"
            ev = {"entities": {"EMAIL_ADDRESS": 1}, "fields": {"response": {"EMAIL_ADDRESS": 1}}}
        elif r < 0.85:
            det, kind = "anomaly", "metric_anomaly"
            ev = {"metric": rng.choice(["latency_ms", "tokens", "cost"]), "value": 123.0, "expected": [1.0, 2.0]}
        elif r < 0.93:
            det, kind = "drift", "feature_drift"
            ev = {"features": ["length"], "statistic": 0.4, "p_value": 0.001}
        elif r < 0.98:
            det, kind = "bias", "fairness_gap"
            ev = {"group": "gender", "metric": "dp_difference", "value": 0.2}
        else:
            det, kind, ev = "custom", "other", {}
        out.append(
            Finding.create(
                detector=det,
                kind=kind,
                subject=s,
                severity=severity,
                score=rng.random(),
                summary=f"{det} {kind}",
                evidence=ev,
                event_id=f"ev-{i}",
                occurred_at=ts,
            )
        )
    return out


def _time(fn) -> float:
    """CPU seconds of this process spent in ``fn`` (less disturbed than wall time on a shared machine)."""
    t = time.process_time()
    fn()
    return time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    policies = load_pack("builtin")
    findings = make_findings(args.n)
    subjects = sorted({f.subject for f in findings}, key=lambda s: (s.tenant, s.model))

    def baseline() -> None:
        index = {"rule": 1, "pii": 2}
        for f in findings:
            index.get(f.detector)

    decisions = 0

    def run() -> None:
        nonlocal decisions
        engine = PolicyEngine(policies)
        ev = engine.evaluate
        decisions = 0
        for f in findings:
            decisions += len(ev(f))

    singles = [p for p in policies if p.aggregate is None]

    def run_singles() -> None:
        engine = PolicyEngine(singles)
        ev = engine.evaluate
        for f in findings:
            ev(f)

    def events() -> None:
        engine = PolicyEngine(policies)
        obs = engine.observe_event
        for i, f in enumerate(findings):
            obs(subjects[i % len(subjects)], f.occurred_at)

    run()  # warm up
    base = [_time(baseline) for _ in range(args.repeats)]
    full, walls = [], []
    for _ in range(args.repeats):
        w = time.perf_counter()
        full.append(_time(run))
        walls.append(time.perf_counter() - w)
    evts = [_time(events) for _ in range(args.repeats)]
    only = [_time(run_singles) for _ in range(args.repeats)]
    n = len(findings)
    med_base, med_full, med_evts = (statistics.median(x) for x in (base, full, evts))
    per_s = n / med_full
    print(f"findings: {n}, policies: {len(policies)}, repeats: {args.repeats}, decisions per run: {decisions}")
    print(f"baseline (detector lookup only): {n / med_base:,.0f} findings/s")
    print(f"observe_event (ratio denominators): {n / med_evts:,.0f} events/s")
    print(f"without the {len(policies) - len(singles)} aggregate policies: {n / statistics.median(only):,.0f} findings/s")
    print(f"wall clock (disturbed by other jobs on the machine): {n / statistics.median(walls):,.0f} findings/s")
    print(f"evaluate: median {med_full * 1e6 / n:.2f} us/finding, {med_full / med_base:.1f}x the baseline loop")
    print(f"single-finding evaluation, whole built-in pack: {per_s:,.0f} findings/s per core ({per_s / GOAL:.2f}x the 50,000 goal)")


if __name__ == "__main__":
    main()
