"""Anomalies on LLM operations: synthetic but realistic per-(tenant, model) traffic through the ops-metrics stage.

usage: python -m bench.ops_anomaly [--subjects 8] [--days 7] [--seed 1] [--interval 60]

Every subject (a tenant's model) gets its own traffic: requests per minute with a daily shape and a quieter
weekend (Poisson counts), log-normal latencies that grow a little with load, a base error rate, log-normal
tokens per request and a per-token price. Events go, in event-time order across all subjects, through
:class:`detectors.anomaly.opsmetrics.OpsMetricsMonitor` (one-minute intervals by default: latency p50/p95,
error rate, request rate, tokens, cost, each watched by an :class:`AnomalyDetector`), exactly as the stream
worker feeds it. After the first day (learning) each subject but the last gets incidents of these kinds:

* ``latency_regression`` — a deployment makes every request 1.6-2.5x slower for 1-4 hours;
* ``error_burst`` — the error rate jumps to 8-25 % for 10-40 minutes;
* ``token_surge`` — tokens (and so cost) per request grow 2.5-5x for 30-120 minutes (a prompt loop, abuse);
* ``traffic_drop`` — requests fall to 10-40 % for 30-120 minutes (an upstream outage);
* ``slow_leak`` — latency creeps up linearly to 1.5-2x over 6-12 hours, then recovers (a leak, a cache).

Reported: per kind, incidents detected (a finding on the kind's metrics between its start and 30 minutes after
its end) and the detection delay (incident start to the end of the first flagged interval); false alarms per
subject-day: findings of a subject outside all its incidents (plus 30 minutes), counted after the first day
(learning day reported apart), over all six metric series of the subject. The last line is the headline.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import numpy as np

from detectors.anomaly.opsmetrics import OpsMetricsConfig, OpsMetricsMonitor
from detectors.finding import Finding, Subject

T0 = datetime(2025, 3, 3, tzinfo=UTC)  # a Monday
KINDS: dict[str, tuple[str, ...]] = {
    "latency_regression": ("latency_p50_ms", "latency_p95_ms"),
    "error_burst": ("error_rate",),
    "token_surge": ("tokens", "cost"),
    "traffic_drop": ("request_rate",),
    "slow_leak": ("latency_p50_ms", "latency_p95_ms"),
}
GRACE_MIN = 30  # a finding up to this long after an incident ends still belongs to it
HIGH = OpsMetricsConfig().severity_levels[1][0]  # findings at or above this score are "high" or "critical"


@dataclass
class Incident:
    subject: int
    kind: str
    start: int  # minute
    duration: int  # minutes
    size: float
    first_detection: float | None = None  # minutes after start


@dataclass
class Profile:
    """One subject's normal traffic."""

    rate: float  # mean requests per minute
    peak_hour: float
    daily_amp: float
    weekend: float
    latency_ms: float
    latency_sigma: float
    error_rate: float
    tokens: float
    price: float
    incidents: list[Incident] = field(default_factory=list)

    def requests(self, minute: int) -> float:
        hour = (minute % 1440) / 60.0
        dow = (minute // 1440) % 7
        shape = 1.0 + self.daily_amp * math.cos(2 * math.pi * (hour - self.peak_hour) / 24.0)
        return self.rate * shape * (self.weekend if dow >= 5 else 1.0)


def _profile(rng: np.random.Generator) -> Profile:
    return Profile(
        rate=float(rng.uniform(20, 150)),
        peak_hour=float(rng.uniform(10, 16)),
        daily_amp=float(rng.uniform(0.3, 0.8)),
        weekend=float(rng.uniform(0.4, 0.9)),
        latency_ms=float(rng.uniform(300, 2500)),
        latency_sigma=float(rng.uniform(0.25, 0.6)),
        error_rate=float(rng.uniform(0.002, 0.02)),
        tokens=float(rng.uniform(150, 900)),
        price=float(rng.uniform(1e-6, 2e-5)),
    )


def schedule(rng: np.random.Generator, profiles: list[Profile], days: int) -> list[Incident]:
    """Incidents after the learning day, one kind after another, at least 12 hours apart per subject."""
    incidents = []
    kinds = list(KINDS)
    k = 0
    for si, p in enumerate(profiles[:-1]):  # the last subject stays clean
        t = 1440 + int(rng.integers(60, 720))
        while t < days * 1440 - 900:
            kind = kinds[k % len(kinds)]
            k += 1
            dur = {"latency_regression": (60, 240), "error_burst": (10, 40), "token_surge": (30, 120),
                   "traffic_drop": (30, 120), "slow_leak": (360, 720)}[kind]
            size = {"latency_regression": (1.6, 2.5), "error_burst": (0.08, 0.25), "token_surge": (2.5, 5.0),
                    "traffic_drop": (0.1, 0.4), "slow_leak": (1.5, 2.0)}[kind]
            d = int(rng.integers(*dur))
            if t + d >= days * 1440 - GRACE_MIN:
                break
            inc = Incident(si, kind, t, d, float(rng.uniform(*size)))
            p.incidents.append(inc)
            incidents.append(inc)
            t += d + int(rng.integers(720, 1800))
    return incidents


def _minute_events(rng: np.random.Generator, p: Profile, minute: int) -> list[tuple[float, float, bool, int, float]]:
    lam = p.requests(minute)
    lat_mult, err, tok_mult = 1.0, p.error_rate, 1.0
    for inc in p.incidents:
        if not inc.start <= minute < inc.start + inc.duration:
            continue
        if inc.kind == "latency_regression":
            lat_mult *= inc.size
        elif inc.kind == "error_burst":
            err = inc.size
        elif inc.kind == "token_surge":
            tok_mult *= inc.size
        elif inc.kind == "traffic_drop":
            lam *= inc.size
        else:  # slow_leak
            lat_mult *= 1.0 + (inc.size - 1.0) * (minute - inc.start) / inc.duration
    n = int(rng.poisson(lam))
    if n == 0:
        return []
    load = lam / p.rate
    lat = p.latency_ms * (0.85 + 0.15 * load) * lat_mult * rng.lognormal(0.0, p.latency_sigma, n)
    errors = rng.random(n) < err
    tokens = np.maximum(1, np.round(p.tokens * tok_mult * rng.lognormal(0.0, 0.5, n))).astype(int)
    when = 60.0 * minute + np.sort(rng.random(n)) * 60.0
    return [(float(w), float(la), bool(e), int(tk), float(tk) * p.price)
            for w, la, e, tk in zip(when, lat, errors, tokens, strict=True)]


def simulate(n_subjects: int, days: int, seed: int, interval_s: float, warmup: int | None = None) -> tuple[list[Profile], list[Incident],
                                                                                 list[Finding], int, float]:
    """Run the traffic through one monitor; returns profiles, incidents, findings, events, seconds."""
    rng = np.random.default_rng(seed)
    profiles = [_profile(rng) for _ in range(n_subjects)]
    incidents = schedule(rng, profiles, days)
    subjects = [Subject(tenant=f"tenant{i % 3}", model=f"model{i}") for i in range(n_subjects)]
    cfg = OpsMetricsConfig(interval_s=interval_s)
    if warmup is not None:
        cfg = replace(cfg, detector=replace(cfg.detector, warmup=warmup))
    mon = OpsMetricsMonitor(cfg)
    findings: list[Finding] = []
    events = 0
    spent = 0.0
    for minute in range(days * 1440):
        batch = []
        for si, p in enumerate(profiles):
            batch += [(ev[0], si, ev) for ev in _minute_events(rng, p, minute)]
        batch.sort(key=lambda b: b[0])
        t0 = time.perf_counter()
        for w, si, (_, lat, err, tok, cost) in batch:
            findings += mon.observe(subjects[si], T0 + timedelta(seconds=w), lat, err, tok, cost)
        spent += time.perf_counter() - t0
        events += len(batch)
    findings += mon.advance(T0 + timedelta(days=days, minutes=2))
    return profiles, incidents, findings, events, spent


def evaluate(profiles: list[Profile], incidents: list[Incident], findings: list[Finding], days: int
             ) -> dict[str, object]:
    """Detections and delays per incident kind; false alarms per subject-day outside incidents."""
    by_subject: dict[int, list[tuple[float, str, float]]] = {i: [] for i in range(len(profiles))}
    for f in findings:
        si = int(f.subject.model.removeprefix("model"))
        end = f.window.end if f.window is not None else f.occurred_at
        by_subject[si].append(((end - T0).total_seconds() / 60.0, str(f.evidence["metric"]), f.score))
    for inc in incidents:
        hits = [m - inc.start for m, metric, _ in by_subject[inc.subject]
                if metric in KINDS[inc.kind] and inc.start < m <= inc.start + inc.duration + GRACE_MIN]
        inc.first_detection = min(hits) if hits else None
    false_day1, false_later, false_high = 0, 0, 0
    per_metric: dict[str, int] = {}
    for si, rows in by_subject.items():
        for m, metric, score in rows:
            if any(inc.start < m <= inc.start + inc.duration + GRACE_MIN for inc in profiles[si].incidents):
                continue
            if m <= 1440:
                false_day1 += 1
            else:
                false_later += 1
                false_high += score >= HIGH
                per_metric[metric] = per_metric.get(metric, 0) + 1
    later_days = len(profiles) * (days - 1)
    return {"false_day1": false_day1, "false_later": false_later, "per_metric": per_metric,
            "false_per_subject_day": false_later / max(later_days, 1), "later_days": later_days,
            "false_high_per_subject_day": false_high / max(later_days, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=8)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--interval", type=float, default=60.0, help="interval seconds of the ops-metrics stage")
    ap.add_argument("--warmup", type=int, default=None, help="detector warm-up in intervals (default: the stage's)")
    a = ap.parse_args(argv)
    profiles, incidents, findings, events, spent = simulate(a.subjects, a.days, a.seed, a.interval, a.warmup)
    res = evaluate(profiles, incidents, findings, a.days)
    print(f"subjects={a.subjects} days={a.days} seed={a.seed} interval={a.interval:g}s events={events:,} "
          f"findings={len(findings)} ops-stage {events / spent:,.0f} events/s")
    print(f"{'incident kind':20s} {'detected':>9s} {'median delay':>13s} {'max delay':>10s}  (minutes)")
    for kind in KINDS:
        incs = [i for i in incidents if i.kind == kind]
        delays = [i.first_detection for i in incs if i.first_detection is not None]
        med = f"{statistics.median(delays):.0f}" if delays else "-"
        mx = f"{max(delays):.0f}" if delays else "-"
        print(f"{kind:20s} {len(delays):4d}/{len(incs):<4d} {med:>13s} {mx:>10s}")
    per_metric = res["per_metric"]
    assert isinstance(per_metric, dict)
    print(f"false alarms in the learning day: {res['false_day1']} over {a.subjects} subjects")
    print("false alarms after it, by metric: " + (", ".join(f"{k} {v}" for k, v in sorted(per_metric.items())) or "none"))
    detected = sum(1 for i in incidents if i.first_detection is not None)
    print(f"false alarms of severity high or critical (score >= {HIGH:g}): "
          f"{res['false_high_per_subject_day']:.2f} per (tenant, model) per day")
    print(f"incidents detected {detected}/{len(incidents)}; false alarms {res['false_later']} in "
          f"{res['later_days']} subject-days = {res['false_per_subject_day']:.2f} per (tenant, model) per day "
          f"(six metrics together)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
