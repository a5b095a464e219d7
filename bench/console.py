"""Benchmark of the web console's pages on PostgreSQL with 1,000,000 findings and 100,000 audit entries.

1. Bulk-load (COPY) a store migrated by ``init_db``: N findings over the last ``--days`` days (default 90,
   the default retention) across 5 tenants × 10 models and every detector, with the evidence shapes the
   detectors write (drift p-values, fairness cohorts with intervals, ops anomalies, PII entity counts);
   alerts and the decisions that fold into them; dead letters; jobs; a registry with alias history; and a
   hash-chained audit trail of M entries (verifiable). The findings are then counted into their rollups
   (``store.rollups.recount``, what migration 0009 does for findings stored before it; ingest keeps them
   up to date afterwards).
2. Serve the real app with uvicorn over TCP (the lifespan runs: a real Apache Kafka broker is started
   for the producer and the consumer-group health the overview shows, unless ``--no-kafka``).
3. Sign in as an admin over every tenant and as an operator/auditor scoped to one tenant, and time each
   page (wall time of the HTTP request on the loopback: an upper bound of the server time): p50/p99.

    .venv/bin/python -m bench.console [--findings 1000000] [--audit 100000] [--requests 30] [--no-kafka]

Timings are of this run on a shared machine: provisional; the goal is ≤ 300 ms per page.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import statistics
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

TENANTS = [f"tenant-{i:02d}" for i in range(5)]
MODELS = [f"model-{i:02d}" for i in range(10)]
VERSIONS = ["v1", "v2", "v3"]
#: detector → (share of findings, kinds)
DETECTORS: dict[str, tuple[float, tuple[str, ...]]] = {
    "pii": (0.35, ("pii_detected",)),
    "rule": (0.30, ("error_status", "latency_slo")),
    "security": (0.10, ("prompt_injection", "jailbreak")),
    "anomaly": (0.10, ("metric_anomaly",)),
    "drift": (0.05, ("distribution_drift",)),
    "bias": (0.05, ("demographic_parity", "equal_opportunity")),
    "training": (0.05, ("run_started", "run_finished", "loss_spike")),
}
ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "PERSON", "CREDIT_CARD", "IBAN_CODE")
GENESIS = "0" * 64


def _evidence(rng: random.Random, detector: str, kind: str, i: int) -> dict[str, Any]:
    if detector == "pii":
        types = rng.sample(ENTITIES, rng.randint(1, 2))
        return {"entity_types": types, "counts": {t: rng.randint(1, 3) for t in types}, "field": "prompt"}
    if detector == "drift":
        feats = ("response_chars", "prompt_chars", "latency_ms", "finish_reason")
        return {"alpha": 0.05, "drifted": [feats[0]], "window_index": i % 1000, "reference_source": "first_events",
                "features": {f: {"test": "ks", "p_value": float(f"{rng.random() ** 4:.4g}"), "drifted": f == feats[0],
                                 "effect": round(rng.random(), 3)} for f in feats}}
    if detector == "anomaly":
        metric = rng.choice(("latency_p95_ms", "error_rate", "tokens_per_request"))
        low = rng.uniform(100, 200)
        return {"metric": metric, "value": low * rng.uniform(1.6, 3.0), "expected_low": low,
                "expected_high": low * 1.4, "score": rng.uniform(4, 9), "interval_s": 60, "requests": 120}
    if detector == "bias":
        groups = {g: {"n": 200, "rate": r, "ci": [r - 0.06, r + 0.06]} for g, r in
                  (("18-25", rng.uniform(.3, .5)), ("26-40", rng.uniform(.5, .7)), ("41-65", rng.uniform(.5, .7)))}
        return {"outcome_kind": "refusal", "attribute": "age_band", "metric": kind, "groups": groups,
                "p_value": 0.001, "p_value_adjusted": 0.004}
    if detector == "training":
        return {"run_id": f"run-{i % 500}", "output_version": "v2", "status": "finished"}
    return {"rule": kind, "value": rng.randint(1, 10_000)}


def _findings(n: int, days: int, now: datetime, seed: int = 3) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(seed)
    names = list(DETECTORS)
    weights = [DETECTORS[d][0] for d in names]
    span = days * 86400
    for i in range(n):
        detector = rng.choices(names, weights)[0]
        kind = rng.choice(DETECTORS[detector][1])
        tenant, model = rng.choice(TENANTS), rng.choice(MODELS)
        at = now - timedelta(seconds=rng.random() * span)
        windowed = detector in ("drift", "anomaly", "bias")
        ev = _evidence(rng, detector, kind, i)
        yield (f"f{i:09d}", detector, kind, tenant, model, rng.choice(VERSIONS), rng.choices(range(5), (2, 3, 3, 2, 1))[0],
               round(rng.random(), 4), f"{detector} {kind} on {model} (#{i})", json.dumps(ev),
               None if windowed else f"ev-{i:09d}", at - timedelta(minutes=5) if windowed else None,
               at if windowed else None, 200 if windowed else None, None, at, at)


def _audit(n: int, days: int, now: datetime) -> Iterator[tuple[Any, ...]]:
    from governance.audit import chain_digest, content_digest, entry_content

    rng = random.Random(5)
    start = now - timedelta(days=days)
    step = days * 86400 / n
    prev = GENESIS
    actions = ("alert.acknowledged", "alert.resolved", "silence.created", "alias.switched", "job.requested",
               "job.approved", "key.created", "console.signed_in")
    for seq in range(1, n + 1):
        at = start + timedelta(seconds=seq * step)
        action, tenant = rng.choice(actions), rng.choice([*TENANTS, None])
        actor = f"key:{rng.randrange(40):08x} (person {rng.randrange(40)})"
        target = f"obj-{rng.randrange(100_000)}"
        content = entry_content(seq=seq, at=at, actor=actor, action=action, tenant=tenant,
                                target_type=action.split(".")[0], target_id=target, before={"status": "triggered"},
                                after={"status": "done"})
        ch = content_digest(content)
        h = chain_digest(prev, ch)
        yield seq, at, actor, action, tenant, action.split(".")[0], target, content, prev, ch, h
        prev = h


def load(url: str, findings: int, audit_entries: int, days: int) -> dict[str, float]:
    """COPY the whole store and count the findings into their rollups; returns seconds per part."""
    import psycopg

    from store import rollups
    from store.db import make_engine

    now = datetime.now(UTC)
    took: dict[str, float] = {}
    rng = random.Random(9)
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        t0 = time.perf_counter()
        with cur.copy("COPY findings (finding_id, detector, kind, tenant, model, version, severity, score, summary, "
                      "evidence, event_id, window_start, window_end, window_n, user_hash, occurred_at, recorded_at) "
                      "FROM STDIN") as copy:
            for row in _findings(findings, days, now):
                copy.write_row(row)
        took["findings"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        alerts, decisions = [], []
        for a in range(5000):
            tenant, model = TENANTS[a % 5], MODELS[(a // 5) % 10]
            key = f"rule:{tenant}:{model}:error_status:{a}"
            first = now - timedelta(seconds=rng.random() * days * 86400)
            last = min(now, first + timedelta(hours=rng.random() * 48))
            status = rng.choices(("triggered", "acknowledged", "resolved"), (1, 1, 8))[0]
            aid = str(uuid.uuid5(uuid.NAMESPACE_URL, key))
            alerts.append((aid, key, tenant, model, rng.choices(range(5), (1, 2, 3, 3, 1))[0], status,
                           f"error responses of {model}", "webhook:ml-ops", "rule-error-status", 20, f"d{a}-19",
                           first, last))
            for d in range(20):
                ids = [f"f{rng.randrange(findings):09d}" for _ in range(2)]
                decisions.append((f"d{a}-{d}", "rule-error-status", 1, "enforce", "alert", tenant, model, "v1", 3,
                                  "errors", "rule", key, "webhook:ml-ops", json.dumps(ids), json.dumps([]),
                                  first + (last - first) * d / 20, first + (last - first) * d / 20))
        with cur.copy("COPY alerts (alert_id, dedup_key, tenant, model, severity, status, summary, route, policy_id, "
                      "count, last_decision_id, first_seen, last_seen) FROM STDIN") as copy:
            for row in alerts:
                copy.write_row(row)
        with cur.copy("COPY decisions (decision_id, policy_id, policy_version, mode, action, tenant, model, version, "
                      "severity, summary, detector, dedup_key, route, finding_ids, tags, created_at, recorded_at) "
                      "FROM STDIN") as copy:
            for row in decisions:
                copy.write_row(row)
        with cur.copy("COPY dead_letters (dlq_id, code, reason, source_topic, tenant, original_size, original_sha256, "
                      "received_at) FROM STDIN") as copy:
            for i in range(10_000):
                copy.write_row((f"dl{i}", rng.choice(("malformed_json", "validation_error", "schema_version")),
                                "refused", "warden.inference", rng.choice([*TENANTS, None]), 120, "0" * 64,
                                now - timedelta(seconds=rng.random() * days * 86400)))
        with cur.copy("COPY jobs (job_id, kind, tenant, model, state, approval, requested_by, attempt, seq, progress, "
                      "result, spec, created_at, updated_at) FROM STDIN") as copy:
            for i in range(2000):
                at = now - timedelta(seconds=rng.random() * days * 86400)
                state = rng.choice(("awaiting_approval", "succeeded", "failed", "running", "cancelled"))
                copy.write_row((f"job-{i}", rng.choice(("retrain", "evaluate", "rollback")), TENANTS[i % 5],
                                MODELS[i % 10], state, "required", "policy:drift-retrain", 1, 3, 1.0, json.dumps({}),
                                json.dumps({"reason": "drift"}), at, at))
        took["alerts_decisions_jobs"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        head_hash, head_at = GENESIS, now
        with cur.copy("COPY audit_log (seq, at, actor, action, tenant, target_type, target_id, content, prev_hash, "
                      "content_hash, hash) FROM STDIN") as copy:
            for row in _audit(audit_entries, days, now - timedelta(minutes=1)):
                copy.write_row(row)
                head_hash, head_at = row[-1], row[1]
        cur.execute("UPDATE audit_head SET seq = %s, hash = %s, at = %s WHERE id = 1", (audit_entries, head_hash, head_at))
        took["audit"] = time.perf_counter() - t0
        conn.commit()
    t0 = time.perf_counter()  # the findings went in by COPY: count them into the rollups as migration 0009 does
    engine = make_engine(url)
    with engine.begin() as sa_conn:
        rollups.recount(sa_conn)
    engine.dispose()
    took["rollups"] = time.perf_counter() - t0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return took


def registry_and_keys(engine: Any) -> dict[str, str]:
    """A registry with versions and alias history for every model, and the keys the bench signs in with."""
    from sqlmodel import Session

    from governance import keys, registry

    with Session(engine, expire_on_commit=False) as s:
        for tenant in TENANTS:
            for model in MODELS:
                for v in VERSIONS:
                    registry.register_version(s, tenant=tenant, model=model, version=v, artifact_uri=f"s3://{model}/{v}",
                                              actor="bench", metrics={"accuracy": 0.9})
                    registry.switch_alias(s, tenant=tenant, model=model, alias="production", version=v, actor="bench",
                                          reason="release")
        out = {role: keys.create_key(s, role=role, tenants=[TENANTS[0]], actor="bench", name=f"bench {role}").secret
               for role in ("operator", "auditor")}
        s.commit()
    return out


@contextlib.contextmanager
def serve(url: str, admin_key: str, bootstrap: str) -> Iterator[str]:
    """The real app with its lifespan (producer, consumer, dispatcher) on uvicorn in a thread."""
    from api.app import create_app
    from bench.api import _free_port, run_in_thread
    from warden.settings import Settings

    port = _free_port()
    app = create_app(Settings(admin_key=admin_key, database_url=url, kafka_bootstrap=bootstrap, api_port=port,
                              governance_group=f"bench-{uuid.uuid4().hex[:6]}").api_config(), consume=True)
    with run_in_thread(app, port, start_timeout_s=120, stop_timeout_s=20) as base:
        yield base


def _session(base: str, key: str) -> Any:
    import httpx

    client = httpx.Client(base_url=base, timeout=60)
    pre = re.search(r'name="pre" value="([^"]+)"', client.get("/console/signin").text)
    assert pre
    r = client.post("/console/signin", data={"key": key, "pre": pre.group(1)})
    assert r.status_code in (200, 303), r.text[:300]
    return client


def pages(client: Any, tenant: str | None) -> dict[str, list[str]]:
    """The pages to time (several variants each), found by following the console's own links."""
    alerts = client.get("/console/alerts").text
    alert_ids = re.findall(r'href="/console/alerts/([^"?/]+)"', alerts)[:5]
    findings = client.get("/console/findings").text
    finding_ids = re.findall(r'href="/console/findings/([^"?/]+)"', findings)[:5]
    event_ids = re.findall(r'event_id=([^"&]+)"', findings)[:5]
    cursor = re.search(r'cursor=([^"&]+)"', findings)
    t = tenant or TENANTS[1]
    out = {
        "overview 7d": ["/console"], "overview 30d": ["/console?period=30d"],
        "alerts": ["/console/alerts", "/console/alerts?status=triggered&severity=high", f"/console/alerts?tenant={t}"],
        "alert": [f"/console/alerts/{a}" for a in alert_ids],
        "findings": ["/console/findings", f"/console/findings?tenant={t}&detector=drift&severity=high",
                     f"/console/findings?model={MODELS[3]}&version=v2", "/console/findings?severity=critical"],
        "findings page 2": [f"/console/findings?cursor={cursor.group(1)}"] if cursor else [],
        "findings by event": [f"/console/findings?event_id={e}" for e in event_ids],
        "finding": [f"/console/findings/{f}" for f in finding_ids],
        "models": ["/console/models"],
        "model": [f"/console/models/{t}/{m}" for m in MODELS[:4]],
        "jobs": ["/console/jobs", "/console/jobs?state=failed"],
        "reports form": ["/console/reports"],
    }
    if tenant is None:  # keys: admins and auditors only
        out["keys"] = ["/console/keys"]
    return {k: v for k, v in out.items() if v}


