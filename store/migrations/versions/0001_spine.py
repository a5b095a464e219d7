"""The stream spine's tables: findings, decisions, alerts, dead letters.

Revision ID: 0001_spine
Revises: -
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001_spine'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alerts',
    sa.Column('alert_id', sa.String(length=64), nullable=False),
    sa.Column('dedup_key', sa.String(length=500), nullable=False),
    sa.Column('tenant', sa.String(length=200), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('severity', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('summary', sa.String(), nullable=False),
    sa.Column('route', sa.String(length=200), nullable=True),
    sa.Column('policy_id', sa.String(length=200), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('last_decision_id', sa.String(length=64), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('alert_id')
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alerts_last_seen'), ['last_seen'], unique=False)
        batch_op.create_index('ix_alerts_tenant_status', ['tenant', 'status'], unique=False)

    op.create_table('dead_letters',
    sa.Column('dlq_id', sa.String(length=64), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.String(), nullable=False),
    sa.Column('source_topic', sa.String(length=200), nullable=False),
    sa.Column('partition', sa.Integer(), nullable=True),
    sa.Column('offset', sa.Integer(), nullable=True),
    sa.Column('event_id', sa.String(length=200), nullable=True),
    sa.Column('original_size', sa.Integer(), nullable=False),
    sa.Column('original_sha256', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('dlq_id')
    )
    with op.batch_alter_table('dead_letters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dead_letters_code'), ['code'], unique=False)
        batch_op.create_index(batch_op.f('ix_dead_letters_received_at'), ['received_at'], unique=False)

    op.create_table('decisions',
    sa.Column('decision_id', sa.String(length=64), nullable=False),
    sa.Column('policy_id', sa.String(length=200), nullable=False),
    sa.Column('policy_version', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('tenant', sa.String(length=200), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('version', sa.String(length=200), nullable=True),
    sa.Column('severity', sa.Integer(), nullable=False),
    sa.Column('summary', sa.String(), nullable=False),
    sa.Column('detector', sa.String(length=64), nullable=True),
    sa.Column('dedup_key', sa.String(length=500), nullable=True),
    sa.Column('route', sa.String(length=200), nullable=True),
    sa.Column('finding_ids', sa.JSON(), nullable=False),
    sa.Column('job', sa.JSON(), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('decision_id')
    )
    with op.batch_alter_table('decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_decisions_dedup_key'), ['dedup_key'], unique=False)
        batch_op.create_index(batch_op.f('ix_decisions_policy_id'), ['policy_id'], unique=False)
        batch_op.create_index('ix_decisions_tenant_time', ['tenant', 'created_at'], unique=False)

    op.create_table('findings',
    sa.Column('finding_id', sa.String(length=64), nullable=False),
    sa.Column('detector', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('tenant', sa.String(length=200), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('version', sa.String(length=200), nullable=True),
    sa.Column('severity', sa.Integer(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('summary', sa.String(), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=True),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('window_end', sa.DateTime(timezone=True), nullable=True),
    sa.Column('window_n', sa.Integer(), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('finding_id')
    )
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_findings_detector'), ['detector'], unique=False)
        batch_op.create_index(batch_op.f('ix_findings_event_id'), ['event_id'], unique=False)
        batch_op.create_index('ix_findings_model_time', ['model', 'occurred_at'], unique=False)
        batch_op.create_index('ix_findings_tenant_time', ['tenant', 'occurred_at'], unique=False)



def downgrade() -> None:
    op.drop_table('findings')
    op.drop_table('decisions')
    op.drop_table('dead_letters')
    op.drop_table('alerts')
