"""Rollups of ``findings``: counts per bucket of time that pages and reports read instead of the findings.

=======================  =======================================================  ========  ====================
table                    key                                                      bucket    read by
=======================  =======================================================  ========  ====================
``finding_counts``       tenant, detector, severity                               1 hour    console overview
``finding_counts_daily`` tenant, model, detector, kind, severity                  1 day     compliance report
``pii_entity_counts``    tenant, model, entity type (``pii`` findings' evidence)  1 day     compliance report
=======================  =======================================================  ========  ====================

A bucket is the Unix second (UTC) its hour or day starts at; ``n`` counts the findings (entities) whose
``occurred_at`` falls in it. The rollups change in the transaction that changes the findings, so they stay
exact:

- ingest adds the findings a batch stored for the first time (:func:`add` with the rows ``insert_new``
  reported new): a batch delivered again adds nothing;
- erasure subtracts the findings it deleted (:func:`subtract`, from ``DELETE … RETURNING``);
- the retention purge drops the buckets wholly before its cutoff and recounts the bucket the cutoff falls
  in from the findings that remain (:func:`after_purge`);
- :func:`recount` rebuilds any span of buckets from the findings (the migration that created the tables
  did the same for the findings stored before them; ``bench.console`` after its bulk load).

:meth:`Rollup.totals` answers "how many in [start, end)" exactly for any period: whole buckets from the
rollup, the partial buckets at either end from the findings themselves.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, Table, and_, bindparam, cast, delete, func, select, tuple_, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection

from store.models import FindingCountRow, FindingDailyCountRow, FindingRow, PiiEntityCountRow
from store.pg_bulk import unnest_add

HOUR = 3600
DAY = 86400
#: the columns of ``findings`` a rollup reads (``DELETE … RETURNING`` these to :func:`subtract`)
FINDING_COLUMNS = ("tenant", "model", "detector", "kind", "severity", "occurred_at", "evidence")
_F = FindingRow.__table__  # type: ignore[attr-defined]
_MAX_KEY = 64  # entity types are cut to the column's length


def _aware(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def bucket_of(at: datetime, width_s: int) -> int:
    """The start (Unix seconds, UTC) of the bucket of ``width_s`` seconds that ``at`` falls in (naive = UTC)."""
    ts = math.floor(_aware(at).timestamp())
    return ts - ts % width_s


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def bucket_sql(dialect: str, column: Any, width_s: int) -> Any:
    """SQL for :func:`bucket_of` of a timestamp column (Unix seconds, an integer)."""
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", column) / width_s), BigInteger) * width_s
    return (cast(func.strftime("%s", column), Integer) // width_s) * width_s


def entity_counts(evidence: Mapping[str, Any] | None) -> Counter[str]:
    """The PII entities a finding's evidence names: its ``counts`` (type → number; a value that is not a
    finite number counts 1), or else each of its ``entity_types`` once."""
    out: Counter[str] = Counter()
    evidence = evidence or {}
    counts = evidence.get("counts")
    if isinstance(counts, Mapping) and counts:
        for etype, n in counts.items():
            value = int(n) if isinstance(n, (int, float)) and math.isfinite(n) else 1
            if value > 0:
                out[str(etype)[:_MAX_KEY]] += value
        return out
    types = evidence.get("entity_types")
    if isinstance(types, list):
        for etype in types:
            out[str(etype)[:_MAX_KEY]] += 1
    return out


def _upsert(conn: Connection, table: Table, keys: Sequence[str]) -> Any:
    stmt = sqlite.insert(table)
    return stmt.on_conflict_do_update(index_elements=list(keys), set_={"n": table.c.n + stmt.excluded.n})


@dataclass(frozen=True, slots=True)
class Rollup:
    """One rollup table: ``keys`` are its key columns besides ``bucket``; ``entities`` rolls up the PII
    entities of ``pii`` findings (key ``entity_type``) instead of counting findings."""

    table: Table
    width_s: int
    keys: tuple[str, ...]
    entities: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        """The key columns in the table's order, ``bucket`` included."""
        return (self.keys[0], "bucket", *self.keys[1:])

    def tally(self, rows: Iterable[Mapping[str, Any]]) -> Counter[tuple[Any, ...]]:
        """What ``rows`` of ``findings`` (dicts with :data:`FINDING_COLUMNS`) add, by key (:attr:`columns`)."""
        out: Counter[tuple[Any, ...]] = Counter()
        for r in rows:
            b = bucket_of(r["occurred_at"], self.width_s)
            if self.entities:
                if r["detector"] == "pii":
                    for etype, n in entity_counts(r.get("evidence")).items():
                        out[(r["tenant"], b, r["model"], etype)] += n
            else:
                out[(r["tenant"], b, *(r[k] if k != "severity" else int(r[k]) for k in self.keys[1:]))] += 1
        return out

    def _where(self, start: datetime, end: datetime, tenants: Sequence[str] | None) -> list[Any]:
        conds = [_F.c.occurred_at >= start, _F.c.occurred_at < end]
        if tenants is not None:
            conds.append(_F.c.tenant.in_(list(tenants)))
        if self.entities:
            conds.append(_F.c.detector == "pii")
        return conds

    def _from_findings(self, conn: Connection, start: datetime, end: datetime,
                       tenants: Sequence[str] | None) -> Counter[tuple[Any, ...]]:
        """Tally the findings in [start, end) (by key without ``bucket``)."""
        out: Counter[tuple[Any, ...]] = Counter()
        if self.entities:  # the entity counts live in JSON: read the two fields, tally in Python
            ev = _F.c.evidence
            stmt = select(_F.c.tenant, _F.c.model, ev["counts"], ev["entity_types"]).where(
                *self._where(start, end, tenants))
            for tenant, model, counts, types in conn.execute(stmt.execution_options(yield_per=5000)):
                for etype, n in entity_counts({"counts": counts, "entity_types": types}).items():
                    out[(tenant, model, etype)] += n
            return out
        cols = [_F.c[k] for k in self.keys]
        stmt = select(*cols, func.count()).where(*self._where(start, end, tenants)).group_by(*cols)
        for row in conn.execute(stmt):
            out[tuple(row[:-1])] += int(row[-1])
        return out

    def totals(self, conn: Connection, start: datetime, end: datetime,
               tenants: Sequence[str] | None = None) -> Counter[tuple[Any, ...]]:
        """Exact counts over [start, end) by key (:attr:`keys`, no bucket): the buckets wholly inside from the
        rollup, the partial ones at the ends from ``findings``."""
        lo, hi = _ceil(start, self.width_s), _floor(end, self.width_s)
        if lo >= hi:  # no whole bucket inside
            return self._from_findings(conn, start, end, tenants)
        t = self.table
        cols = [t.c[k] for k in self.keys]
        conds = [t.c.bucket >= lo, t.c.bucket < hi]
        if tenants is not None:
            conds.append(t.c.tenant.in_(list(tenants)))
        out: Counter[tuple[Any, ...]] = Counter()
        for row in conn.execute(select(*cols, func.sum(t.c.n)).where(*conds).group_by(*cols)):
            out[tuple(row[:-1])] += int(row[-1])
        if _aware(start) < _at(lo):
            out.update(self._from_findings(conn, start, _at(lo), tenants))
        if _at(hi) < _aware(end):
            out.update(self._from_findings(conn, _at(hi), end, tenants))
        return out

    def recount(self, conn: Connection, start: datetime | None = None, end: datetime | None = None) -> None:
        """Rebuild the buckets that [start, end) touches (None: from the first / to the last finding) from
        ``findings``."""
        t = self.table
        lo = _floor(start, self.width_s) if start is not None else None
        hi = _ceil(end, self.width_s) if end is not None else None
        span = [c for c in ((t.c.bucket >= lo) if lo is not None else None,
                            (t.c.bucket < hi) if hi is not None else None) if c is not None]
        conn.execute(delete(t).where(*span))
        when = [c for c in ((_F.c.occurred_at >= _at(lo)) if lo is not None else None,
                            (_F.c.occurred_at < _at(hi)) if hi is not None else None) if c is not None]
        if self.entities:
            ev = _F.c.evidence
            stmt = select(_F.c.tenant, _F.c.model, _F.c.occurred_at, ev["counts"], ev["entity_types"]).where(
                _F.c.detector == "pii", *when)
            tally: Counter[tuple[Any, ...]] = Counter()
            rows: Any = conn.execute(stmt.execution_options(yield_per=5000))
            for tenant, model, at, counts, types in rows:
                b = bucket_of(at, self.width_s)
                for etype, n in entity_counts({"counts": counts, "entity_types": types}).items():
                    tally[(tenant, b, model, etype)] += n
            self._write(conn, tally, sign=1)
            return
        bucket = bucket_sql(conn.dialect.name, _F.c.occurred_at, self.width_s)
        keyed = [_F.c[self.keys[0]], bucket, *(_F.c[k] for k in self.keys[1:])]
        select_ = select(*keyed, func.count()).where(*when).group_by(*keyed)
        conn.execute(t.insert().from_select([*self.columns, "n"], select_))

    def _write(self, conn: Connection, tally: Counter[tuple[Any, ...]], sign: int) -> None:
        """Add (``sign`` 1) or subtract (-1) a tally; rows that reach zero are deleted. Keys go in sorted
        order, so two transactions touching the same buckets lock them in the same order."""
        items = sorted((k, n) for k, n in tally.items() if n)
        if not items:
            return
        names = self.columns
        if sign > 0:
            rows = [dict(zip(names, k, strict=True), n=n) for k, n in items]
            if conn.dialect.name == "postgresql":  # one statement, whatever the number of rows
                unnest_add(conn, self.table, names, "n", rows)
            else:
                conn.execute(_upsert(conn, self.table, names), rows)
            return
        t = self.table
        match = and_(*(t.c[c] == bindparam(f"k_{c}") for c in names))
        params = [{**{f"k_{c}": v for c, v in zip(names, k, strict=True)}, "d": n} for k, n in items]
        conn.execute(update(t).where(match).values(n=t.c.n - bindparam("d")), params)
        keys = [k for k, _ in items]
        for i in range(0, len(keys), 500):
            conn.execute(delete(t).where(tuple_(*(t.c[c] for c in names)).in_(keys[i:i + 500]), t.c.n <= 0))


