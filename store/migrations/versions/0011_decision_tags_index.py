"""A partial index on the tag decisions of a model version (``action = 'tag'``, e.g. block-promotion).

The promotion check (registry) and the lineage (console's model page, ``/v1/lineage``) looked them up by
reading every decision of the tenant (20,000 rows, 23 ms per call in bench.console's store; linear in the
tenant's decisions). Tag decisions are few, so the index costs ingest next to nothing.

Revision ID: 0011_decision_tags_index
Revises: 0010_audit_verifications
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_decision_tags_index"
down_revision = "0010_audit_verifications"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_decisions_tags", "decisions", ["tenant", "model", "version"],
                    postgresql_where=sa.text("action = 'tag'"), sqlite_where=sa.text("action = 'tag'"))


def downgrade() -> None:
    op.drop_index("ix_decisions_tags", table_name="decisions")
