"""Dead letters carry the tenant their payload names, so tenant-scoped keys can read their own.

Revision ID: 0006_dead_letter_tenant
Revises: 0005_samples
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_dead_letter_tenant"
down_revision = "0005_samples"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tenant", sa.String(length=200), nullable=True))
        batch_op.create_index(batch_op.f("ix_dead_letters_tenant"), ["tenant"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dead_letters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dead_letters_tenant"))
        batch_op.drop_column("tenant")
