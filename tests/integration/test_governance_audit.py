"""The audit trail on SQLite and PostgreSQL: entries for state changes, listing, verify, export,
and append-only enforcement in code and in the database."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import text
from sqlmodel import Session

from governance import audit
from governance.alerting import AlertingConfig
from governance.audit import verify_export_jsonl
from governance.ingest import persist_batch
from store.audit_log import AuditAppendOnlyError
from store.models import AuditRow
from streams.pipeline import Pipeline
from tests.events import inference, raw
from tests.integration.test_governance_harness import Gov, make_gov

ALERTING = AlertingConfig()  # record only: these tests route no alert anywhere


pytestmark = pytest.mark.postgres


def _changes(gov: Gov) -> None:
    """One of each audited change through the API."""
    p = Pipeline()
    outs = [p.process(raw(inference(f"a-{i}", status="error")), topic="warden.inference", partition=0, offset=i)
            for i in range(2)]
    persist_batch(gov.engine, [f for o in outs for f in o.findings], [d for o in outs for d in o.decisions], alerting=ALERTING)
    alert = gov.client.get("/v1/alerts", headers=gov.admin).json()["items"][0]["alert_id"]
    op = gov.as_("operator")
    assert gov.client.post(f"/v1/alerts/{alert}/acknowledge", headers=op, json={"reason": "on it"}).status_code == 200
    silence = {"tenant": "acme", "matchers": [{"name": "model", "value": "support-bot"}], "ends_at": "2031-01-01T00:00:00Z"}
    assert gov.client.post("/v1/silences", headers=op, json=silence).status_code == 201
    assert gov.client.post(f"/v1/alerts/{alert}/resolve", headers=op, json={"reason": "fixed"}).status_code == 200
    gov.request("POST", "/v1/registry/acme/models/bot/versions", json={"version": "v1", "artifact_uri": "s3://b/1"})
    gov.request("PUT", "/v1/registry/acme/models/bot/aliases/production", json={"version": "v1", "reason": "go"})
    gov.request("PUT", "/v1/lifecycle/retention", json={"findings_days": 30})
    gov.request("POST", "/v1/lifecycle/erasure", json={"user_id": "user-42@example.com"})
    kid = gov.request("POST", "/v1/keys", json={"role": "auditor", "tenants": ["acme"]}).json()["key_id"]
    gov.request("DELETE", f"/v1/keys/{kid}")


def test_state_changes_are_audited_with_actor_before_after(database_url: str) -> None:
    gov = make_gov(database_url, with_keys=False)
    gov.keys[("operator", "acme")] = gov.request("POST", "/v1/keys", json={"role": "operator", "tenants": ["acme"],
                                                                         "name": "ops"}).json()["key"]
    _changes(gov)
    items = gov.client.get("/v1/audit", headers=gov.admin, params={"limit": 1000}).json()["items"]
    actions = [e["action"] for e in reversed(items)]
    for expected in ("key.created", "alert.acknowledged", "silence.created", "alert.resolved", "model.created",
                     "model_version.created", "alias.switched", "settings.updated", "data.erased", "key.revoked"):
        assert expected in actions, expected
    assert [e["seq"] for e in items] == sorted((e["seq"] for e in items), reverse=True)
    ack = next(e for e in items if e["action"] == "alert.acknowledged")
    assert ack["actor"].startswith("key:") and ack["actor"].endswith("(ops)")
    assert ack["before"]["status"] == "triggered" and ack["after"]["status"] == "acknowledged"
    assert ack["after"]["reason"] == "on it" and ack["tenant"] == "acme"
    revoked = next(e for e in items if e["action"] == "key.revoked")
    assert revoked["before"]["revoked_at"] is None and revoked["after"]["revoked_at"] is not None
    # raw PII (the erased user id) and key secrets never enter the trail
    dump = json.dumps(items)
    assert "user-42@example.com" not in dump and "wdn_" not in dump
    erased = next(e for e in items if e["action"] == "data.erased")
    assert len(erased["target_id"]) == 64
    # every entry's content hash and chain hash check out, and verify agrees
    result = gov.client.get("/v1/audit/verify", headers=gov.admin).json()
    assert result["ok"] and result["checked"] == len(items) and result["head_seq"] == items[0]["seq"]
    assert result["head_hash"] == items[0]["hash"]
    gov.engine.dispose()


def test_list_filters_and_cursor_pagination(database_url: str) -> None:
    gov = make_gov(database_url, with_keys=False)
    t0 = datetime.now(UTC) - timedelta(hours=1)
    with Session(gov.engine) as s:
        for i in range(25):
            audit.append(s, actor=f"user-{i % 3}", action="job.requested" if i % 2 else "job.approved",
                         tenant="acme" if i % 5 else "globex", target_type="job", target_id=f"j{i}",
                         after={"i": i}, at=t0 + timedelta(minutes=i))
        s.commit()
    seen, cursor = [], None
    while True:
        params = {"limit": 4, "tenant": "acme", **({"cursor": cursor} if cursor else {})}
        body = gov.client.get("/v1/audit", headers=gov.admin, params=params).json()
        seen += [e["after"]["i"] for e in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [i for i in reversed(range(25)) if i % 5]
    body = gov.client.get("/v1/audit", headers=gov.admin, params={
        "action": "job.requested", "actor": "user-1", "since": (t0 + timedelta(minutes=5)).isoformat(),
        "until": (t0 + timedelta(minutes=20)).isoformat()}).json()
    assert sorted(e["after"]["i"] for e in body["items"]) == [i for i in range(5, 20) if i % 2 and i % 3 == 1]
    assert gov.client.get("/v1/audit", headers=gov.admin, params={"cursor": "x!"}).status_code == 400
    # a key over two tenants pages through both, merged newest first, and nothing of a third
    with Session(gov.engine) as s:
        for i in range(25, 40):
            audit.append(s, actor="x", action="job.finished", tenant=("acme", "globex", "initech")[i % 3],
                         target_type="job", target_id=f"j{i}", after={"i": i})
        s.commit()
    two = gov.auth(gov.request("POST", "/v1/keys", json={"role": "auditor", "tenants": ["acme", "globex"]}).json()["key"])
    got, cursor = [], None
    while True:
        body = gov.client.get("/v1/audit", headers=two, params={"limit": 3, "action": "job.finished",
                                                                **({"cursor": cursor} if cursor else {})}).json()
        got += [e["after"]["i"] for e in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert got == [i for i in reversed(range(25, 40)) if i % 3 != 2]
    assert gov.client.get("/v1/audit", headers=two, params={"tenant": "initech"}).status_code == 403
    one = gov.client.get("/v1/audit", headers=gov.admin, params={"target_type": "job", "target_id": "j7"}).json()
    assert [e["target_id"] for e in one["items"]] == ["j7"]
    gov.engine.dispose()


def test_export_proves_a_period_complete_and_redacts_other_tenants(database_url: str) -> None:
    gov = make_gov(database_url, with_keys=False)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with Session(gov.engine) as s:
        for i in range(30):
            audit.append(s, actor="ops", action="settings.updated", tenant=("acme", "globex")[i % 2], target_type="setting",
                         target_id=f"s{i}", before={"v": i - 1}, after={"v": i, "note": "é,\"quoted\"\nline"},
                         at=t0 + timedelta(days=i))
        s.commit()
    params = {"from": (t0 + timedelta(days=10)).isoformat(), "to": (t0 + timedelta(days=20)).isoformat()}
    r = gov.client.get("/v1/audit/export", headers=gov.admin, params={**params, "format": "jsonl"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    lines = r.text.splitlines()
    chain = json.loads(lines[-1])["chain"]
    assert (chain["from_seq"], chain["to_seq"], chain["count"], chain["head_seq"]) == (11, 20, 10, 30)
    assert r.headers["x-warden-chain-head-hash"] == chain["head_hash"] == audit.head(gov.engine)[1]
    assert verify_export_jsonl(lines).ok
    # dropping or editing an exported entry is detected
    assert not verify_export_jsonl(lines[:3] + lines[4:]).ok
    edited = json.loads(lines[2])
    edited["content"] = edited["content"].replace('"v":12', '"v":99')
    bad = verify_export_jsonl(lines[:2] + [json.dumps(edited)] + lines[3:])
    assert not bad.ok and bad.first_broken_seq == 13
    assert not verify_export_jsonl(lines[:-2] + lines[-1:]).ok  # the last entry cut off
    # an auditor of acme gets globex's entries as hashes only, and the chain still verifies
    key = gov.request("POST", "/v1/keys", json={"role": "auditor", "tenants": ["acme"]}).json()["key"]
    scoped = gov.client.get("/v1/audit/export", headers=gov.auth(key), params={**params, "format": "jsonl"}).text.splitlines()
    entries = [json.loads(x) for x in scoped[:-1]]
    assert {e.get("tenant") for e in entries if not e.get("redacted")} == {"acme"}
    assert sum(1 for e in entries if e.get("redacted")) == 5 and "globex" not in "".join(scoped)
    assert verify_export_jsonl(scoped).ok
    # CSV: same entries, a #chain row, and quoting that survives commas, quotes and newlines
    c = gov.client.get("/v1/audit/export", headers=gov.admin, params={**params, "format": "csv"})
    rows = list(csv.reader(io.StringIO(c.text)))
    assert rows[0][:4] == ["seq", "at", "actor", "action"] and rows[-1][0] == "#chain"
    body = rows[1:-1]
    assert [int(x[0]) for x in body] == list(range(11, 21))
    assert all(audit.content_digest(x[10]) == x[8] for x in body)
    assert json.loads(body[0][10])["after"]["note"] == "é,\"quoted\"\nline"
    assert audit.verify(gov.engine).ok  # contents with quotes, newlines, non-ASCII hash the same in the DB path
    empty = gov.client.get("/v1/audit/export", headers=gov.admin, params={"from": "2030-01-01T00:00:00Z"}).text
    assert json.loads(empty.splitlines()[-1])["chain"]["count"] == 0
    assert gov.client.get("/v1/audit/export", headers=gov.admin,
                          params={"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}).status_code == 422
    gov.engine.dispose()


def test_append_only_in_code(database_url: str) -> None:
    gov = make_gov(database_url, with_keys=False)
    audit.record(gov.engine, actor="a", action="x.done", target_type="t", target_id="1")
    with Session(gov.engine) as s:
        row = s.get(AuditRow, 1)
        assert row is not None
        row.actor = "someone else"
        s.add(row)
        with pytest.raises(AuditAppendOnlyError):
            s.flush()
    with Session(gov.engine) as s:
        s.delete(s.get(AuditRow, 1))
        with pytest.raises(AuditAppendOnlyError):
            s.flush()
    for stmt in ("UPDATE audit_log SET actor = 'x'", "delete from audit_log", 'DELETE FROM "audit_log" WHERE seq = 1'):
        with gov.engine.begin() as conn, pytest.raises(AuditAppendOnlyError):
            conn.execute(text(stmt))
    assert gov.client.get("/v1/audit/verify", headers=gov.admin).json()["ok"]
    gov.engine.dispose()


def _raw_conn(database_url: str):  # type: ignore[no-untyped-def]
    if database_url.startswith("sqlite"):
        return sqlite3.connect(database_url.split("///", 1)[1])
    return psycopg.connect(database_url)


def test_database_refuses_changes_and_verify_names_the_first_broken_entry(database_url: str) -> None:
    """Going around the code: the triggers refuse; with them disabled (a DBA), verify finds the edit."""
    gov = make_gov(database_url, with_keys=False)
    with Session(gov.engine) as s:
        for i in range(10):
            audit.append(s, actor="ops", action="settings.updated", target_type="setting", target_id=f"s{i}", after={"i": i})
        s.commit()
    pg = not database_url.startswith("sqlite")
    conn = _raw_conn(database_url)
    errors = (psycopg.errors.InsufficientPrivilege,) if pg else (sqlite3.IntegrityError, sqlite3.DatabaseError)
    for stmt in ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 4", "DELETE FROM audit_log WHERE seq = 7",
                 *(["TRUNCATE audit_log"] if pg else [])):
        with pytest.raises(errors) as info:
            conn.execute(stmt)
        assert "append-only" in str(info.value)
        conn.rollback()
    # a superuser disables the guards and edits entry 4's content: verify names seq 4
    if pg:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
    else:
        conn.execute("DROP TRIGGER audit_log_no_update")
        conn.execute("DROP TRIGGER audit_log_no_delete")
    conn.execute("UPDATE audit_log SET content = replace(content, '\"i\":3', '\"i\":333') WHERE seq = 4")
    conn.commit()
    result = gov.client.get("/v1/audit/verify", headers=gov.admin).json()
    assert not result["ok"] and result["first_broken_seq"] == 4 and "content" in result["reason"]
    # recomputing entry 4's hashes (a careful forger) breaks the link to entry 5 instead
    row = conn.execute("SELECT prev_hash, content FROM audit_log WHERE seq = 4").fetchone()
    ch = audit.content_digest(row[1])
    conn.execute(f"UPDATE audit_log SET content_hash = '{ch}', hash = '{audit.chain_digest(row[0], ch)}' WHERE seq = 4")
    conn.commit()
    result = gov.client.get("/v1/audit/verify", headers=gov.admin).json()
    assert not result["ok"] and result["first_broken_seq"] == 5
    # deleting an entry leaves a gap that verify names
    conn.execute("DELETE FROM audit_log WHERE seq = 2")
    conn.commit()
    result = audit.verify(gov.engine)
    assert not result.ok and result.first_broken_seq == 2 and "gap" in (result.reason or "")
    conn.close()
    gov.engine.dispose()


def test_deleting_the_newest_entries_is_caught_by_the_head(database_url: str) -> None:
    gov = make_gov(database_url, with_keys=False)
    for i in range(5):
        audit.record(gov.engine, actor="ops", action="x.y", target_type="t", target_id=str(i))
    conn = _raw_conn(database_url)
    if database_url.startswith("sqlite"):
        conn.execute("DROP TRIGGER audit_log_no_delete")
    else:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
    conn.execute("DELETE FROM audit_log WHERE seq >= 4")
    conn.commit()
    conn.close()
    result = audit.verify(gov.engine)
    assert not result.ok and result.first_broken_seq == 4 and "head" in (result.reason or "")
    gov.engine.dispose()


def test_concurrent_appends_keep_one_unforked_chain(database_url: str) -> None:
    import concurrent.futures

    gov = make_gov(database_url, with_keys=False)

    def write(i: int) -> int:
        return audit.record(gov.engine, actor=f"w{i}", action="x.y", target_type="t", target_id=str(i)).seq

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        seqs = list(pool.map(write, range(80)))
    assert sorted(seqs) == list(range(1, 81))
    result = audit.verify(gov.engine)
    assert result.ok and result.checked == 80
    gov.engine.dispose()


def test_time_never_runs_backwards_along_the_chain(database_url: str) -> None:
    """A back-dated append (or a clock step) takes the previous entry's time, so a time window is a
    seq range and listing by window stays exact."""
    gov = make_gov(database_url, with_keys=False)
    t0 = datetime(2026, 6, 1, tzinfo=UTC)
    first = audit.record(gov.engine, actor="a", action="x.y", target_type="t", target_id="1", at=t0)
    late = audit.record(gov.engine, actor="a", action="x.y", target_type="t", target_id="2", at=t0 - timedelta(days=3))
    assert json.loads(late.content)["at"] == json.loads(first.content)["at"] == t0.isoformat()
    audit.record(gov.engine, actor="a", action="x.y", target_type="t", target_id="3", at=t0 + timedelta(hours=1))
    window = {"since": t0.isoformat(), "until": (t0 + timedelta(minutes=30)).isoformat()}
    items = gov.client.get("/v1/audit", headers=gov.admin, params=window).json()["items"]
    assert [e["target_id"] for e in items] == ["2", "1"]
    gap = {"since": (t0 + timedelta(minutes=5)).isoformat(), "until": (t0 + timedelta(minutes=30)).isoformat()}
    assert gov.client.get("/v1/audit", headers=gov.admin, params=gap).json()["items"] == []
    assert audit.verify(gov.engine).ok
    gov.engine.dispose()


def _tamper(database_url: str, sql: str) -> None:
    """Change the trail around the code and the guards (what a DBA could do)."""
    conn = _raw_conn(database_url)
    if database_url.startswith("sqlite"):
        conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        conn.execute("DROP TRIGGER IF EXISTS audit_log_no_delete")
    else:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
    conn.execute(sql)
    conn.commit()
    conn.close()


def _append(gov: Gov, n: int) -> None:
    for i in range(n):
        audit.record(gov.engine, actor="ops", action="x.y", target_type="t", target_id=str(i), after={"i": i})


def test_new_entries_are_verified_from_the_checkpoint_and_older_breaks_by_the_full_walk(database_url: str) -> None:
    gov = make_gov(database_url, with_keys=False)
    assert audit.verification_status(gov.engine) == {"full": None, "checkpoint": None}
    _append(gov, 10)
    first = audit.verify_new(gov.engine, by="test")  # no checkpoint yet: from the first entry
    assert first.ok and first.checked == 10 and first.head_seq == 10
    full = audit.verify_full(gov.engine, by="auditor ann")
    assert full.ok and full.checked == 10
    status = audit.verification_status(gov.engine)
    assert status["full"]["ok"] and status["full"]["verified_by"] == "auditor ann" and status["full"]["checked"] == 10
    assert status["full"]["seconds"] >= 0 and status["checkpoint"]["head_seq"] == 10
    _append(gov, 5)
    new = audit.verify_new(gov.engine, by="test")
    assert new.ok and new.checked == 5 and new.head_seq == 15  # only the entries after the checkpoint
    assert audit.verification_status(gov.engine)["checkpoint"]["head_seq"] == 15
    # an old entry edited after it was verified: the incremental check has nothing new to look at...
    _tamper(database_url, "UPDATE audit_log SET content = replace(content, '\"i\":3', '\"i\":333') WHERE seq = 4")
    assert audit.verify_new(gov.engine, by="test").checked == 0
    # ...the full walk finds it, records it, and moves the checkpoint back to the last good entry
    full = audit.verify_full(gov.engine, by="periodic verification")
    assert not full.ok and full.first_broken_seq == 4
    status = audit.verification_status(gov.engine)
    assert not status["full"]["ok"] and status["full"]["first_broken_seq"] == 4 and "content" in status["full"]["reason"]
    assert status["checkpoint"]["head_seq"] == 3
    again = audit.verify_new(gov.engine, by="test")  # from then on the quick check sees the break too
    assert not again.ok and again.first_broken_seq == 4
    gov.engine.dispose()


def test_the_incremental_check_finds_breaks_after_or_at_the_checkpoint(database_url: str) -> None:
    gov = make_gov(database_url, with_keys=False)
    _append(gov, 10)
    assert audit.verify_full(gov.engine, by="test").ok
    _append(gov, 30)
    part = audit.verify_new(gov.engine, by="test", limit=12)  # at most 12 at once; the checkpoint moves on
    assert part.ok and part.checked == 12 and part.head_seq == 22
    _tamper(database_url, "UPDATE audit_log SET content = replace(content, '\"ops\"', '\"mallory\"') WHERE seq = 30")
    broken = audit.verify_new(gov.engine, by="test")
    assert not broken.ok and broken.first_broken_seq == 30 and broken.checked == 7
    assert audit.verification_status(gov.engine)["checkpoint"]["head_seq"] == 22  # not moved past a break
    # the checkpoint entry itself rewritten (its hashes recomputed): the check starts by comparing it
    row = _raw_conn(database_url).execute("SELECT prev_hash, content FROM audit_log WHERE seq = 22").fetchone()
    content = row[1].replace('"i":1', '"i":111')
    ch = audit.content_digest(content)
    _tamper(database_url, f"UPDATE audit_log SET content = '{content}', content_hash = '{ch}', "
                          f"hash = '{audit.chain_digest(row[0], ch)}' WHERE seq = 22")
    moved = audit.verify_new(gov.engine, by="test")
    assert not moved.ok and moved.first_broken_seq == 22 and "no longer has the hash" in (moved.reason or "")
    gov.engine.dispose()


def test_verification_while_entries_are_appended_raises_no_false_alarm(database_url: str) -> None:
    """The entries, the head and the checkpoint's entry are read in one snapshot: appends committed while a
    walk runs are neither missing at its end nor a head mismatch."""
    import threading

    gov = make_gov(database_url, with_keys=False)
    _append(gov, 300)
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            audit.record(gov.engine, actor="w", action="x.y", target_type="t", target_id=f"w{i}")
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        results = [audit.verify(gov.engine) for _ in range(15)] + \
            [audit.verify_new(gov.engine, by="test", limit=50) for _ in range(15)]
    finally:
        stop.set()
        thread.join()
    assert all(r.ok for r in results), [r for r in results if not r.ok][:1]
    assert audit.verify(gov.engine).ok
    gov.engine.dispose()
