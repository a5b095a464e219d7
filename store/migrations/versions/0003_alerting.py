"""Alerting: tracking, events, silences, groups, the notification outbox and its delivery log.

The operations live with the tables in ``store.migrations.alerting`` (they skip tables that
``store.models.ensure_alerting_tables`` may already have created).

Revision ID: 0003_alerting
Revises: 0002_governance
"""

from __future__ import annotations

from store.migrations.alerting import downgrade as _down
from store.migrations.alerting import upgrade as _up

revision = "0003_alerting"
down_revision = "0002_governance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _up()


def downgrade() -> None:
    _down()