def audit_pages(tenant: str | None = None) -> dict[str, list[str]]:
    return {"audit": ["/console/audit", "/console/audit?action=alert.resolved", f"/console/audit?tenant={tenant or TENANTS[2]}"],
            "audit verify (entries since checkpoint)": ["/console/audit?verify=1"]}


def time_full_verification(client: Any, repeats: int) -> dict[str, dict[str, float]]:
    """The audit page's "Full verification" form: a POST that walks the whole chain (an explicit action,
    not a page); timed up to its redirect."""
    lat = []
    for _ in range(repeats):
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/console/audit").text)
        assert csrf
        t0 = time.perf_counter()
        r = client.post("/console/audit/verify", data={"csrf_token": csrf.group(1)}, follow_redirects=False)
        lat.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 303, (r.status_code, r.text[:300])
    lat.sort()
    return {"audit full verification (POST)": {"n": len(lat), "p50": statistics.median(lat), "p99": lat[-1]}}


def time_pages(client: Any, plan: dict[str, list[str]], repeats: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, urls in plan.items():
        for url in urls:  # warm-up: plans, caches, connection pool
            r = client.get(url)
            assert r.status_code == 200, (url, r.status_code, r.text[:300])
        lat = []
        for i in range(repeats):
            url = urls[i % len(urls)]
            t0 = time.perf_counter()
            r = client.get(url)
            lat.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 200, (url, r.status_code)
        lat.sort()
        out[name] = {"n": len(lat), "p50": statistics.median(lat),
                     "p99": lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))]}
    return out


