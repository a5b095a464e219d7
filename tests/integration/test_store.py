"""The governance store on SQLite and PostgreSQL: idempotent writes, alerts, pagination."""

from __future__ import annotations

import pytest

from governance.alerting import AlertingConfig
from governance.ingest import persist_batch
from store.db import init_db, make_engine
from store.models import AlertRow, DeadLetterRow, FindingRow
from store.repository import decode_cursor, page
from streams.pipeline import Pipeline
from tests.events import BAD_INPUTS, inference, raw

ALERTING = AlertingConfig()  # record only: these tests route no alert anywhere


pytestmark = pytest.mark.postgres


def _outcomes(n: int, offset: int = 0):  # type: ignore[no-untyped-def]
    p = Pipeline()
    outs = [p.process(raw(inference(f"ev-{i}", status="error")), topic="warden.inference", partition=0, offset=i)
            for i in range(offset, offset + n)]
    return [f for o in outs for f in o.findings], [d for o in outs for d in o.decisions]


def test_persist_is_idempotent_and_alerts_fold_by_dedup_key(database_url: str) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    init_db(engine)  # idempotent
    findings, decisions = _outcomes(5)
    payload, _ = BAD_INPUTS["malformed_json"]
    dead = Pipeline().process(payload, topic="warden.inference", partition=1, offset=3).dead_letter
    first = persist_batch(engine, findings, decisions, [dead], alerting=ALERTING)
    assert (first.findings, first.decisions, first.dead_letters) == (5, 5, 1)
    again = persist_batch(engine, findings + findings, decisions, [dead, dead], alerting=ALERTING)
    assert (again.findings, again.decisions, again.dead_letters, again.alerts_touched) == (0, 0, 0, 0)
    alerts = page(engine, AlertRow, time_col="last_seen", key_col="alert_id").items
    assert len(alerts) == 1 and alerts[0].count == 5 and alerts[0].status == "triggered"
    assert alerts[0].dedup_key == "rule:acme:support-bot:error_status"
    dl = page(engine, DeadLetterRow, time_col="received_at", key_col="dlq_id").items
    assert len(dl) == 1 and dl[0].code == "malformed_json" and dl[0].original_size == len(payload)
    assert len(dl[0].original_sha256) == 64
    engine.dispose()


def test_cursor_pagination_walks_every_row_once(database_url: str) -> None:
    engine = make_engine(database_url)
    init_db(engine)
    findings, _ = _outcomes(23)
    persist_batch(engine, findings, alerting=ALERTING)
    seen: list[str] = []
    cursor = None
    while True:
        pg = page(engine, FindingRow, time_col="occurred_at", key_col="finding_id", cursor=cursor, limit=5)
        seen += [r.finding_id for r in pg.items]
        if pg.next_cursor is None:
            break
        cursor = pg.next_cursor
    assert sorted(seen) == sorted(f.finding_id for f in findings)
    assert len(seen) == len(set(seen)) == 23
    only = page(engine, FindingRow, time_col="occurred_at", key_col="finding_id",
                filters=[FindingRow.event_id == "ev-7"]).items
    assert [r.event_id for r in only] == ["ev-7"]
    with pytest.raises(ValueError):
        decode_cursor("not-a-cursor")
    engine.dispose()
