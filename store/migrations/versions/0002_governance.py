"""Governance: API keys, audit trail (append-only), model registry, settings, lifecycle columns.

Revision ID: 0002_governance
Revises: 0001_spine
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002_governance'
down_revision = '0001_spine'
branch_labels = None
depends_on = None


from store.migrations.triggers import create_audit_guards, drop_audit_guards  # noqa: E402


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('prefix', sa.String(length=32), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('tenants', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('key_id'),
    sa.UniqueConstraint('prefix')
    )
    op.create_table('audit_log',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('tenant', sa.String(length=200), nullable=True),
    sa.Column('target_type', sa.String(length=64), nullable=False),
    sa.Column('target_id', sa.String(length=500), nullable=False),
    sa.Column('content', sa.String(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_action_seq', ['action', 'seq'], unique=False)
        batch_op.create_index('ix_audit_actor_seq', ['actor', 'seq'], unique=False)
        batch_op.create_index('ix_audit_target_seq', ['target_id', 'seq'], unique=False)
        batch_op.create_index('ix_audit_at_seq', ['at', 'seq'], unique=False)
        batch_op.create_index('ix_audit_tenant_seq', ['tenant', 'seq'], unique=False)
        batch_op.create_index('ix_audit_tenant_action_seq', ['tenant', 'action', 'seq'], unique=False)

    op.create_table('governance_settings',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('value', sa.JSON(), nullable=False),
    sa.Column('updated_by', sa.String(length=200), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('model_alias_history',
    sa.Column('switch_id', sa.String(length=64), nullable=False),
    sa.Column('tenant', sa.String(length=200), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('alias', sa.String(length=100), nullable=False),
    sa.Column('from_version', sa.String(length=200), nullable=True),
    sa.Column('to_version', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.String(), nullable=False),
    sa.Column('switched_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('switch_id')
    )
    with op.batch_alter_table('model_alias_history', schema=None) as batch_op:
        batch_op.create_index('ix_alias_history_lookup', ['tenant', 'model', 'alias', 'switched_at'], unique=False)
        batch_op.create_index('ix_alias_history_tenant_time', ['tenant', 'switched_at'], unique=False)

    op.create_table('model_aliases',
    sa.Column('tenant', sa.String(length=200), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('alias', sa.String(length=100), nullable=False),
    sa.Column('version', sa.String(length=200), nullable=False),
    sa.Column('updated_by', sa.String(length=200), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'model', 'alias')
    )
    op.create_table('model_versions',
    sa.Column('tenant', sa.String(length=200), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('version', sa.String(length=200), nullable=False),
    sa.Column('artifact_uri', sa.String(length=2000), nullable=False),
    sa.Column('parent_version', sa.String(length=200), nullable=True),
    sa.Column('dataset_ref', sa.String(length=2000), nullable=True),
    sa.Column('metrics', sa.JSON(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('job_id', sa.String(length=200), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'model', 'version')
    )
    op.create_table('registered_models',
    sa.Column('tenant', sa.String(length=200), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.String(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('tenant', 'name')
    )


    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.CheckConstraint('id = 1', name='ck_audit_head_single_row')
    )
    op.execute("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '" + "0" * 64 + "')")
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_hash', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_findings_user_hash', ['user_hash'], unique=False)
        batch_op.create_index('ix_findings_occurred_at', ['occurred_at'], unique=False)
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('acknowledged_by', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('resolved_by', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('silenced_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_alerts_tenant_last_seen', ['tenant', 'last_seen'], unique=False)
    create_audit_guards(op.get_bind())


def downgrade() -> None:
    drop_audit_guards(op.get_bind())
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_tenant_last_seen')
        for col in ('silenced_until', 'resolved_by', 'resolved_at', 'acknowledged_by', 'acknowledged_at'):
            batch_op.drop_column(col)
    with op.batch_alter_table('findings', schema=None) as batch_op:
        batch_op.drop_index('ix_findings_occurred_at')
        batch_op.drop_index('ix_findings_user_hash')
        batch_op.drop_column('user_hash')
    op.drop_table('registered_models')
    op.drop_table('model_versions')
    op.drop_table('model_aliases')
    op.drop_table('model_alias_history')
    op.drop_table('governance_settings')
    op.drop_table('audit_log')
    op.drop_table('api_keys')
    op.drop_table('audit_head')
