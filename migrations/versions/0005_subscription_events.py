"""subscription events: an anonymous log of readers joining and leaving, for the desk's charts

Each row is one move into or out of the confirmed list (no subscriber id, no address), so the
history outlives re-subscription and erasure. Existing installs are backfilled from what the
subscribers table still knows: a join at confirmed_at, and for a reader no longer confirmed a
departure at unsubscribed_at (a bounce at the row's last change, as no bounce time is kept).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 14:53:33.646225
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('subscription_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.Enum('confirmed', 'unsubscribed', 'bounced', 'erased', name='subscription_event_kind', native_enum=False, length=16), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('release_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['release_id'], ['releases.id'], name=op.f('fk_subscription_events_release_id_releases'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscription_events'))
    )
    with op.batch_alter_table('subscription_events', schema=None) as batch_op:
        batch_op.create_index('ix_subscription_events_occurred_kind', ['occurred_at', 'kind'], unique=False)
        batch_op.create_index('ix_subscription_events_release_kind', ['release_id', 'kind'], unique=False)

    op.execute(
        "INSERT INTO subscription_events (kind, occurred_at) "
        "SELECT 'confirmed', confirmed_at FROM subscribers "
        "WHERE confirmed_at IS NOT NULL ORDER BY confirmed_at, id"
    )
    op.execute(
        "INSERT INTO subscription_events (kind, occurred_at) "
        "SELECT CASE WHEN status = 'bounced' THEN 'bounced' ELSE 'unsubscribed' END, "
        "CASE WHEN status = 'bounced' THEN updated_at "
        "ELSE COALESCE(unsubscribed_at, updated_at) END "
        "FROM subscribers WHERE confirmed_at IS NOT NULL AND status <> 'confirmed' "
        "ORDER BY COALESCE(unsubscribed_at, updated_at), id"
    )


def downgrade():
    with op.batch_alter_table('subscription_events', schema=None) as batch_op:
        batch_op.drop_index('ix_subscription_events_release_kind')
        batch_op.drop_index('ix_subscription_events_occurred_kind')

    op.drop_table('subscription_events')
