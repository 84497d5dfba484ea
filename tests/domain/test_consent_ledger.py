"""The consent ledger and the undo of an unsubscribe, as plain functions on a real database."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from service.domain import consent_ledger, imports, subscriptions
from service.domain.consent_ledger import LedgerIsAppendOnly, Origin, Wording
from service.domain.errors import ExpiredToken, InvalidToken
from service.domain.ip_precision import IpPrecision
from service.domain.subscriptions import Signup
from service.domain.tokens import TokenSigner
from service.models import (
    ConsentAct,
    ConsentChannel,
    ConsentRecord,
    ConsentSource,
    ConsentText,
    Frequency,
    Subscriber,
    SubscriberStatus,
    SubscriptionEvent,
    SubscriptionEventKind,
    Suppression,
    SuppressionReason,
    address_hash,
)

NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
EMAIL = "reader@mail.example"
SIGNUP_TEXT = Wording("nb", "Registrer e-postadressen din.\nDu kan melde deg av når som helst.")
UNDO_TEXT = Wording("nb", "Det var en feil: behold abonnementet mitt")


@pytest.fixture
def signer(app: Flask) -> TokenSigner:
    return app.extensions["pressroom.signer"]


def signup(email: str = EMAIL, **changes: object) -> Signup:
    values: dict[str, object] = {
        "email": email,
        "language": "nb",
        "topics": ["culture", "space"],
        "source": ConsentSource.FORM,
        "consent_text_version": "v1",
        "ip": "192.0.2.0/24",
        "user_agent": "Mozilla/5.0\x00",
        "wording": SIGNUP_TEXT,
    }
    values.update(changes)
    return Signup(**values)  # type: ignore[arg-type]


def reader(session: Session, email: str = EMAIL) -> Subscriber:
    found = subscriptions.find_by_email(session, email)
    assert found is not None
    return found


def confirmed(session: Session, signer: TokenSigner, email: str = EMAIL) -> Subscriber:
    subscriptions.subscribe(session, signup(email), now=NOW)
    token = subscriptions.confirm_token(signer, reader(session, email))
    return subscriptions.confirm(session, signer, token, now=NOW).subscriber


def acts(session: Session, row: Subscriber) -> list[tuple[ConsentAct, ConsentChannel]]:
    return [(e.act, e.source) for e in consent_ledger.history(session, row.id)]


def test_a_signup_records_the_act_its_origin_and_the_exact_wording_once(
    session: Session,
) -> None:
    subscriptions.subscribe(session, signup(), now=NOW)
    subscriptions.subscribe(session, signup(), now=NOW + timedelta(minutes=1))
    entries = consent_ledger.history(session, reader(session).id)
    assert [(e.act, e.source) for e in entries] == [(ConsentAct.SIGNUP, ConsentChannel.FORM)] * 2
    first = entries[0]
    assert (first.ip, first.user_agent) == ("192.0.2.0/24", "Mozilla/5.0")
    assert (first.language, first.topics) == ("nb", "culture,space")
    digest = hashlib.sha256(SIGNUP_TEXT.text.encode()).hexdigest()
    assert first.text_sha256 == digest
    assert (first.text, first.text_language) == (SIGNUP_TEXT.text, "nb")
    # The same words shown twice are kept once.
    assert session.scalar(select(func.count()).select_from(ConsentText)) == 1


def test_an_api_signup_records_no_wording(session: Session) -> None:
    subscriptions.subscribe(session, signup(source=ConsentSource.API, wording=None), now=NOW)
    (entry,) = consent_ledger.history(session, reader(session).id)
    assert (entry.act, entry.source, entry.text_sha256) == (
        ConsentAct.SIGNUP,
        ConsentChannel.API,
        None,
    )


def test_each_act_of_a_reader_appends_one_row(session: Session, signer: TokenSigner) -> None:
    row = confirmed(session, signer)
    subscriptions.change_preferences(session, row, language="nb", topics=["space", "culture"])
    subscriptions.change_preferences(session, row, language="en", topics=["space"], now=NOW)
    token = subscriptions.unsubscribe_token(signer, row)
    subscriptions.unsubscribe(session, signer, token, now=NOW)
    subscriptions.unsubscribe(session, signer, token, now=NOW)  # changes nothing: no row
    subscriptions.subscribe(session, signup(), now=NOW)  # back again
    assert acts(session, row) == [
        (ConsentAct.SIGNUP, ConsentChannel.FORM),
        (ConsentAct.CONFIRM, ConsentChannel.FORM),
        (ConsentAct.PREFERENCES, ConsentChannel.FORM),
        (ConsentAct.UNSUBSCRIBE, ConsentChannel.FORM),
        (ConsentAct.RESUBSCRIBE, ConsentChannel.FORM),
    ]
    preference = consent_ledger.history(session, row.id)[2]
    assert (preference.language, preference.topics) == ("en", "space")


def test_an_import_records_each_reader_with_its_note(session: Session) -> None:
    rows = [
        imports.ImportRow(line=2, email="a@mail.example", name=None, language="en", topics=()),
        imports.ImportRow(
            line=3, email="b@mail.example", name=None, language="nb", topics=("space",)
        ),
    ]
    options = imports.ImportOptions(consent_text_version="v1", consent_note="Book fair 2026")
    assert imports.import_rows(session, rows, options, now=NOW).imported == 2
    (a,) = consent_ledger.history(session, reader(session, "a@mail.example").id)
    (b,) = consent_ledger.history(session, reader(session, "b@mail.example").id)
    assert (a.act, a.source, a.note, a.language, a.topics) == (
        ConsentAct.IMPORT,
        ConsentChannel.IMPORT,
        "Book fair 2026",
        "en",
        "",
    )
    assert (b.language, b.topics) == ("nb", "space")


def test_erasure_removes_the_readers_rows_and_keeps_only_the_fingerprint(
    session: Session, signer: TokenSigner
) -> None:
    row = confirmed(session, signer)
    kept = confirmed(session, signer, "other@mail.example")
    subscriptions.erase(session, row, now=NOW, origin=Origin(ConsentChannel.DESK, "192.0.2.1"))
    records = session.scalars(select(ConsentRecord).order_by(ConsentRecord.id)).all()
    assert {r.subscriber_id for r in records} == {kept.id, None}
    (anonymous,) = [r for r in records if r.subscriber_id is None]
    assert (anonymous.act, anonymous.source) == (ConsentAct.ERASE, ConsentChannel.DESK)
    assert anonymous.ip is anonymous.user_agent is anonymous.text_sha256 is None
    assert anonymous.language is anonymous.topics is anonymous.note is None
    assert session.scalar(select(Suppression.email_hash)) == address_hash(EMAIL)


def test_the_ledger_is_append_only_through_the_domain(
    session: Session, signer: TokenSigner
) -> None:
    row = confirmed(session, signer)
    record = session.scalars(select(ConsentRecord)).first()
    assert record is not None
    # A loaded row changed through the ORM: refused at the flush.
    nested = session.begin_nested()
    record.ip = "203.0.113.9"
    with pytest.raises(LedgerIsAppendOnly):
        session.flush()
    nested.rollback()
    # An ORM UPDATE statement: refused before it reaches the database.
    with pytest.raises(LedgerIsAppendOnly):
        session.execute(update(ConsentRecord).values(ip="203.0.113.9"))
    with pytest.raises(LedgerIsAppendOnly):
        session.execute(update(ConsentText).values(text="Other words"))
    assert [e.ip for e in consent_ledger.history(session, row.id)] == ["192.0.2.0/24", None]


def test_the_database_refuses_an_update_that_goes_round_the_orm(
    session: Session, signer: TokenSigner
) -> None:
    confirmed(session, signer)
    for table in (ConsentRecord.__table__, ConsentText.__table__):
        with pytest.raises(DBAPIError, match="never updated"), session.begin_nested():
            session.connection().execute(update(table).values(language="en"))


def test_undo_restores_topics_and_language_and_writes_one_ledger_row(
    session: Session, signer: TokenSigner
) -> None:
    row = confirmed(session, signer)
    subscriptions.change_preferences(session, row, language="en", topics=["space"], now=NOW)
    departure = subscriptions.leave(
        session, signer, subscriptions.unsubscribe_token(signer, row), now=NOW
    )
    assert departure.left
    before = len(consent_ledger.history(session, row.id))
    undo = subscriptions.undo_token(signer, row)
    later = NOW + timedelta(minutes=5)
    subscriptions.undo_unsubscribe(
        session,
        signer,
        undo,
        now=later,
        origin=Origin(ConsentChannel.FORM, "192.0.2.0/24"),
        wording=UNDO_TEXT,
    )
    assert row.status is SubscriberStatus.CONFIRMED
    assert (row.language, row.topics, row.unsubscribed_at) == ("en", ["space"], None)
    entries = consent_ledger.history(session, row.id)
    assert len(entries) == before + 1
    last = entries[-1]
    assert (last.act, last.occurred_at, last.language, last.topics, last.text) == (
        ConsentAct.UNDO,
        later,
        "en",
        "space",
        UNDO_TEXT.text,
    )
    kinds = session.scalars(select(SubscriptionEvent.kind).order_by(SubscriptionEvent.id)).all()
    assert kinds[-2:] == [SubscriptionEventKind.UNSUBSCRIBED, SubscriptionEventKind.RESTORED]
    # Single use.
    with pytest.raises(InvalidToken, match="cannot take the unsubscribe back"):
        subscriptions.undo_unsubscribe(session, signer, undo, now=later)


def test_an_undo_link_lasts_24_hours(app: Flask, session: Session, signer: TokenSigner) -> None:
    row = confirmed(session, signer)
    subscriptions.unsubscribe(
        session, signer, subscriptions.unsubscribe_token(signer, row), now=NOW
    )
    secret = app.extensions["pressroom.settings"].secret_key
    yesterday = TokenSigner(
        secret, clock=lambda: (datetime.now(UTC) - timedelta(hours=25)).timestamp()
    )
    with pytest.raises(ExpiredToken, match="24 hours"):
        subscriptions.check_undo(session, signer, subscriptions.undo_token(yesterday, row))
    assert row.status is SubscriberStatus.UNSUBSCRIBED


def test_undo_is_only_for_an_unsubscribe_not_overtaken(
    session: Session, signer: TokenSigner
) -> None:
    row = confirmed(session, signer)
    subscriptions.unsubscribe(
        session, signer, subscriptions.unsubscribe_token(signer, row), now=NOW
    )
    undo = subscriptions.undo_token(signer, row)
    # The reader signed up again and confirmed: the undo link is spent.
    subscriptions.subscribe(session, signup(), now=NOW)
    subscriptions.confirm(session, signer, subscriptions.confirm_token(signer, row), now=NOW)
    with pytest.raises(InvalidToken):
        subscriptions.undo_unsubscribe(session, signer, undo, now=NOW)


def test_a_pending_reader_who_unsubscribes_is_not_offered_an_undo(
    session: Session, signer: TokenSigner
) -> None:
    subscriptions.subscribe(session, signup(), now=NOW)
    row = reader(session)
    departure = subscriptions.leave(
        session, signer, subscriptions.unsubscribe_token(signer, row), now=NOW
    )
    assert not departure.left
    assert acts(session, row)[-1] == (ConsentAct.UNSUBSCRIBE, ConsentChannel.FORM)


@pytest.mark.parametrize(
    ("setting", "ip", "kept"),
    [
        ("24,48", "192.0.2.77", "192.0.2.0/24"),
        ("24,48", "2001:db8:1:2::5", "2001:db8:1::/48"),
        ("24,48", "::ffff:192.0.2.77", "192.0.2.0/24"),
        ("full", "2001:db8::5", "2001:db8::5"),
        ("32,64", "192.0.2.77", "192.0.2.77"),
        ("none", "192.0.2.77", None),
        ("16, 0", "2001:db8::5", None),
        ("24,48", "not-an-ip", None),
        ("24,48", None, None),
    ],
)
def test_ip_precision_keeps_the_prefix_it_names(setting: str, ip: str | None, kept: str) -> None:
    assert IpPrecision.parse(setting).truncate(ip) == kept


@pytest.mark.parametrize("setting", ["24", "33,48", "24,129", "a,b", "24;48", "", "-1,48"])
def test_a_bad_ip_precision_is_refused(setting: str) -> None:
    with pytest.raises(ValueError):
        IpPrecision.parse(setting)


def test_undo_restores_how_often_too_but_not_an_address_that_complained_since(
    session: Session, signer: TokenSigner
) -> None:
    row = confirmed(session, signer)
    subscriptions.change_preferences(
        session, row, language="nb", topics=[], frequency=Frequency.WEEKLY, now=NOW
    )
    assert consent_ledger.history(session, row.id)[-1].frequency == "weekly"
    subscriptions.leave(session, signer, subscriptions.unsubscribe_token(signer, row), now=NOW)
    undo = subscriptions.undo_token(signer, row)
    subscriptions.suppress(session, row.email, SuppressionReason.COMPLAINED, now=NOW)
    with pytest.raises(InvalidToken):
        subscriptions.undo_unsubscribe(session, signer, undo, now=NOW)
    assert row.status is SubscriberStatus.UNSUBSCRIBED
    session.execute(delete(Suppression))
    subscriptions.undo_unsubscribe(session, signer, undo, now=NOW)
    assert (row.status, row.frequency) == (SubscriberStatus.CONFIRMED, Frequency.WEEKLY)
