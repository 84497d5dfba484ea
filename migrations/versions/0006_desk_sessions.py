"""desk sessions: the live sign-ins to the publisher's desk, kept in the database

The desk used to remember signed-out sessions in Redis, so a Redis restart or wipe brought every
signed-out cookie back to life. Now a row is a live session (the cookie holds a random nonce, the
row only its SHA-256) and a cookie without a row is signed out. Sessions opened before this
revision have no row, so everyone signs in once more.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('desk_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('publisher_id', sa.Integer(), nullable=False),
    sa.Column('nonce_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('user_agent', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['publisher_id'], ['publishers.id'], name=op.f('fk_desk_sessions_publisher_id_publishers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_desk_sessions')),
    sa.UniqueConstraint('nonce_hash', name=op.f('uq_desk_sessions_nonce_hash'))
    )
    with op.batch_alter_table('desk_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_desk_sessions_publisher_id'), ['publisher_id'], unique=False)


def downgrade():
    with op.batch_alter_table('desk_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_desk_sessions_publisher_id'))

    op.drop_table('desk_sessions')