def _floor(at: datetime, width_s: int) -> int:
    return bucket_of(at, width_s)


def _ceil(at: datetime, width_s: int) -> int:
    b = bucket_of(at, width_s)
    return b if _at(b) == _aware(at) else b + width_s


HOURLY = Rollup(FindingCountRow.__table__, HOUR, ("tenant", "detector", "severity"))  # type: ignore[attr-defined]
DAILY = Rollup(FindingDailyCountRow.__table__, DAY,  # type: ignore[attr-defined]
               ("tenant", "model", "detector", "kind", "severity"))
PII_ENTITIES = Rollup(PiiEntityCountRow.__table__, DAY, ("tenant", "model", "entity_type"), entities=True)  # type: ignore[attr-defined]
ROLLUPS: tuple[Rollup, ...] = (HOURLY, DAILY, PII_ENTITIES)


def add(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Count findings just stored (rows of ``findings`` as dicts, each stored for the first time)."""
    if rows:
        for rollup in ROLLUPS:
            rollup._write(conn, rollup.tally(rows), sign=1)


def subtract(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Uncount findings just deleted (rows with :data:`FINDING_COLUMNS`)."""
    if rows:
        for rollup in ROLLUPS:
            rollup._write(conn, rollup.tally(rows), sign=-1)


def after_purge(conn: Connection, cutoff: datetime) -> None:
    """Follow a purge of the findings before ``cutoff``: drop the buckets wholly before it, recount the one
    it falls in. (A finding inserted into that bucket while the purge runs may be miscounted there until a
    later purge drops the bucket; a finding ``cutoff`` old arriving during the purge is all that can.)"""
    for rollup in ROLLUPS:
        conn.execute(delete(rollup.table).where(rollup.table.c.bucket < _floor(cutoff, rollup.width_s)))
        if _floor(cutoff, rollup.width_s) != _ceil(cutoff, rollup.width_s):
            rollup.recount(conn, cutoff, cutoff)


def recount(conn: Connection, start: datetime | None = None, end: datetime | None = None) -> None:
    """Rebuild every rollup over [start, end) (None: all of it) from ``findings``."""
    for rollup in ROLLUPS:
        rollup.recount(conn, start, end)
