"""confirmation invitations

When an imported reader still waiting for confirmation was last invited to confirm (the
desk's button or `flask subscribers invite`; one time for the whole round) and when the worker
sent that invitation (empty while it waits for its turn under SEND_RATE)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 13:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('subscribers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('invited_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('invitation_sent_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_subscribers_invited_at'), ['invited_at'], unique=False)


def downgrade():
    with op.batch_alter_table('subscribers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscribers_invited_at'))
        batch_op.drop_column('invitation_sent_at')
        batch_op.drop_column('invited_at')
