"""The tamper-evident audit trail: an append-only, hash-chained log of every state change.

Each entry's ``content`` is canonical JSON (sorted keys, no spaces, UTF-8) of what happened
(seq, time, actor, action, tenant, target, before, after). ``content_hash = sha256(content)`` and
``hash = sha256(prev_hash + content_hash)`` (hex strings, ASCII), the first entry chaining onto
:data:`GENESIS`. Removing, reordering or editing any entry breaks every hash after it, and the chain
head (``audit_head``: last seq and hash) lets an exported period be proven complete.

Append-only is enforced twice: in code (:mod:`store.audit_log`: ORM mapper events and a statement guard
refuse UPDATE, DELETE and TRUNCATE of ``audit_log`` on every engine) and in the database (triggers, see
the migrations).
Appends are serialised by a row lock on ``audit_head``, so concurrent writers cannot fork the chain.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import io
import json
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any, cast

from sqlalchemy import func, select, text, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from store.audit_log import AUDIT_HEAD as _HEAD
from store.audit_log import AUDIT_TABLE
from store.models import AuditRow, AuditVerificationRow, to_utc

GENESIS = "0" * 64
ALL_TENANTS = "*"
# ---------------------------------------------------------------- canonical form and hashes


def as_utc(value: datetime) -> datetime:
    """:func:`store.models.to_utc` of a datetime that is present (typed: the result is never None)."""
    out = to_utc(value)
    assert out is not None  # to_utc maps only None to None
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def canonical_json(obj: Any) -> str:
    """Canonical JSON text: sorted keys, compact separators, non-ASCII kept as UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default,
                      allow_nan=False)


def content_digest(content: str) -> str:
    """sha256 hex of an entry's canonical content."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def chain_digest(prev_hash: str, content_hash: str) -> str:
    """sha256 hex of ``prev_hash + content_hash`` (the entry's chained hash)."""
    return hashlib.sha256((prev_hash + content_hash).encode("ascii")).hexdigest()



def entry_content(
    *, seq: int, at: datetime, actor: str, action: str, tenant: str | None, target_type: str, target_id: str,
    before: Any = None, after: Any = None,
) -> str:
    """The canonical content string of one entry (what ``content_hash`` covers)."""
    return canonical_json({
        "seq": seq, "at": as_utc(at).isoformat(), "actor": actor, "action": action, "tenant": tenant,
        "target_type": target_type, "target_id": target_id, "before": before, "after": after,
    })


# ---------------------------------------------------------------- append (the only write)


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    tenant: str | None = None,
    before: Any = None,
    after: Any = None,
    at: datetime | None = None,
) -> AuditRow:
    """Append one entry inside the caller's transaction (it commits with the change it records).

    ``at`` defaults to now and is raised to the previous entry's time if earlier, so ``at`` never
    decreases along ``seq``: a time range is a seq range (fast listing, exact exports).

    ``before``/``after`` must be JSON-serialisable (datetimes, enums and pydantic models are
    converted) and must never hold raw PII: pass keyed hashes instead.
    """
    bind = session.connection()
    row = bind.execute(
        update(_HEAD).where(_HEAD.c.id == 1).values(seq=_HEAD.c.seq + 1).returning(_HEAD.c.seq, _HEAD.c.hash, _HEAD.c.at)
    ).one()
    seq, prev = int(row[0]), str(row[1])
    when = as_utc(at or datetime.now(UTC))
    if row[2] is not None and when < as_utc(row[2]):
        when = as_utc(row[2])  # time never runs backwards along the chain (clock steps, back-dated calls)
    content = entry_content(seq=seq, at=when, actor=actor, action=action, tenant=tenant, target_type=target_type,
                            target_id=target_id, before=before, after=after)
    chash = content_digest(content)
    h = chain_digest(prev, chash)
    bind.execute(update(_HEAD).where(_HEAD.c.id == 1).values(hash=h, at=when))
    entry = AuditRow(seq=seq, at=when, actor=actor, action=action, tenant=tenant, target_type=target_type,
                     target_id=str(target_id), content=content, prev_hash=prev, content_hash=chash, hash=h)
    session.add(entry)
    session.flush()
    return entry


