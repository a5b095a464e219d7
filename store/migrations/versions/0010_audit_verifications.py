"""What the last audit-chain verifications found: the last full walk and the verified checkpoint
(governance.audit), so the console verifies only the entries after the checkpoint.

Revision ID: 0010_audit_verifications
Revises: 0009_finding_rollups
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_audit_verifications"
down_revision = "0009_finding_rollups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_verifications",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("checked", sa.Integer(), nullable=False),
        sa.Column("head_seq", sa.Integer(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("first_broken_seq", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("kind"),
    )


def downgrade() -> None:
    op.drop_table("audit_verifications")
