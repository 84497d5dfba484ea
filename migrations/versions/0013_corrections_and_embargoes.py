"""corrections and embargoes

A release may correct an earlier, sent one (`corrects_id`: emailed only to the readers who got
that one, threaded to it) and may be embargoed (`embargo_until`: its page, feed entry and email
stay closed, and publishing is refused, until then)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('embargo_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('corrects_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_releases_corrects_id'), ['corrects_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_releases_corrects_id_releases'), 'releases', ['corrects_id'], ['id'], ondelete='RESTRICT')


def downgrade():
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_releases_corrects_id_releases'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_releases_corrects_id'))
        batch_op.drop_column('corrects_id')
        batch_op.drop_column('embargo_until')