def record(engine: Engine, **kwargs: Any) -> AuditRow:
    """Append one entry in its own transaction (for changes made outside the store, e.g. by jobs)."""
    with Session(engine, expire_on_commit=False) as session:
        entry = append(session, **kwargs)
        session.commit()
        return entry


# ---------------------------------------------------------------- verification


@dataclass(slots=True)
class VerifyResult:
    """Outcome of a chain verification; ``first_broken_seq`` names the first bad entry."""

    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    first_broken_seq: int | None = None
    reason: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify_rows(rows: Iterable[Sequence[Any]], *, start_seq: int = 1, prev_hash: str = GENESIS) -> VerifyResult:
    """Verify ``(seq, prev_hash, content_hash, hash, content)`` tuples in seq order (pure function).

    ``content`` may be ``None`` for a redacted entry (another tenant's): its ``content_hash`` is
    then taken as given, so the chain still links end to end.
    """
    sha = hashlib.sha256
    expected_seq = start_seq
    prev = prev_hash
    checked = 0
    for seq, p, ch, h, content in rows:
        if seq != expected_seq:
            missing = expected_seq if seq > expected_seq else seq
            return VerifyResult(False, checked, expected_seq - 1, prev, missing,
                                f"sequence gap: expected seq {expected_seq}, found {seq}")
        if p != prev:
            return VerifyResult(False, checked, seq - 1, prev, seq, "prev_hash does not match the previous entry's hash")
        if content is not None and sha(content.encode("utf-8")).hexdigest() != ch:
            return VerifyResult(False, checked, seq - 1, prev, seq, "content does not match content_hash")
        if sha((p + ch).encode("ascii")).hexdigest() != h:
            return VerifyResult(False, checked, seq - 1, prev, seq, "hash does not match prev_hash + content_hash")
        prev = h
        expected_seq += 1
        checked += 1
    return VerifyResult(True, checked, expected_seq - 1, prev)


_COPY_ESCAPES = {b"\\": b"\\", b"t": b"\t", b"n": b"\n", b"r": b"\r", b"b": b"\b", b"f": b"\f", b"v": b"\v"}
_COPY_ESCAPE = re.compile(rb"\\(\\|t|n|r|b|f|v)")


def _copy_unescape(field: bytes) -> bytes:
    """Undo COPY text-format escaping (canonical JSON has no raw control characters, so only ``\\\\``
    occurs in practice)."""
    return _COPY_ESCAPE.sub(lambda m: _COPY_ESCAPES[m.group(1)], field)


def verify_raw_rows(rows: Iterable[bytes], *, start_seq: int = 1, prev_hash: str = GENESIS,
                    unescape: bool = False) -> VerifyResult:
    """Verify lines ``seq\\tprev_hash\\tcontent_hash\\thash\\tcontent`` as UTF-8 bytes (the fast path: the
    content is hashed as the bytes PostgreSQL sends, never decoded). ``unescape`` undoes COPY text escaping."""
    sha = hashlib.sha256
    expected_seq = start_seq
    prev = prev_hash.encode("ascii")
    checked = 0
    for line in rows:
        seq_b, p, ch, h, content = line.rstrip(b"\n").split(b"\t", 4)
        seq = int(seq_b)
        if seq != expected_seq:
            return VerifyResult(False, checked, expected_seq - 1, prev.decode(), expected_seq if seq > expected_seq
                                else seq, f"sequence gap: expected seq {expected_seq}, found {seq}")
        if p != prev:
            return VerifyResult(False, checked, seq - 1, prev.decode(), seq,
                                "prev_hash does not match the previous entry's hash")
        if unescape and b"\\" in content:
            content = _copy_unescape(content)
        if sha(content).hexdigest().encode("ascii") != ch:
            return VerifyResult(False, checked, seq - 1, prev.decode(), seq, "content does not match content_hash")
        if sha(p + ch).hexdigest().encode("ascii") != h:
            return VerifyResult(False, checked, seq - 1, prev.decode(), seq,
                                "hash does not match prev_hash + content_hash")
        prev = h
        expected_seq += 1
        checked += 1
    return VerifyResult(True, checked, expected_seq - 1, prev.decode())


