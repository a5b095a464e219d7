"""Training history: redacted prompt/response samples and feedback labels.

Revision ID: 0005_samples
Revises: 0004_jobs
"""

from __future__ import annotations

from alembic import op

revision = "0005_samples"
down_revision = "0004_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from store.models import SampleLabelRow, SampleRow

    bind = op.get_bind()
    for table in (SampleRow.metadata.tables[str(SampleRow.__tablename__)],
                  SampleLabelRow.metadata.tables[str(SampleLabelRow.__tablename__)]):
        table.create(bind, checkfirst=True)


def downgrade() -> None:
    op.drop_table("sample_labels")
    op.drop_table("samples")
