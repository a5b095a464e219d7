"""Rollups of the findings (store.rollups), counted from the findings already stored.

- ``finding_counts``: tenant × detector × severity per hour (the console's overview);
- ``finding_counts_daily``: tenant × model × detector × kind × severity per day (the compliance report);
- ``pii_entity_counts``: tenant × model × entity type per day, from the ``pii`` findings' evidence.

Buckets are Unix seconds (UTC) of the hour's or day's start. The backfill is written out here (not called
from store.rollups) so that this revision keeps doing what it did when later code changes.

Revision ID: 0009_finding_rollups
Revises: 0008_console_indexes
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009_finding_rollups"
down_revision = "0008_console_indexes"
branch_labels = None
depends_on = None


def _bucket(dialect: str, width_s: int) -> str:
    if dialect == "postgresql":
        return f"CAST(floor(EXTRACT(epoch FROM occurred_at) / {width_s}) AS BIGINT) * {width_s}"
    return f"(CAST(strftime('%s', occurred_at) AS INTEGER) / {width_s}) * {width_s}"


def _entities(counts: Any, types: Any) -> Counter[str]:
    out: Counter[str] = Counter()
    if isinstance(counts, Mapping) and counts:
        for etype, n in counts.items():
            value = int(n) if isinstance(n, (int, float)) and math.isfinite(n) else 1
            if value > 0:
                out[str(etype)[:64]] += value
    elif isinstance(types, list):
        for etype in types:
            out[str(etype)[:64]] += 1
    return out


def _backfill() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    hour, day = _bucket(dialect, 3600), _bucket(dialect, 86400)
    bind.execute(sa.text(
        f"INSERT INTO finding_counts (tenant, bucket, detector, severity, n) SELECT tenant, {hour}, detector, severity, "
        f"count(*) FROM findings GROUP BY tenant, {hour}, detector, severity"))
    bind.execute(sa.text(
        f"INSERT INTO finding_counts_daily (tenant, bucket, model, detector, kind, severity, n) SELECT tenant, {day}, "
        f"model, detector, kind, severity, count(*) FROM findings GROUP BY tenant, {day}, model, detector, kind, severity"))
    findings = sa.table("findings", sa.column("tenant"), sa.column("model"), sa.column("detector"),
                        sa.column("occurred_at", sa.DateTime(timezone=True)), sa.column("evidence", sa.JSON))
    ev = findings.c.evidence
    stmt = sa.select(findings.c.tenant, findings.c.model, findings.c.occurred_at, ev["counts"], ev["entity_types"]).where(
        findings.c.detector == "pii").execution_options(yield_per=5000)
    tally: Counter[tuple[Any, ...]] = Counter()
    for tenant, model, at, counts, types in bind.execute(stmt):
        at = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
        ts = math.floor((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp())
        for etype, n in _entities(counts, types).items():
            tally[(tenant, ts - ts % 86400, model, etype)] += n
    rows = [{"tenant": t, "bucket": b, "model": m, "entity_type": e, "n": n} for (t, b, m, e), n in sorted(tally.items())]
    table = sa.table("pii_entity_counts", *(sa.column(c) for c in ("tenant", "bucket", "model", "entity_type", "n")))
    for i in range(0, len(rows), 5000):
        bind.execute(table.insert(), rows[i:i + 5000])


def upgrade() -> None:
    op.create_table(
        "finding_counts",
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("bucket", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("detector", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "bucket", "detector", "severity"),
    )
    op.create_index("ix_finding_counts_bucket", "finding_counts", ["bucket"], unique=False)
    op.create_table(
        "finding_counts_daily",
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("bucket", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("detector", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "bucket", "model", "detector", "kind", "severity"),
    )
    op.create_table(
        "pii_entity_counts",
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("bucket", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("entity_type", sa.String(length=64), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "bucket", "model", "entity_type"),
    )
    _backfill()


def downgrade() -> None:
    op.drop_table("pii_entity_counts")
    op.drop_table("finding_counts_daily")
    op.drop_index("ix_finding_counts_bucket", table_name="finding_counts")
    op.drop_table("finding_counts")
