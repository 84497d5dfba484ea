"""owed notices on subscribers

The confirmation, already-subscribed or welcome email a reader is owed, recorded in the transaction that owes it and cleared once the task queue has it, so
that a broker outage after the commit delays the email instead of losing it (the sweep rings
again for records older than a minute)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 11:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('subscribers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notice_owed', sa.Enum('confirmation', 'already_subscribed', 'welcome', name='owed_notice', native_enum=False, length=24), nullable=True))
        batch_op.add_column(sa.Column('notice_owed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_subscribers_notice_owed_at'), ['notice_owed_at'], unique=False)


def downgrade():
    with op.batch_alter_table('subscribers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscribers_notice_owed_at'))
        batch_op.drop_column('notice_owed_at')
        batch_op.drop_column('notice_owed')
