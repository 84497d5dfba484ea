"""deliveries indexed by release, status and id: a claim reads the next due rows in order

A claim asks for the first pending rows of a release by id. With (release_id, status) alone,
PostgreSQL walked the primary key past every row already sent, so each claim cost more as a
large send went on.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 15:00:00
"""
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_release_status')
        batch_op.create_index(
            'ix_deliveries_release_status', ['release_id', 'status', 'id'], unique=False
        )


def downgrade():
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_release_status')
        batch_op.create_index('ix_deliveries_release_status', ['release_id', 'status'], unique=False)
