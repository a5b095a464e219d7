"""store.pg_bulk: the PostgreSQL unnest insert stores exactly what SQLAlchemy's Core insert stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlmodel import Session

from contracts.dead_letter import DeadLetter, Rejection
from detectors.finding import Finding, Subject, Window
from store.db import init_db, make_engine
from store.models import DeadLetterRow, FindingRow
from store.pg_bulk import unnest_insert
from store.repository import dead_letter_row, finding_row, upsert_statement

pytestmark = pytest.mark.postgres


def _findings(tag: str, n: int = 30) -> list[Finding]:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    return [Finding.create(
        detector="rule", kind="k", subject=Subject(tenant="t", model="m", version=None if i % 2 else "3"),
        severity="high", score=1 if i % 3 == 0 else 0.5, summary=f"s{i} ünïcode 'quoted' \"too\"",
        evidence={"a": [1, 2.5, None], "nested": {"x": "y"}, "user_hash": "h" if i % 4 == 0 else 3},
        event_id=f"{tag}-{i}", occurred_at=now - timedelta(seconds=i),
        window=Window(start=now - timedelta(hours=1), end=now, n=5) if i % 2 else None) for i in range(n)]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_unnest_insert_matches_the_core_insert_and_skips_stored_keys(database_url: str) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    table = FindingRow.__table__  # type: ignore[attr-defined]
    core_rows = [finding_row(f) for f in _findings("core")]
    bulk_rows = [finding_row(f) for f in _findings("bulk")]
    with Session(engine) as s:
        stmt = upsert_statement(engine, table).on_conflict_do_nothing(index_elements=["finding_id"]).returning(table.c.finding_id)
        s.connection().execute(stmt, core_rows)
        new = unnest_insert(s.connection(), table, bulk_rows, "finding_id")
        again = unnest_insert(s.connection(), table, bulk_rows[:10] + [finding_row(_findings("late", 31)[30])],
                              "finding_id")
        s.commit()
    assert new == {r["finding_id"] for r in bulk_rows}
    assert again == {finding_row(_findings("late", 31)[30])["finding_id"]}  # stored ones skipped, the new one kept
    with Session(engine) as s:
        stored = {r.event_id: r.model_dump() for r in s.execute(select(FindingRow)).scalars()}
    assert len(stored) == 61
    for i in range(30):
        a, b = stored[f"core-{i}"], stored[f"bulk-{i}"]
        assert b["recorded_at"] is not None  # the Python-side default was applied
        for k in a:
            if k not in ("finding_id", "event_id", "recorded_at"):
                assert a[k] == b[k], (i, k)
    # a table with an integer column named by a reserved word ("offset") and a column no row gives
    dl = DeadLetter.build(Rejection("invalid_utf8", "bad bytes"), b"\xff not json", source_topic="warden.inference",
                          partition=3, offset=42)
    with Session(engine) as s:
        assert unnest_insert(s.connection(), DeadLetterRow.__table__, [dead_letter_row(dl)], "dlq_id") == {dl.dlq_id}  # type: ignore[attr-defined]
        s.commit()
        row = s.get(DeadLetterRow, dl.dlq_id)
    assert row is not None and row.offset == 42 and row.partition == 3 and row.code == "invalid_utf8"
    engine.dispose()
