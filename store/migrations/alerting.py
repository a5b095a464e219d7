"""Schema of the alerting tables (``governance.alerting``) as Alembic operations.

A revision file calls these (like ``0002_governance`` calls ``store.migrations.triggers``)::

    from store.migrations.alerting import downgrade as _down, upgrade as _up
    def upgrade() -> None: _up()
    def downgrade() -> None: _down()

``upgrade`` skips tables that already exist, so a database where ``ensure_alerting_tables`` ran
before the revision existed upgrades cleanly.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

TABLES = ("alert_delivery_log", "alert_events", "alert_groups", "alert_outbox", "alert_silences", "alert_tracking")


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if 'alert_delivery_log' not in existing:
        op.create_table('alert_delivery_log',
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('outbox_id', sa.Integer(), nullable=False),
        sa.Column('delivery_id', sa.String(length=64), nullable=False),
        sa.Column('destination', sa.String(length=200), nullable=False),
        sa.Column('alert_id', sa.String(length=64), nullable=False),
        sa.Column('tenant', sa.String(length=200), nullable=False),
        sa.Column('event', sa.String(length=16), nullable=False),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('outcome', sa.String(length=16), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=True),
        sa.Column('error', sa.String(), nullable=True),
        sa.Column('latency_ms', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('seq')
        )
        with op.batch_alter_table('alert_delivery_log', schema=None) as batch_op:
            batch_op.create_index('ix_alert_delivery_log_destination', ['destination', 'seq'], unique=False)
            batch_op.create_index('ix_alert_delivery_log_outbox', ['outbox_id'], unique=False)

    if 'alert_events' not in existing:
        op.create_table('alert_events',
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('alert_id', sa.String(length=64), nullable=False),
        sa.Column('tenant', sa.String(length=200), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('detail', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('seq')
        )
        with op.batch_alter_table('alert_events', schema=None) as batch_op:
            batch_op.create_index('ix_alert_events_alert_seq', ['alert_id', 'seq'], unique=False)

    if 'alert_groups' not in existing:
        op.create_table('alert_groups',
        sa.Column('destination', sa.String(length=200), nullable=False),
        sa.Column('group_key', sa.String(length=500), nullable=False),
        sa.Column('next_flush_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_flush_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('destination', 'group_key')
        )

    if 'alert_outbox' not in existing:
        op.create_table('alert_outbox',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('delivery_id', sa.String(length=64), nullable=False),
        sa.Column('destination', sa.String(length=200), nullable=False),
        sa.Column('alert_id', sa.String(length=64), nullable=False),
        sa.Column('tenant', sa.String(length=200), nullable=False),
        sa.Column('event', sa.String(length=16), nullable=False),
        sa.Column('group_key', sa.String(length=500), nullable=True),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_status_code', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.String(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('delivery_id')
        )
        with op.batch_alter_table('alert_outbox', schema=None) as batch_op:
            batch_op.create_index('ix_alert_outbox_due', ['destination', 'status', 'next_attempt_at'], unique=False)
            batch_op.create_index('ix_alert_outbox_order', ['destination', 'alert_id', 'status'], unique=False)

    if 'alert_silences' not in existing:
        op.create_table('alert_silences',
        sa.Column('silence_id', sa.String(length=64), nullable=False),
        sa.Column('tenant', sa.String(length=200), nullable=False),
        sa.Column('matchers', sa.JSON(), nullable=False),
        sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('reason', sa.String(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expired_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('expired_by', sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint('silence_id')
        )
        with op.batch_alter_table('alert_silences', schema=None) as batch_op:
            batch_op.create_index('ix_alert_silences_tenant_ends', ['tenant', 'ends_at'], unique=False)

    if 'alert_tracking' not in existing:
        op.create_table('alert_tracking',
        sa.Column('alert_id', sa.String(length=64), nullable=False),
        sa.Column('tenant', sa.String(length=200), nullable=False),
        sa.Column('labels', sa.JSON(), nullable=False),
        sa.Column('episode', sa.Integer(), nullable=False),
        sa.Column('destinations', sa.JSON(), nullable=False),
        sa.Column('suppressed', sa.Boolean(), nullable=False),
        sa.Column('notified_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('escalation_step', sa.Integer(), nullable=False),
        sa.Column('next_renotify_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('next_escalation_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('alert_id')
        )
        with op.batch_alter_table('alert_tracking', schema=None) as batch_op:
            batch_op.create_index('ix_alert_tracking_escalation', ['next_escalation_at'], unique=False)
            batch_op.create_index('ix_alert_tracking_renotify', ['next_renotify_at'], unique=False)
            batch_op.create_index('ix_alert_tracking_suppressed', ['suppressed'], unique=False)


def downgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name in TABLES:
        if name in existing:
            op.drop_table(name)
