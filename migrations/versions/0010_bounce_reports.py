"""bounce reports

Bounces, complaints and refusals as the policy took them (service/models/bounce_report.py),
report mails waiting for a worker, when a reader's last bounce was scored (for the score's
decay), the release a suppression came from, and the send guards that paused a release or
that a resume waived

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 23:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'bounce_reports',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('report_key', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.Enum('hard_bounce', 'soft_bounce', 'complaint', 'refusal', name='report_kind', native_enum=False, length=16), nullable=False),
        sa.Column('door', sa.Enum('smtp', 'file', 'ses', 'postmark', 'mailgun', 'sendgrid', 'generic', name='report_door', native_enum=False, length=16), nullable=False),
        sa.Column('outcome', sa.Enum('suppressed', 'scored', 'unsubscribed', 'counted', 'unchanged', name='report_outcome', native_enum=False, length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=True),
        sa.Column('release_id', sa.Integer(), nullable=True),
        sa.Column('subscriber_id', sa.Integer(), nullable=True),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['release_id'], ['releases.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('report_key'),
    )
    with op.batch_alter_table('bounce_reports', schema=None) as batch_op:
        batch_op.create_index('ix_bounce_reports_release_kind', ['release_id', 'kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_bounce_reports_subscriber_id'), ['subscriber_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bounce_reports_received_at'), ['received_at'], unique=False)
    op.create_table(
        'incoming_reports',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('door', sa.Enum('smtp', 'file', 'ses', 'postmark', 'mailgun', 'sendgrid', 'generic', name='report_door', native_enum=False, length=16), nullable=False),
        sa.Column('message', sa.LargeBinary(), nullable=False),
        sa.Column('recipients', sa.Text(), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('incoming_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incoming_reports_received_at'), ['received_at'], unique=False)
    with op.batch_alter_table('subscribers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_bounce_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pause_guard', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('guards_waived', sa.String(length=40), nullable=False, server_default=''))
    op.create_table(
        'suppression_lifts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('email_hash', sa.String(length=64), nullable=False),
        sa.Column('reason', sa.Enum('erased', 'bounced', 'complained', name='suppression_reason', native_enum=False, length=16), nullable=False),
        sa.Column('suppressed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('lifted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('lifted_by_id', sa.Integer(), nullable=True),
        sa.Column('note', sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(['lifted_by_id'], ['publishers.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('suppression_lifts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_suppression_lifts_email_hash'), ['email_hash'], unique=False)
    with op.batch_alter_table('suppressions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('release_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_suppressions_release_id_releases', 'releases', ['release_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('suppressions', schema=None) as batch_op:
        batch_op.drop_constraint('fk_suppressions_release_id_releases', type_='foreignkey')
        batch_op.drop_column('release_id')
        batch_op.drop_column('email')
    with op.batch_alter_table('suppression_lifts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_suppression_lifts_email_hash'))
    op.drop_table('suppression_lifts')
    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.drop_column('guards_waived')
        batch_op.drop_column('pause_guard')
    with op.batch_alter_table('subscribers', schema=None) as batch_op:
        batch_op.drop_column('last_bounce_at')
    with op.batch_alter_table('incoming_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incoming_reports_received_at'))
    op.drop_table('incoming_reports')
    with op.batch_alter_table('bounce_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bounce_reports_received_at'))
        batch_op.drop_index(batch_op.f('ix_bounce_reports_subscriber_id'))
        batch_op.drop_index('ix_bounce_reports_release_kind')
    op.drop_table('bounce_reports')
