"""Persisting what the stream publishes: findings, decisions, dead letters — and the alerts they raise.

One transaction per batch: the records (idempotent by id), the rollups of the findings that were new
(:mod:`store.rollups`), the alerts the fresh decisions fold into, and the notifications those alerts queue
in the outbox (so a commit holds all of them or none).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from contracts.dead_letter import DeadLetter
from contracts.decision import Decision, DecisionAction
from detectors.finding import Finding, stable_id
from governance.alerting.lifecycle import enqueue_notifications
from governance.alerting.routes import AlertingConfig
from store import rollups
from store.models import AlertRow, DeadLetterRow, DecisionRow, FindingRow
from store.repository import dead_letter_row, decision_row, finding_row, insert_new, upsert_statement


@dataclass(slots=True)
class Persisted:
    """How many records of a batch were new (the rest were duplicates)."""

    findings: int = 0
    decisions: int = 0
    dead_letters: int = 0
    alerts_touched: int = 0


def touch_alerts(session: Session, engine: Engine, decisions: Sequence[Decision]) -> int:
    """Fold fresh enforce-mode alert decisions into their alerts with one multi-row upsert.

    Decisions of one batch that share an alert are folded first (an upsert cannot touch a row
    twice): the count grows by their number, the latest decision gives summary and severity.
    """
    folded: dict[str, dict[str, Any]] = {}
    touched = 0
    for d in decisions:
        if d.action is not DecisionAction.alert or d.mode != "enforce":
            continue
        touched += 1
        key = d.dedup_key or d.decision_id
        alert_id = stable_id("alert", d.subject.tenant, key)
        row = folded.get(alert_id)
        if row is None:
            folded[alert_id] = {
                "alert_id": alert_id, "dedup_key": key, "tenant": d.subject.tenant, "model": d.subject.model,
                "severity": int(d.severity), "status": "triggered", "summary": d.summary, "route": d.route,
                "policy_id": d.policy_id, "count": 1, "last_decision_id": d.decision_id,
                "first_seen": d.created_at, "last_seen": d.created_at,
            }
        else:
            row.update(count=row["count"] + 1, severity=int(d.severity), summary=d.summary,
                       last_decision_id=d.decision_id, first_seen=min(row["first_seen"], d.created_at),
                       last_seen=max(row["last_seen"], d.created_at))
    if folded:
        table = AlertRow.__table__  # type: ignore[attr-defined]  # SQLModel leaves the mapped __table__ undeclared
        stmt = upsert_statement(engine, table)
        session.connection().execute(stmt.on_conflict_do_update(
            index_elements=["alert_id"],
            set_={
                "count": table.c.count + stmt.excluded.count,
                "last_decision_id": stmt.excluded.last_decision_id,
                "summary": stmt.excluded.summary,
                "severity": stmt.excluded.severity,
                "last_seen": stmt.excluded.last_seen,
            },
        ), list(folded.values()))
    return touched


def persist_batch(
    engine: Engine,
    findings: Iterable[Finding] = (),
    decisions: Iterable[Decision] = (),
    dead_letters: Iterable[DeadLetter] = (),
    *,
    alerting: AlertingConfig,
) -> Persisted:
    """Store a batch in one transaction; duplicates (same ids) are ignored, and only the findings stored for
    the first time are counted in the rollups. Fresh alert decisions notify the destinations ``alerting``
    routes them to."""
    findings, decisions, dead_letters = list(findings), list(decisions), list(dead_letters)
    out = Persisted()
    with Session(engine) as session:
        rows = {r["finding_id"]: r for r in map(finding_row, findings)}  # the last of a repeated id, as stored
        new_findings = insert_new(session, engine, FindingRow, "finding_id", list(rows.values()))
        rollups.add(session.connection(), [rows[i] for i in sorted(new_findings)])
        out.findings = len(new_findings)
        new_ids = insert_new(session, engine, DecisionRow, "decision_id", [decision_row(d) for d in decisions])
        out.decisions = len(new_ids)
        fresh: list[Decision] = []  # the newly stored decisions, each id once, in batch order
        seen: set[str] = set()
        for d in decisions:
            if d.decision_id in new_ids and d.decision_id not in seen:
                seen.add(d.decision_id)
                fresh.append(d)
        out.alerts_touched = touch_alerts(session, engine, fresh)
        enqueue_notifications(session, fresh, config=alerting)  # transactional outbox: notifications commit with the alerts
        out.dead_letters = len(
            insert_new(session, engine, DeadLetterRow, "dlq_id", [dead_letter_row(d) for d in dead_letters])
        )
        session.commit()
    return out
