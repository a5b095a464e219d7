"""Jobs: requests with their approval, and every status a job worker published.

Revision ID: 0004_jobs
Revises: 0003_alerting
"""

from __future__ import annotations

from alembic import op

revision = "0004_jobs"
down_revision = "0003_alerting"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from store.models import JobRow, JobStatusRow

    bind = op.get_bind()
    for table in (JobRow.metadata.tables["jobs"], JobStatusRow.metadata.tables["job_statuses"]):
        table.create(bind, checkfirst=True)


def downgrade() -> None:
    op.drop_table("job_statuses")
    op.drop_table("jobs")