# The ranges come sorted from the subquery (cheaper than ORDER BY inside string_agg). Should the order
# ever differ, verification reports a sequence gap: a false alarm is possible, a false "ok" is not.
_CHUNK_SQL = (
    "SELECT convert_to(string_agg(seq::text || E'\\t' || prev_hash || E'\\t' || content_hash || E'\\t' || hash"
    f" || E'\\t' || content, E'\\n'), 'UTF8') FROM (SELECT * FROM {AUDIT_TABLE} WHERE seq >= %s AND seq < %s"
    " ORDER BY seq) AS chunk"
)
_SPAN_SQL = f"SELECT seq, prev_hash, content_hash, hash, content FROM {AUDIT_TABLE} WHERE seq >= ? AND seq <= ? ORDER BY seq"
_HEAD_SQL = "SELECT seq, hash FROM audit_head WHERE id = 1"
_TOP_SQL = f"SELECT max(seq) FROM {AUDIT_TABLE}"
_HASH_AT_SQL = f"SELECT hash FROM {AUDIT_TABLE} WHERE seq = "


@dataclass(slots=True)
class _Snapshot:
    """What a span's reader saw beside the entries, in the same snapshot: the recorded head, the last seq
    stored, the last seq read and the stored hash of the entry the span chains onto."""

    head: tuple[int, str] = (0, GENESIS)
    top: int = 0
    stop: int = 0
    anchor_hash: str | None = None


