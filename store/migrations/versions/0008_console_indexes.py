"""Indexes the console's pages need with millions of findings (measured by bench.console).

- ``ix_findings_model_detector_time`` (tenant, model, detector, occurred_at): one model's findings of one
  detector, newest first (model page: drift, fairness, anomalies, training runs; lineage; drift report).
- ``ix_findings_occurred_at`` and ``ix_findings_tenant_time`` carry ``detector`` (and ``tenant``) as INCLUDE
  columns on PostgreSQL, so counting findings per detector over time reads the index only.

Revision ID: 0008_console_indexes
Revises: 0007_console_sessions
"""

from __future__ import annotations

from alembic import op

revision = "0008_console_indexes"
down_revision = "0007_console_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_findings_model_detector_time", "findings", ["tenant", "model", "detector", "occurred_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_findings_occurred_at", table_name="findings")
        op.create_index("ix_findings_occurred_at", "findings", ["occurred_at"], postgresql_include=["detector", "tenant"])
        op.drop_index("ix_findings_tenant_time", table_name="findings")
        op.create_index("ix_findings_tenant_time", "findings", ["tenant", "occurred_at"], postgresql_include=["detector"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_findings_tenant_time", table_name="findings")
        op.create_index("ix_findings_tenant_time", "findings", ["tenant", "occurred_at"])
        op.drop_index("ix_findings_occurred_at", table_name="findings")
        op.create_index("ix_findings_occurred_at", "findings", ["occurred_at"])
    op.drop_index("ix_findings_model_detector_time", table_name="findings")
