"""Bulk inserts for PostgreSQL through ``unnest()``: one statement text per table, whatever the batch size.

A multi-row ``VALUES`` insert has rows × columns bind parameters, so every batch size is a new statement
text that psycopg converts afresh and the server parses and plans afresh; a plain ``executemany`` sends
one statement per row. Here each column travels as one array parameter, so a batch is one statement
whose text depends on the table (and the columns given) alone, and psycopg prepares it on the server
after a few uses::

    INSERT INTO finding (finding_id, …, evidence, …)
    SELECT u.finding_id, …, CAST(u.evidence AS JSON), …
    FROM unnest(CAST(:c0 AS VARCHAR(64)[]), …, CAST(:c9 AS TEXT[]), …) AS u(finding_id, …)
    ON CONFLICT (finding_id) DO NOTHING RETURNING finding_id

JSON columns travel as text (serialised here as SQLAlchemy's JSON type would) and are cast back per row.
A column some rows leave out gets its Python-side default, as a Core insert would give it; a column no
row gives and without such a default is left to the server (an identity column, a server default).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, Table, text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.elements import TextClause

__all__ = ["unnest_add", "unnest_insert"]


@lru_cache(maxsize=128)
def _statement(table: Table, names: tuple[str, ...], key: str | None, dialect: Dialect) -> TextClause:
    """The statement inserting ``names`` of ``table`` (cached: its text never changes)."""
    quote = dialect.identifier_preparer.quote
    arrays, selected = [], []
    for i, name in enumerate(names):
        col = table.c[name]
        is_json = isinstance(col.type, JSON)
        arrays.append(f"CAST(:c{i} AS {'TEXT' if is_json else col.type.compile(dialect=dialect)}[])")
        selected.append(f"CAST(u.{quote(name)} AS JSON)" if is_json else f"u.{quote(name)}")
    cols = ", ".join(quote(n) for n in names)
    sql = (f"INSERT INTO {quote(table.name)} ({cols}) SELECT {', '.join(selected)} "
           f"FROM unnest({', '.join(arrays)}) AS u({cols})")
    if key is not None:
        sql += f" ON CONFLICT ({quote(key)}) DO NOTHING RETURNING {quote(key)}"
    return text(sql)


def _values(table: Table, name: str, rows: list[dict[str, Any]]) -> list[Any]:
    """The column's values, with its Python-side default (called once per row) where a row has none."""
    if all(name in r for r in rows):
        values = [r[name] for r in rows]
    else:
        default: Any = table.c[name].default  # a ColumnDefault (scalar or callable) where set
        if default is None:
            values = [r.get(name) for r in rows]
        elif default.is_callable:  # SQLAlchemy wraps zero-argument callables to take an execution context
            values = [r[name] if name in r else default.arg(None) for r in rows]
        else:
            values = [r.get(name, default.arg) for r in rows]
    if isinstance(table.c[name].type, JSON):
        return [json.dumps(v) for v in values]  # None is stored as JSON null, as SQLAlchemy's JSON does
    return values


def unnest_insert(conn: Connection, table: Table, rows: list[dict[str, Any]], key: str | None = None) -> set[str]:
    """Insert ``rows`` into ``table`` in one statement (PostgreSQL only). With ``key`` (the rows' values
    of it distinct), rows whose key is already stored are skipped and the keys that were new come back;
    without, every row is inserted and the result is empty."""
    if not rows:
        return set()
    given = set().union(*rows)
    names = tuple(c.name for c in table.columns if c.name in given or table.c[c.name].default is not None)
    stmt = _statement(table, names, key, conn.dialect)
    result = conn.execute(stmt, {f"c{i}": _values(table, n, rows) for i, n in enumerate(names)})
    return {r[0] for r in result} if key is not None else set()


@lru_cache(maxsize=32)
def _add_statement(table: Table, keys: tuple[str, ...], counter: str, dialect: Dialect) -> TextClause:
    quote = dialect.identifier_preparer.quote
    names = (*keys, counter)
    arrays = ", ".join(f"CAST(:c{i} AS {table.c[n].type.compile(dialect=dialect)}[])" for i, n in enumerate(names))
    cols = ", ".join(quote(n) for n in names)
    t, c = quote(table.name), quote(counter)
    return text(f"INSERT INTO {t} ({cols}) SELECT * FROM unnest({arrays}) AS u({cols}) "
                f"ON CONFLICT ({', '.join(quote(k) for k in keys)}) DO UPDATE SET {c} = {t}.{c} + excluded.{c}")


def unnest_add(conn: Connection, table: Table, keys: tuple[str, ...], counter: str, rows: list[dict[str, Any]]) -> None:
    """Add each row's ``counter`` to the stored row with the same ``keys`` (inserting it where there is none),
    in one statement (PostgreSQL only). The rows' keys must be distinct (one statement cannot update a row
    twice); rows in key order lock in the same order in every transaction."""
    if rows:
        names = (*keys, counter)
        conn.execute(_add_statement(table, keys, counter, conn.dialect),
                     {f"c{i}": [r[n] for r in rows] for i, n in enumerate(names)})
