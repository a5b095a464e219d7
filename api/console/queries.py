"""Read-side questions the console's pages ask of the store (aggregates the JSON API does not serve).

Every function takes ``tenants`` — the caller's scope from :meth:`api.auth.Principal.scope` (None: every
tenant) — and applies it in SQL. Lists and acts that the API already serves are not here: the console
calls the API's own route functions for those.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, union
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from detectors.finding import Severity
from store.models import (
    AlertRow,
    DeadLetterRow,
    DecisionRow,
    FindingCountRow,
    FindingRow,
    JobRow,
    RegisteredModelRow,
    to_utc,
)
from store.rollups import bucket_of

#: the overview's periods: name → (span, bucket width)
PERIODS: dict[str, tuple[timedelta, timedelta]] = {
    "24h": (timedelta(hours=24), timedelta(hours=1)),
    "7d": (timedelta(days=7), timedelta(hours=6)),
    "30d": (timedelta(days=30), timedelta(days=1)),
}
OPEN = ("triggered", "acknowledged")


def _scoped(col: Any, tenants: Sequence[str] | None) -> list[Any]:
    return [] if tenants is None else [col.in_(list(tenants))]


def open_alerts_by(engine: Engine, tenants: Sequence[str] | None) -> dict[str, Any]:
    """Open (triggered or acknowledged) alerts counted by severity and by tenant × severity."""
    stmt = (select(col(AlertRow.tenant), col(AlertRow.severity), col(AlertRow.status), func.count())
            .where(col(AlertRow.status).in_(OPEN), *_scoped(col(AlertRow.tenant), tenants))
            .group_by(col(AlertRow.tenant), col(AlertRow.severity), col(AlertRow.status)))
    by_sev: dict[str, int] = {s.name: 0 for s in reversed(Severity)}
    by_tenant: dict[str, dict[str, int]] = defaultdict(lambda: {s.name: 0 for s in reversed(Severity)})
    unacked = 0
    with Session(engine) as session:
        for row in session.execute(stmt):
            tenant, name, status, n = str(row[0]), Severity(int(row[1])).name, str(row[2]), int(row[3])
            by_sev[name] += n
            by_tenant[tenant][name] += n
            unacked += n if status == "triggered" else 0
    return {"by_severity": by_sev, "by_tenant": dict(sorted(by_tenant.items())), "total": sum(by_sev.values()),
            "unacknowledged": unacked}


def findings_over_time(engine: Engine, tenants: Sequence[str] | None, period: str,
                       now: datetime | None = None) -> tuple[dict[str, list[tuple[datetime, int]]], dict[str, int]]:
    """Findings per detector per bucket over ``period`` (a key of :data:`PERIODS`): the series (every
    bucket, zeros included) and each detector's total. Read from the hourly rollup (``finding_counts``,
    :mod:`store.rollups`): a bucket of 6 hours or a day is the sum of its hours; the first bucket is the
    whole bucket that ``now - span`` falls in, the last the one ``now`` falls in."""
    span, width = PERIODS[period]
    now = now or datetime.now(UTC)
    w = int(width.total_seconds())
    first, last = bucket_of(now - span, w), bucket_of(now, w)
    table = FindingCountRow.__table__  # type: ignore[attr-defined]
    bucket = (table.c.bucket // w * w).label("b")
    stmt = (select(table.c.detector, bucket, func.sum(table.c.n))
            .where(table.c.bucket >= first, table.c.bucket < last + w, *_scoped(table.c.tenant, tenants))
            .group_by(table.c.detector, bucket))
    counts: dict[str, dict[int, int]] = defaultdict(dict)
    with engine.connect() as conn:
        for row in conn.execute(stmt):
            counts[str(row[0])][int(row[1])] = int(row[2])
    series = {d: [(datetime.fromtimestamp(b, UTC), by.get(b, 0)) for b in range(first, last + w, w)]
              for d, by in sorted(counts.items())}
    totals = {d: sum(by.values()) for d, by in sorted(counts.items())}
    return series, totals


def dead_letters_since(engine: Engine, tenants: Sequence[str] | None, since: datetime) -> dict[str, int]:
    """Dead letters received since ``since``, by refusal code (a scoped key sees its tenants' only)."""
    stmt = (select(col(DeadLetterRow.code), func.count()).where(col(DeadLetterRow.received_at) >= since,
                                                           *_scoped(col(DeadLetterRow.tenant), tenants))
            .group_by(col(DeadLetterRow.code)).order_by(func.count().desc()))
    with Session(engine) as session:
        return {str(row[0]): int(row[1]) for row in session.execute(stmt)}


def behind_alert(engine: Engine, alert: AlertRow, limit: int = 50) -> tuple[list[DecisionRow], list[FindingRow]]:
    """The latest decisions folded into ``alert`` and the findings they name (newest first)."""
    with Session(engine) as session:
        decisions: list[DecisionRow] = list(session.execute(
            select(DecisionRow).where(col(DecisionRow.tenant) == alert.tenant, col(DecisionRow.dedup_key) == alert.dedup_key)
            .order_by(col(DecisionRow.created_at).desc()).limit(20)).scalars())
        ids = list(dict.fromkeys(i for d in decisions for i in d.finding_ids))[:limit]
        findings: list[FindingRow] = list(session.execute(
            select(FindingRow).where(col(FindingRow.finding_id).in_(ids), col(FindingRow.tenant) == alert.tenant)
            .order_by(col(FindingRow.occurred_at).desc())).scalars()) if ids else []
    return decisions, findings


def decisions_of_finding(engine: Engine, finding: FindingRow) -> list[DecisionRow]:
    """The decisions that name ``finding`` (searched among its tenant and model's decisions from its time
    on: a decision is made when the finding arrives, or when an aggregate window closes after it)."""
    at = to_utc(finding.occurred_at) or datetime.now(UTC)
    with Session(engine) as session:
        rows: list[DecisionRow] = list(session.execute(
            select(DecisionRow).where(col(DecisionRow.tenant) == finding.tenant, col(DecisionRow.model) == finding.model,
                                      col(DecisionRow.created_at) >= at - timedelta(minutes=5),
                                      col(DecisionRow.created_at) <= at + timedelta(days=2))
            .order_by(col(DecisionRow.created_at)).limit(5000)).scalars())
        return [d for d in rows if finding.finding_id in (d.finding_ids or [])]


def known_models(engine: Engine, tenants: Sequence[str] | None) -> list[tuple[str, str, bool]]:
    """(tenant, model, registered) of the models the registry, alerts and jobs know, sorted."""
    reg: Any = select(col(RegisteredModelRow.tenant), col(RegisteredModelRow.name).label("model")).where(
        *_scoped(col(RegisteredModelRow.tenant), tenants))
    alerts = select(col(AlertRow.tenant), col(AlertRow.model)).where(*_scoped(col(AlertRow.tenant), tenants)).distinct()
    jobs = select(col(JobRow.tenant), col(JobRow.model)).where(*_scoped(col(JobRow.tenant), tenants)).distinct()
    with Session(engine) as session:
        registered = {(str(r[0]), str(r[1])) for r in session.execute(reg)}
        every = {(str(r[0]), str(r[1])) for r in session.execute(union(reg, alerts, jobs))}
    return [(t, m, (t, m) in registered) for t, m in sorted(every)]


@dataclass(frozen=True, slots=True)
class FindingView:
    """The columns of a finding a chart or a table shows, and only the ``evidence`` fields asked for."""

    finding_id: str
    kind: str
    version: str | None
    severity: int
    summary: str
    occurred_at: datetime
    window_end: datetime | None
    evidence: dict[str, Any]


def model_findings(engine: Engine, tenant: str, model: str, detector: str, *, fields: Sequence[str],
                   kinds: Sequence[str] | None = None, version: str | None = None,
                   limit: int = 300) -> list[FindingView]:
    """A model's latest findings of one detector (newest first), with only the evidence ``fields`` named
    (extracted in SQL: a finding's window samples and other large evidence never leave the database)."""
    extracted = [col(FindingRow.evidence)[f] for f in fields]
    stmt = select(col(FindingRow.finding_id), col(FindingRow.kind), col(FindingRow.version), col(FindingRow.severity),
                  col(FindingRow.summary), col(FindingRow.occurred_at), col(FindingRow.window_end), *extracted).where(
        col(FindingRow.tenant) == tenant, col(FindingRow.model) == model, col(FindingRow.detector) == detector)
    if kinds is not None:
        stmt = stmt.where(col(FindingRow.kind).in_(list(kinds)))
    if version is not None:
        stmt = stmt.where(col(FindingRow.version) == version)
    stmt = stmt.order_by(col(FindingRow.occurred_at).desc()).limit(limit)
    with engine.connect() as conn:
        return [FindingView(r[0], r[1], r[2], int(r[3]), r[4], to_utc(r[5]), to_utc(r[6]),  # type: ignore[arg-type]
                            {f: v for f, v in zip(fields, r[7:], strict=True) if v is not None})
                for r in conn.execute(stmt)]