def _span_pg(engine: Engine, start: int, last: int | None, snap: _Snapshot, chunk: int = 8192) -> Iterator[bytes]:
    """PostgreSQL: entries ``start``… as tab-separated lines, fetched a primary-key range at a time, each range
    aggregated server-side into one UTF-8 ``bytea`` (one round trip and one Python object per 8,192 entries
    instead of per entry). Canonical JSON holds no raw tab or newline, so the framing is exact; content
    written around the code with such characters fails verification, as it should. The ranges, the head
    and the anchor are read in one snapshot (REPEATABLE READ). A reader thread fetches the next range while
    this one is hashed (the database works while Python hashes)."""
    import queue
    import threading

    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=3)
    stop = threading.Event()

    def reader() -> None:
        raw = engine.raw_connection()
        try:
            conn = raw.driver_connection
            if conn is None:  # only after the pool invalidated it; raised here it reaches the consumer
                raise RuntimeError("audit verification: the pooled connection has no driver connection")
            with conn.cursor(binary=True) as cur:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                hs, hh = cur.execute(_HEAD_SQL).fetchone()
                snap.head = (int(hs), str(hh.decode() if isinstance(hh, bytes) else hh))
                snap.top = int(cur.execute(_TOP_SQL).fetchone()[0] or 0)
                snap.stop = snap.top if last is None else min(snap.top, last)
                if start > 1:
                    found = cur.execute(_HASH_AT_SQL + "%s", (start - 1,)).fetchone()
                    snap.anchor_hash = None if found is None else (
                        found[0].decode() if isinstance(found[0], bytes) else str(found[0]))
                for lo in range(start, snap.stop + 1, chunk):
                    if stop.is_set():
                        break
                    blob = cur.execute(_CHUNK_SQL, (lo, min(lo + chunk, snap.stop + 1))).fetchone()[0]
                    if blob is not None:
                        chunks.put(bytes(blob))
            conn.rollback()
            chunks.put(None)
        except BaseException as exc:
            chunks.put(exc)
        finally:
            raw.close()

    thread = threading.Thread(target=reader, name="audit-verify-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = chunks.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item.split(b"\n")
    finally:
        stop.set()
        while thread.is_alive():  # drain so the reader can finish
            with contextlib.suppress(queue.Empty):
                chunks.get(timeout=0.1)
        thread.join()


def _span_sqlite(engine: Engine, start: int, last: int | None, snap: _Snapshot,
                 batch: int = 20_000) -> Iterator[tuple[Any, ...]]:
    """SQLite: entries ``start``… through a cursor; the head, the anchor and the entries in one read
    transaction (one snapshot in WAL mode)."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("BEGIN")
        hs, hh = cur.execute(_HEAD_SQL).fetchone()
        snap.head = (int(hs), str(hh))
        snap.top = int(cur.execute(_TOP_SQL).fetchone()[0] or 0)
        snap.stop = snap.top if last is None else min(snap.top, last)
        if start > 1:
            found = cur.execute(_HASH_AT_SQL + "?", (start - 1,)).fetchone()
            snap.anchor_hash = None if found is None else str(found[0])
        cur.execute(_SPAN_SQL, (start, snap.stop))
        while True:
            rows = cur.fetchmany(batch)
            if not rows:
                break
            yield from rows
        cur.close()
    finally:
        raw.rollback()
        raw.close()


def head(engine: Engine) -> tuple[int, str]:
    """The chain head: (last seq, last hash); (0, GENESIS) for an empty trail."""
    with engine.connect() as conn:
        row = conn.execute(select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1)).one()
    return int(row[0]), str(row[1])


def verify_span(engine: Engine, *, after: tuple[int, str] = (0, GENESIS), limit: int | None = None) -> VerifyResult:
    """Verify the entries after ``after`` = (seq, hash): the stored entry ``seq`` must still have that hash,
    the next ones must link from it (at most ``limit`` of them; None: to the end), and a span that reaches
    the end must end at the recorded head. The entries, the head and the anchor are read in one snapshot,
    so appends during the walk raise no false alarm. ``after=(0, GENESIS)`` walks the whole chain."""
    t0 = time.perf_counter()
    start, prev = after[0] + 1, after[1]
    last = None if limit is None else after[0] + max(limit, 0)
    snap = _Snapshot()
    if engine.dialect.name == "postgresql":
        result = verify_raw_rows(_span_pg(engine, start, last, snap), start_seq=start, prev_hash=prev)
    else:
        result = verify_rows(_span_sqlite(engine, start, last, snap), start_seq=start, prev_hash=prev)
    if start > 1 and snap.anchor_hash != prev:
        result = VerifyResult(False, 0, after[0] - 1, "", after[0],
                              f"entry {after[0]} no longer has the hash it had when it was verified" if
                              snap.anchor_hash is not None else f"entry {after[0]}, verified before, is missing")
    elif result.ok and result.head_seq == snap.top:  # the span reached the end: it must end at the head
        hseq, hhash = snap.head
        if (hseq, hhash) != (result.head_seq, result.head_hash):
            broken = min(hseq, result.head_seq) + 1
            result = VerifyResult(False, result.checked, result.head_seq, result.head_hash, broken,
                                  f"chain ends at seq {result.head_seq} but the recorded head is seq {hseq}"
                                  " (entries missing at the end, or the head was altered)")
    result.seconds = time.perf_counter() - t0
    return result


def verify(engine: Engine) -> VerifyResult:
    """Walk the whole chain (streamed: ranges aggregated server-side on PostgreSQL, a cursor on SQLite) and
    check it against the head."""
    return verify_span(engine)


# ---------------------------------------------------------------- what the verifications found

FULL = "full"
CHECKPOINT = "checkpoint"


def _record(session: Session, kind: str, result: VerifyResult, by: str, *, only_forward: bool) -> None:
    table = AuditVerificationRow.__table__  # type: ignore[attr-defined]  # SQLModel leaves the mapped __table__ undeclared
    values = {"kind": kind, "ok": result.ok, "checked": result.checked, "head_seq": result.head_seq,
              "head_hash": result.head_hash, "first_broken_seq": result.first_broken_seq, "reason": result.reason,
              "seconds": round(result.seconds, 4), "verified_at": datetime.now(UTC), "verified_by": by[:200]}
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table).values(values)
    where = table.c.head_seq < stmt.excluded.head_seq if only_forward else None
    session.execute(stmt.on_conflict_do_update(index_elements=["kind"],
                                               set_={k: stmt.excluded[k] for k in values if k != "kind"}, where=where))


def verify_full(engine: Engine, *, by: str) -> VerifyResult:
    """Walk the whole chain and record what was found (the ``full`` verification) and how far the chain is
    known to be sound (the checkpoint: moved on to the head, or back to the last good entry when broken)."""
    result = verify(engine)
    with Session(engine) as session:
        _record(session, FULL, result, by, only_forward=False)
        _record(session, CHECKPOINT, result, by, only_forward=result.ok)
        session.commit()
    return result


def verify_new(engine: Engine, *, by: str, limit: int | None = None) -> VerifyResult:
    """Verify only the entries after the checkpoint (from the first entry when there is none yet), at most
    ``limit`` of them, and move the checkpoint on when they are sound. An entry before the checkpoint that
    was changed after it was verified is for :func:`verify_full` (the periodic verification) to find."""
    with Session(engine) as session:
        row = session.get(AuditVerificationRow, CHECKPOINT)
    after = (row.head_seq, row.head_hash) if row is not None else (0, GENESIS)
    result = verify_span(engine, after=after, limit=limit)
    if result.ok and result.head_seq > after[0]:
        with Session(engine) as session:
            _record(session, CHECKPOINT, result, by, only_forward=True)
            session.commit()
    return result


def verification_status(engine: Engine) -> dict[str, Any]:
    """The last full verification and the checkpoint (each a dict of :class:`AuditVerificationRow`, or None)."""
    with Session(engine) as session:
        found: list[AuditVerificationRow] = list(session.execute(select(AuditVerificationRow)).scalars())
        rows = {r.kind: r.model_dump() for r in found}
    for r in rows.values():
        r["verified_at"] = to_utc(r["verified_at"])
    return {"full": rows.get(FULL), "checkpoint": rows.get(CHECKPOINT)}


# ---------------------------------------------------------------- reads and export


def entry_view(row: AuditRow | Sequence[Any], redact: bool = False) -> dict[str, Any]:
    """The public shape of an entry: its content (decoded) plus the chain fields."""
    if isinstance(row, AuditRow):
        seq, prev, ch, h, content = row.seq, row.prev_hash, row.content_hash, row.hash, row.content
    else:
        seq, prev, ch, h, content = row
    out: dict[str, Any] = {"seq": seq, "prev_hash": prev, "content_hash": ch, "hash": h}
    if redact:
        out["redacted"] = True
    else:
        out.update(json.loads(content))
        out["content"] = content
    return out


def list_entries(
    engine: Engine,
    *,
    tenants: Sequence[str] | None = None,
    actor: str | None = None,
    action: str | None = None,
    tenant: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_seq: int | None = None,
    limit: int = 100,
) -> tuple[list[tuple[int, str, str, str, str]], int | None]:
    """Entries newest first as ``(seq, prev_hash, content_hash, hash, content)``; ``tenants`` limits to
    those tenants (None = all). Returns (rows, next cursor seq). Plain tuples, no ORM objects: this is
    the hot read path."""
    conds: list[Any] = []
    scoped = sorted(set(tenants)) if tenants is not None else None
    if scoped is not None and len(scoped) == 1 and tenant is None:
        tenant, scoped = scoped[0], None
    for column, value in ((col(AuditRow.actor), actor), (col(AuditRow.action), action),
                          (col(AuditRow.tenant), tenant), (col(AuditRow.target_type), target_type),
                          (col(AuditRow.target_id), target_id)):
        if value is not None:
            conds.append(column == value)
    if before_seq is not None:
        conds.append(col(AuditRow.seq) < before_seq)
    cols = (col(AuditRow.seq), col(AuditRow.prev_hash), col(AuditRow.content_hash), col(AuditRow.hash),
            col(AuditRow.content))
    newest = col(AuditRow.seq).desc()
    with engine.connect() as conn:
        if since is not None or until is not None:
            bounds = seq_range(conn, since, until)  # the time window as a primary-key range
            if bounds is None:
                return [], None
            conds.append(col(AuditRow.seq).between(*bounds))
        if scoped is not None and tenant is None:
            # one ordered, limited index scan per tenant, merged: an IN list would read every row of
            # those tenants and sort them (slow with millions of entries)
            parts = [select(*cols).where(col(AuditRow.tenant) == t, *conds).order_by(newest).limit(limit + 1).subquery()
                     for t in scoped]
            merged = union_all(*[select(*p.c) for p in parts]).subquery()
            stmt = select(*merged.c).order_by(merged.c.seq.desc()).limit(limit + 1)
        else:
            if scoped is not None:  # an explicit tenant outside the scope matches nothing
                conds.append(col(AuditRow.tenant).in_(scoped))
            stmt = select(*cols).where(*conds).order_by(newest).limit(limit + 1)
        # the five selected columns, in the order of ``cols`` (the driver's rows are untyped)
        rows = cast(list[tuple[int, str, str, str, str]], [tuple(r) for r in conn.execute(stmt)])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1][0] if more and rows else None)


def page_json(rows: Sequence[Sequence[Any]], next_cursor: int | None) -> bytes:
    """``{"items": [...], "next_cursor": ...}`` built from the stored canonical JSON without parsing it:
    each item is the entry's content plus ``prev_hash``, ``content_hash`` and ``hash``."""
    items = ",".join(f'{{"prev_hash":"{p}","content_hash":"{ch}","hash":"{h}",{content[1:]}'
                     for _, p, ch, h, content in rows)
    cursor = "null" if next_cursor is None else f'"{next_cursor}"'
    return f'{{"items":[{items}],"next_cursor":{cursor}}}'.encode()


def seq_range(conn: Any, start: datetime | None, end: datetime | None) -> tuple[int, int] | None:
    """First and last seq whose ``at`` lies in [start, end) — two index lookups, valid because ``at``
    never decreases along ``seq``; None when the range holds no entry."""
    lo = hi = None
    at, seq = col(AuditRow.at), col(AuditRow.seq)
    if start is not None:
        lo = conn.execute(select(seq).where(at >= as_utc(start)).order_by(at, seq).limit(1)).scalar()
        if lo is None:
            return None
    if end is not None:
        hi = conn.execute(select(seq).where(at < as_utc(end)).order_by(at.desc(), seq.desc())
                          .limit(1)).scalar()
        if hi is None:
            return None
    if lo is None or hi is None:
        first, last = conn.execute(select(func.min(seq), func.max(seq))).one()
        if first is None:
            return None
        lo = first if lo is None else lo
        hi = last if hi is None else hi
    return (int(lo), int(hi)) if lo <= hi else None


def _seq_bounds(engine: Engine, start: datetime | None, end: datetime | None) -> tuple[int, int]:
    """First and last seq of the period [start, end); (0, -1) when empty."""
    with engine.connect() as conn:
        found = seq_range(conn, start, end)
    return found if found is not None else (0, -1)


def _prev_hash_of(engine: Engine, seq: int) -> str:
    if seq <= 1:
        return GENESIS
    with engine.connect() as conn:
        got = conn.execute(text(f"SELECT hash FROM {AUDIT_TABLE} WHERE seq = :s"), {"s": seq - 1}).scalar()
    return str(got) if got is not None else GENESIS


@dataclass(slots=True)
class ExportChain:
    """What proves an export complete: the range, the hash it chains onto, its last hash, the head."""

    from_seq: int
    to_seq: int
    count: int
    anchor_prev_hash: str
    last_hash: str
    head_seq: int
    head_hash: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_chain(engine: Engine, start: datetime | None, end: datetime | None) -> ExportChain:
    """The chain facts of the period [start, end) (computed before streaming the entries)."""
    lo, hi = _seq_bounds(engine, start, end)
    hseq, hhash = head(engine)
    if hi < lo:
        return ExportChain(0, -1, 0, hhash, hhash, hseq, hhash)
    with engine.connect() as conn:
        last = conn.execute(text(f"SELECT hash FROM {AUDIT_TABLE} WHERE seq = :s"), {"s": hi}).scalar()
    return ExportChain(lo, hi, hi - lo + 1, _prev_hash_of(engine, lo), str(last), hseq, hhash)


def export_rows(engine: Engine, chain: ExportChain, *, batch: int = 5_000) -> Iterator[tuple[Any, ...]]:
    """Stream ``(seq, prev_hash, content_hash, hash, content, tenant)`` of the exported range."""
    if chain.count == 0:
        return
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=batch).execute(
            text(f"SELECT seq, prev_hash, content_hash, hash, content, tenant FROM {AUDIT_TABLE} "
                 "WHERE seq BETWEEN :lo AND :hi ORDER BY seq"), {"lo": chain.from_seq, "hi": chain.to_seq})
        for row in result:
            yield tuple(row)


