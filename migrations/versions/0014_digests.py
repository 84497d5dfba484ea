"""digests

How often each reader hears from the list (immediately, daily or weekly), also in the consent
ledger's rows; digest runs as
releases of kind "digest", one per frequency and due time; delivery rows held for a reader's
next digest, and the digest run that took each

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 09:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    # How often, in the consent ledger's rows too (the choices an act left the reader with).
    # A plain ADD COLUMN: a rebuild of consent_records would drop its append-only triggers.
    op.add_column('consent_records', sa.Column('frequency', sa.String(length=12), nullable=True))
    with op.batch_alter_table('subscribers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('frequency', sa.Enum('immediately', 'daily', 'weekly', name='frequency', native_enum=False, length=12), nullable=False, server_default='immediately'))
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.Enum('release', 'digest', name='release_kind', native_enum=False, length=12), nullable=False, server_default='release'))
        batch_op.add_column(sa.Column('digest_frequency', sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column('digest_due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_releases_digest_frequency'), ['digest_frequency', 'digest_due_at'])
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('digest_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_deliveries_digest_id_releases'), 'releases', ['digest_id'], ['id'], ondelete='SET NULL')
        batch_op.create_index('ix_deliveries_status_subscriber', ['status', 'subscriber_id'], unique=False)
        batch_op.create_index('ix_deliveries_listed', ['digest_id', 'subscriber_id'], unique=False, postgresql_where=sa.text("status = 'held' AND digest_id IS NOT NULL"), sqlite_where=sa.text("status = 'held' AND digest_id IS NOT NULL"))


def downgrade():
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_listed')
        batch_op.drop_index('ix_deliveries_status_subscriber')
        batch_op.drop_constraint(batch_op.f('fk_deliveries_digest_id_releases'), type_='foreignkey')
        batch_op.drop_column('digest_id')
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_releases_digest_frequency'), type_='unique')
        batch_op.drop_column('digest_due_at')
        batch_op.drop_column('digest_frequency')
        batch_op.drop_column('kind')
    with op.batch_alter_table('subscribers', schema=None) as batch_op:
        batch_op.drop_column('frequency')
    op.drop_column('consent_records', 'frequency')