def _print(title: str, stats: dict[str, dict[str, float]]) -> None:
    print(title)
    for name, s in stats.items():
        flag = "" if s["p99"] <= 300 else "   > 300 ms"
        print(f"  {name:<38} p50 {s['p50']:7.1f} ms   p99 {s['p99']:7.1f} ms   (n={s['n']}){flag}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--findings", type=int, default=1_000_000)
    parser.add_argument("--audit", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--postgres-url", default=os.environ.get("WARDEN_BENCH_POSTGRES_URL"))
    parser.add_argument("--no-kafka", action="store_true", help="no broker: the overview reports it down")
    args = parser.parse_args()

    from bench.api import scratch_database

    broker = None
    if not args.no_kafka:
        from tests.support.kafka import start_kafka

        broker = start_kafka()
    try:
        with scratch_database(args.postgres_url) as url:
            _run(args, url, broker.bootstrap if broker else "127.0.0.1:1")
    finally:
        if broker is not None:
            broker.stop()


def _run(args: argparse.Namespace, url: str, bootstrap: str) -> None:
    """Load the data into ``url``, serve the console on it and time its pages."""
    from store.db import init_db, make_engine

    engine = make_engine(url)
    init_db(engine)
    took = load(url, args.findings, args.audit, args.days)
    scoped = registry_and_keys(engine)
    print(f"loaded {args.findings:,} findings over {args.days} days, 5,000 alerts, 100,000 decisions, "
          f"10,000 dead letters, 2,000 jobs, {args.audit:,} audit entries: "
          + ", ".join(f"{k} {v:.0f}s" for k, v in took.items()))
    admin_key = "bench-admin-" + uuid.uuid4().hex
    with serve(url, admin_key, bootstrap) as base:
        admin = _session(base, admin_key)
        _print(f"admin over every tenant ({args.requests} timed requests per page, HTTP wall time):",
               time_pages(admin, {**pages(admin, None), **audit_pages()}, args.requests))
        operator = _session(base, scoped["operator"])
        _print(f"operator scoped to {TENANTS[0]}:", time_pages(operator, pages(operator, TENANTS[0]), args.requests))
        auditor = _session(base, scoped["auditor"])
        _print(f"auditor scoped to {TENANTS[0]}:", time_pages(auditor, audit_pages(TENANTS[0]), args.requests))
        _print("whole-chain verification (an action: POST, redirect not followed):",
               time_full_verification(auditor, max(3, args.requests // 6)))
        report = f"/console/reports?tenant={TENANTS[0]}&format=html"
        _print("compliance report (HTML, 30 days of one tenant; an export rather than a page):",
               time_pages(auditor, {"report 30d": [report]}, max(3, args.requests // 6)))
    engine.dispose()


if __name__ == "__main__":
    main()