def _visible(tenant: str | None, tenants: Sequence[str] | None) -> bool:
    return tenants is None or (tenant is not None and tenant in tenants)


def export_jsonl(rows: Iterable[Sequence[Any]], chain: ExportChain, tenants: Sequence[str] | None = None) -> Iterator[str]:
    """JSON Lines: one entry per line (other tenants' entries redacted to their hashes), then a
    final ``{"chain": …}`` line with the anchor, the last hash and the head."""
    for seq, p, ch, h, content, tenant in rows:
        yield canonical_json(entry_view((seq, p, ch, h, content), redact=not _visible(tenant, tenants))) + "\n"
    yield canonical_json({"chain": chain.as_dict()}) + "\n"


CSV_COLUMNS = ["seq", "at", "actor", "action", "tenant", "target_type", "target_id", "prev_hash", "content_hash",
               "hash", "content"]


def export_csv(rows: Iterable[Sequence[Any]], chain: ExportChain, tenants: Sequence[str] | None = None) -> Iterator[str]:
    """CSV with a header; redacted entries keep only seq and hashes; a last ``#chain`` row holds the head."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")

    def flush() -> str:
        out = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return out

    writer.writerow(CSV_COLUMNS)
    yield flush()
    for seq, p, ch, h, content, tenant in rows:
        if _visible(tenant, tenants):
            d = json.loads(content)
            writer.writerow([seq, d["at"], d["actor"], d["action"], d["tenant"] or "", d["target_type"],
                             d["target_id"], p, ch, h, content])
        else:
            writer.writerow([seq, "", "", "", "", "", "", p, ch, h, ""])
        yield flush()
    writer.writerow(["#chain", canonical_json(chain.as_dict())] + [""] * (len(CSV_COLUMNS) - 2))
    yield flush()


def verify_export_jsonl(lines: Iterable[str]) -> VerifyResult:
    """Check an exported JSONL file on its own: entries link from the anchor to the last hash."""
    entries: list[tuple[Any, ...]] = []
    chain: dict[str, Any] | None = None
    for line in lines:
        if not line.strip():
            continue
        obj = json.loads(line)
        if "chain" in obj:
            chain = obj["chain"]
            continue
        entries.append((obj["seq"], obj["prev_hash"], obj["content_hash"], obj["hash"], obj.get("content")))
    if chain is None:
        return VerifyResult(False, 0, 0, GENESIS, None, "no chain line: the export is truncated")
    if chain["count"] == 0:
        return VerifyResult(not entries, 0, chain["to_seq"], chain["last_hash"])
    result = verify_rows(entries, start_seq=chain["from_seq"], prev_hash=chain["anchor_prev_hash"])
    if result.ok and (result.head_seq, result.head_hash) != (chain["to_seq"], chain["last_hash"]):
        return VerifyResult(False, result.checked, result.head_seq, result.head_hash, result.head_seq + 1,
                            "export ends before the chain line's last entry (entries missing)")
    return result
