"""The rollups of the findings (store.rollups) on SQLite and PostgreSQL: ingest counts each finding once
(a batch delivered again, or twice at the same time, adds nothing), retention and erasure keep them in
step, and every period's totals equal a count of the findings themselves."""

from __future__ import annotations

import concurrent.futures
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from api.console import queries
from detectors.finding import Finding, Subject
from governance import retention
from governance.alerting import AlertingConfig
from governance.ingest import persist_batch
from governance.reports import SEVERITY, build_report
from store import rollups
from store.db import init_db, make_engine
from store.models import FindingRow

pytestmark = pytest.mark.postgres
ALERTING = AlertingConfig()
PII_KEY = "k" * 32
NOW = datetime(2026, 3, 10, 14, 37, 21, tzinfo=UTC)
ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "PERSON")


def _findings(n: int, seed: int = 1, days: float = 6.0) -> list[Finding]:
    """Findings of two tenants, three models, several detectors and kinds, over ``days`` before NOW."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        detector = rng.choice(("pii", "pii", "rule", "drift", "security"))
        kind = {"pii": "pii_detected", "rule": rng.choice(("error_status", "latency_slo")), "drift": "distribution_drift",
                "security": "prompt_injection"}[detector]
        evidence: dict[str, Any] = {"rule": kind}
        if detector == "pii":
            types = rng.sample(ENTITIES, rng.randint(1, 2))
            evidence = {"entity_types": types, "counts": {t: rng.randint(1, 3) for t in types}}
            if i % 7 == 0:  # an older shape: entity types without counts
                evidence = {"entity_types": types}
            if i % 11 == 0:
                evidence["user_hash"] = retention.user_hash(PII_KEY, "jane")
        out.append(Finding.create(
            detector=detector, kind=kind, subject=Subject(tenant=rng.choice(("acme", "globex")),
                                                          model=rng.choice(("bot", "ranker", "chat"))),
            severity=rng.choice(("low", "medium", "high")), score=0.5, summary=f"{detector} {i}", evidence=evidence,
            event_id=f"e{i}", occurred_at=NOW - timedelta(seconds=rng.random() * days * 86400), key=f"f{seed}-{i}"))
    return out


def _tables(engine: Any) -> dict[str, set[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {r.table.name: {tuple(row) for row in conn.execute(select(r.table))} for r in rollups.ROLLUPS}


def _recounted(engine: Any) -> dict[str, set[tuple[Any, ...]]]:
    """What the rollups would hold if rebuilt from the findings now (the rebuild is rolled back)."""
    with engine.connect() as conn:
        tx = conn.begin()
        rollups.recount(conn)
        out = {r.table.name: {tuple(row) for row in conn.execute(select(r.table))} for r in rollups.ROLLUPS}
        tx.rollback()
    return out


def _direct(engine: Any, start: datetime, end: datetime, tenant: str) -> tuple[Counter[Any], Counter[Any]]:
    """Counts by (model, detector, kind, severity name) and PII entities by (model, type), read from the findings."""
    by: Counter[Any] = Counter()
    entities: Counter[Any] = Counter()
    with engine.connect() as conn:
        for f in conn.execute(select(FindingRow.__table__).where(  # type: ignore[attr-defined]
                FindingRow.__table__.c.tenant == tenant, FindingRow.__table__.c.occurred_at >= start,  # type: ignore[attr-defined]
                FindingRow.__table__.c.occurred_at < end)):  # type: ignore[attr-defined]
            by[(f.model, f.detector, f.kind, SEVERITY[f.severity])] += 1
            if f.detector == "pii":
                for etype, n in rollups.entity_counts(f.evidence).items():
                    entities[(f.model, etype)] += n
    return by, entities


def test_ingest_counts_each_new_finding_once_and_redelivery_adds_nothing(database_url: str) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    batch = _findings(300)
    assert persist_batch(engine, batch[:200], alerting=ALERTING).findings == 200
    assert persist_batch(engine, batch[100:], alerting=ALERTING).findings == 100  # half of it seen before
    assert persist_batch(engine, batch, alerting=ALERTING).findings == 0  # delivered again
    assert persist_batch(engine, batch[:5] + batch[:5], alerting=ALERTING).findings == 0  # repeated in one batch
    stored = _tables(engine)
    assert stored == _recounted(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT sum(n) FROM finding_counts")).scalar() == 300
        assert conn.execute(text("SELECT sum(n) FROM finding_counts_daily")).scalar() == 300
        entities = sum(sum(rollups.entity_counts(f.evidence).values()) for f in batch if f.detector == "pii")
        assert conn.execute(text("SELECT sum(n) FROM pii_entity_counts")).scalar() == entities > 0
    # a finding is counted in the hour and the day its occurred_at falls in
    f = batch[0]
    hour = rollups.bucket_of(f.occurred_at, 3600)
    with engine.connect() as conn:
        n = conn.execute(text("SELECT n FROM finding_counts WHERE tenant = :t AND bucket = :b AND detector = :d "
                              "AND severity = :s"), {"t": f.subject.tenant, "b": hour, "d": f.detector,
                                                      "s": int(f.severity)}).scalar()
    assert n == sum(1 for g in batch if g.subject.tenant == f.subject.tenant and g.detector == f.detector
                    and g.severity == f.severity and rollups.bucket_of(g.occurred_at, 3600) == hour)
    engine.dispose()


def test_the_same_batch_persisted_concurrently_is_counted_once(database_url: str) -> None:
    """Two consumers given the same records (a rebalance): the store keeps each finding once, the rollups too."""
    engine = make_engine(database_url)
    init_db(engine)
    batch = _findings(200, seed=2, days=0.5)  # few buckets: the writers contend for the same rows

    def persist(i: int) -> int:
        return persist_batch(engine, batch[i % 2 * 50:], alerting=ALERTING).findings

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        stored = sum(pool.map(persist, range(8)))
    assert stored == 200
    assert _tables(engine) == _recounted(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT sum(n) FROM finding_counts")).scalar() == 200
    engine.dispose()


def test_purge_and_erasure_keep_the_rollups_in_step(database_url: str) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    batch = _findings(400, seed=3, days=10)
    persist_batch(engine, batch, alerting=ALERTING)
    # retention 4 days: the cutoff falls inside an hour and a day (NOW is 14:37:21)
    done = retention.purge(engine, retention.Retention(findings_days=4), actor="test", now=NOW)
    cutoff = NOW - timedelta(days=4)
    assert done["deleted"]["findings"] == sum(1 for f in batch if f.occurred_at < cutoff) > 0
    assert _tables(engine) == _recounted(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT min(bucket) FROM finding_counts")).scalar() >= rollups.bucket_of(cutoff, 3600)
        assert conn.execute(text("SELECT count(*) FROM finding_counts_daily WHERE n <= 0")).scalar() == 0
    # erasure of one user's findings (one tenant, then all)
    erased = retention.erase_user(engine, pii_key=PII_KEY, user_id="jane", actor="test", tenants=["acme"])
    assert erased["deleted"]["findings"] > 0
    assert _tables(engine) == _recounted(engine)
    retention.erase_user(engine, pii_key=PII_KEY, user_id="jane", actor="test")
    assert _tables(engine) == _recounted(engine)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(FindingRow.__table__)).scalar() == \
            conn.execute(text("SELECT sum(n) FROM finding_counts")).scalar()  # type: ignore[attr-defined]
    engine.dispose()


def test_totals_of_any_period_equal_a_count_of_the_findings(database_url: str) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    persist_batch(engine, _findings(500, seed=4, days=9), alerting=ALERTING)
    periods = [(NOW - timedelta(days=30), NOW + timedelta(hours=1)),  # everything
               (NOW - timedelta(days=5, minutes=13), NOW - timedelta(hours=7, seconds=5)),  # ragged ends
               (datetime(2026, 3, 5, tzinfo=UTC), datetime(2026, 3, 8, tzinfo=UTC)),  # whole days
               (NOW - timedelta(hours=20), NOW - timedelta(hours=3)),  # no whole day inside
               (NOW - timedelta(minutes=50), NOW - timedelta(minutes=10))]  # inside one hour
    for start, end in periods:
        for tenant in ("acme", "globex"):
            by, entities = _direct(engine, start, end, tenant)
            report = build_report(engine, tenant, start, end)
            got = Counter({(r["model"], det, r["kind"], r["severity"]): r["count"]
                           for det, block in report["findings"].items() for r in block["by"]})
            assert got == by, (start, end, tenant)
            assert report["pii"]["findings"] == sum(n for k, n in by.items() if k[1] == "pii")
            assert Counter({(m, t): n for m, ents in report["pii"]["entities_by_model"].items()
                            for t, n in ents.items()}) == entities
    engine.dispose()


def test_the_overview_series_sums_the_hours(database_url: str) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    batch = _findings(500, seed=5, days=8)
    persist_batch(engine, batch, alerting=ALERTING)
    for period, (span, width) in queries.PERIODS.items():
        w = int(width.total_seconds())
        for tenants in (None, ["acme"]):
            series, totals = queries.findings_over_time(engine, tenants, period, now=NOW)
            first = rollups.bucket_of(NOW - span, w)
            expected: Counter[tuple[str, int]] = Counter(
                (f.detector, rollups.bucket_of(f.occurred_at, w)) for f in batch
                if (tenants is None or f.subject.tenant in tenants) and rollups.bucket_of(f.occurred_at, w) >= first)
            for det, points in series.items():
                assert [int(at.timestamp()) for at, _ in points] == list(range(first, rollups.bucket_of(NOW, w) + w, w))
                assert {int(at.timestamp()): n for at, n in points if n} == \
                    {b: n for (d, b), n in expected.items() if d == det}, (period, det)
            assert totals == {d: sum(n for (dd, _), n in expected.items() if dd == d) for d in {d for d, _ in expected}}
    engine.dispose()
