"""consent ledger

One row per consent-relevant act (consent_records) and each consent wording once per SHA-256
(consent_texts). A BEFORE UPDATE trigger on both tables makes them append-only in the database
itself, whatever writes to it. Readers already on the list get one row from what their
subscriber row holds (their signup or import, and their confirmation), with no wording: the
text they were shown was not kept before this revision.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 09:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

REFUSAL = 'consent ledger rows are never updated'


def upgrade():
    op.create_table('consent_texts',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sha256', name=op.f('pk_consent_texts'))
    )
    op.create_table('consent_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('act', sa.Enum('signup', 'resubscribe', 'confirm', 'preferences', 'unsubscribe', 'undo', 'import', 'erase', name='consent_act', native_enum=False, length=16), nullable=False),
    sa.Column('source', sa.Enum('form', 'api', 'import', 'desk', 'one_click', 'complaint', name='consent_channel', native_enum=False, length=16), nullable=False),
    sa.Column('ip', sa.String(length=49), nullable=True),
    sa.Column('user_agent', sa.String(length=512), nullable=True),
    sa.Column('text_sha256', sa.String(length=64), nullable=True),
    sa.Column('language', sa.String(length=8), nullable=True),
    sa.Column('topics', sa.String(length=1000), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], name=op.f('fk_consent_records_subscriber_id_subscribers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['text_sha256'], ['consent_texts.sha256'], name=op.f('fk_consent_records_text_sha256_consent_texts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_records'))
    )
    with op.batch_alter_table('consent_records', schema=None) as batch_op:
        batch_op.create_index('ix_consent_records_subscriber_occurred', ['subscriber_id', 'occurred_at'], unique=False)

    op.execute(
        "INSERT INTO consent_records (subscriber_id, occurred_at, act, source, ip, user_agent, note)"
        " SELECT id, consent_at, CASE WHEN consent_source = 'import' THEN 'import' ELSE 'signup' END,"
        " consent_source, consent_ip, consent_user_agent, consent_note FROM subscribers"
    )
    op.execute(
        "INSERT INTO consent_records (subscriber_id, occurred_at, act, source, ip)"
        " SELECT id, confirmed_at, 'confirm', 'form', confirmed_ip FROM subscribers"
        " WHERE confirmed_at IS NOT NULL AND consent_source <> 'import'"
    )

    if op.get_context().dialect.name == 'postgresql':
        op.execute(
            "CREATE FUNCTION consent_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$"
            f" BEGIN RAISE EXCEPTION '{REFUSAL} (%)', TG_TABLE_NAME; END $$"
        )
        for table in ('consent_records', 'consent_texts'):
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION consent_ledger_append_only()"
            )
    else:
        for table in ('consent_records', 'consent_texts'):
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE ON {table}"
                f" BEGIN SELECT RAISE(ABORT, '{REFUSAL} ({table})'); END"
            )


def downgrade():
    for table in ('consent_records', 'consent_texts'):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only" + (f" ON {table}" if op.get_context().dialect.name == 'postgresql' else ""))
    if op.get_context().dialect.name == 'postgresql':
        op.execute("DROP FUNCTION IF EXISTS consent_ledger_append_only()")
    with op.batch_alter_table('consent_records', schema=None) as batch_op:
        batch_op.drop_index('ix_consent_records_subscriber_occurred')
    op.drop_table('consent_records')
    op.drop_table('consent_texts')
