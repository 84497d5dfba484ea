"""The subscriber lifecycle as plain functions on a real database session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.domain import subscriptions
from service.domain.consent_ledger import Origin
from service.domain.errors import ExpiredToken, InvalidInput, InvalidToken
from service.domain.subscriptions import Signup, SignupEmail
from service.domain.tokens import Purpose, TokenSigner
from service.models import ConsentChannel, ConsentSource, Subscriber, SubscriberStatus, Suppression

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
EMAIL = "reader@mail.example"


@pytest.fixture
def signer(app: Flask) -> TokenSigner:
    return app.extensions["pressroom.signer"]


def signup(email: str = "reader@mail.example", **changes: object) -> Signup:
    values: dict[str, object] = {
        "email": email,
        "language": "nb",
        "topics": [],
        "source": ConsentSource.FORM,
        "consent_text_version": "v1",
        "ip": "192.0.2.7",
        "user_agent": "Mozilla/5.0",
    }
    values.update(changes)
    return Signup(**values)  # type: ignore[arg-type]


def subscriber(session: Session, email: str = "reader@mail.example") -> Subscriber:
    found = subscriptions.find_by_email(session, email)
    assert found is not None
    return found


def confirmed(
    session: Session, signer: TokenSigner, email: str = "reader@mail.example"
) -> Subscriber:
    subscriptions.subscribe(session, signup(email), now=NOW)
    token = subscriptions.confirm_token(signer, subscriber(session, email))
    return subscriptions.confirm(session, signer, token, now=NOW).subscriber


def test_a_new_address_is_pending_with_consent_evidence(session: Session) -> None:
    outcome = subscriptions.subscribe(
        session, signup(topics=["culture", "space"], language="en"), now=NOW
    )
    assert outcome.follow_up is SignupEmail.CONFIRM
    row = subscriber(session)
    assert row.status is SubscriberStatus.PENDING
    assert (row.language, row.topics) == ("en", ["culture", "space"])
    assert row.consent_at == NOW
    assert (row.consent_ip, row.consent_user_agent) == ("192.0.2.7", "Mozilla/5.0")
    assert (row.consent_source, row.consent_text_version) == (ConsentSource.FORM, "v1")
    assert row.confirmation_sent_at == NOW


def test_at_most_one_confirmation_mail_per_address_per_ten_minutes(session: Session) -> None:
    first = subscriptions.subscribe(session, signup(), now=NOW)
    again = subscriptions.subscribe(session, signup(), now=NOW + timedelta(minutes=9))
    later = subscriptions.subscribe(session, signup(), now=NOW + timedelta(minutes=10, seconds=1))
    assert [first.follow_up, again.follow_up, later.follow_up] == [
        SignupEmail.CONFIRM,
        SignupEmail.NONE,
        SignupEmail.CONFIRM,
    ]
    count = session.scalar(select(func.count()).select_from(Subscriber))
    assert count == 1


def test_confirming_is_single_use_and_a_second_use_says_already_confirmed(
    session: Session, signer: TokenSigner
) -> None:
    subscriptions.subscribe(session, signup(), now=NOW)
    token = subscriptions.confirm_token(signer, subscriber(session))
    first = subscriptions.confirm(
        session, signer, token, now=NOW, origin=Origin(ConsentChannel.FORM, "198.51.100.1")
    )
    assert not first.already_confirmed
    assert first.subscriber.status is SubscriberStatus.CONFIRMED
    assert first.subscriber.confirmed_at == NOW
    assert first.subscriber.confirmed_ip == "198.51.100.1"
    second = subscriptions.confirm(session, signer, token, now=NOW)
    assert second.already_confirmed


def test_a_used_confirm_link_cannot_resubscribe_someone_who_left(
    session: Session, signer: TokenSigner
) -> None:
    subscriptions.subscribe(session, signup(), now=NOW)
    token = subscriptions.confirm_token(signer, subscriber(session))
    subscriptions.confirm(session, signer, token, now=NOW)
    subscriptions.unsubscribe_subscriber(session, subscriber(session), now=NOW)
    with pytest.raises(InvalidToken):
        subscriptions.confirm(session, signer, token, now=NOW)
    assert subscriber(session).status is SubscriberStatus.UNSUBSCRIBED


def test_confirm_links_expire(app: Flask, session: Session) -> None:
    subscriptions.subscribe(session, signup(), now=NOW)
    old_signer = TokenSigner(
        app.config["SECRET_KEY"], clock=lambda: (NOW - timedelta(days=8)).timestamp()
    )
    token = subscriptions.confirm_token(old_signer, subscriber(session))
    with pytest.raises(ExpiredToken):
        subscriptions.confirm(session, app.extensions["pressroom.signer"], token, now=NOW)
    assert subscriber(session).status is SubscriberStatus.PENDING


def test_a_token_for_one_subscriber_never_acts_on_another(
    session: Session, signer: TokenSigner
) -> None:
    anne = confirmed(session, signer, "anne@mail.example")
    bob = confirmed(session, signer, "bob@mail.example")
    subscriptions.unsubscribe(
        session, signer, subscriptions.unsubscribe_token(signer, anne), now=NOW
    )
    assert anne.status is SubscriberStatus.UNSUBSCRIBED
    assert bob.status is SubscriberStatus.CONFIRMED


def test_a_confirmed_address_signing_up_again_gets_a_note_not_a_change(
    session: Session, signer: TokenSigner
) -> None:
    row = confirmed(session, signer)
    outcome = subscriptions.subscribe(
        session, signup(language="en", topics=["sport"]), now=NOW + timedelta(hours=1)
    )
    assert outcome.follow_up is SignupEmail.ALREADY_SUBSCRIBED
    assert row.status is SubscriberStatus.CONFIRMED
    assert (row.language, row.topics) == ("nb", [])  # only the owner changes preferences


def test_an_unsubscribed_reader_can_subscribe_again_by_confirming(
    session: Session, signer: TokenSigner
) -> None:
    row = confirmed(session, signer)
    subscriptions.unsubscribe(
        session, signer, subscriptions.unsubscribe_token(signer, row), now=NOW
    )
    outcome = subscriptions.subscribe(session, signup(), now=NOW + timedelta(hours=1))
    assert outcome.follow_up is SignupEmail.CONFIRM
    assert row.status is SubscriberStatus.UNSUBSCRIBED  # until the new link is used
    subscriptions.confirm(session, signer, subscriptions.confirm_token(signer, row), now=NOW)
    assert row.status is SubscriberStatus.CONFIRMED
    assert row.unsubscribed_at is None


def test_unsubscribe_is_idempotent(session: Session, signer: TokenSigner) -> None:
    row = confirmed(session, signer)
    token = subscriptions.unsubscribe_token(signer, row)
    subscriptions.unsubscribe(session, signer, token, now=NOW)
    subscriptions.unsubscribe(session, signer, token, now=NOW + timedelta(days=1))
    assert row.status is SubscriberStatus.UNSUBSCRIBED
    assert row.unsubscribed_at == NOW


def test_erasure_removes_the_row_keeps_a_hash_and_a_fresh_opt_in_still_works(
    session: Session, signer: TokenSigner
) -> None:
    row = confirmed(session, signer)
    old_unsubscribe = subscriptions.unsubscribe_token(signer, row)
    subscriptions.erase(session, row, now=NOW)
    assert subscriptions.find_by_email(session, "reader@mail.example") is None
    assert subscriptions.is_suppressed(session, "reader@mail.example")
    hashes = session.scalars(select(Suppression.email_hash)).all()
    assert all("reader" not in h for h in hashes)
    # An old link names nobody now, and is harmless.
    assert subscriptions.unsubscribe(session, signer, old_unsubscribe, now=NOW) is None

    subscriptions.subscribe(session, signup(), now=NOW + timedelta(hours=1))
    fresh = subscriber(session)
    assert fresh.uid != row.uid
    subscriptions.confirm(session, signer, subscriptions.confirm_token(signer, fresh), now=NOW)
    assert fresh.status is SubscriberStatus.CONFIRMED
    assert not subscriptions.is_suppressed(session, "reader@mail.example")


def test_preferences_change_language_and_topics(session: Session, signer: TokenSigner) -> None:
    row = confirmed(session, signer)
    subscriptions.change_preferences(session, row, language="en", topics=["space", "culture"])
    assert (row.language, row.topics) == ("en", ["culture", "space"])
    found = subscriptions.subscriber_for_token(
        session, signer, Purpose.PREFERENCES, subscriptions.preferences_token(signer, row)
    )
    assert found is row


def test_export_holds_what_is_kept(session: Session, signer: TokenSigner) -> None:
    data = subscriptions.export_data(session, confirmed(session, signer))
    assert data["email"] == "reader@mail.example"
    assert data["status"] == "confirmed"
    assert data["consent"]["ip"] == "192.0.2.7"
    assert data["consent"]["source"] == "form"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, []),
        ("", []),
        ("Space, culture,space", ["space", "culture"]),
        (["a-b", "c"], ["a-b", "c"]),
    ],
)
def test_topics_are_parsed_and_deduplicated(raw: object, expected: list[str]) -> None:
    assert subscriptions.parse_topics(raw) == expected


@pytest.mark.parametrize(
    "raw", [5, {"a": 1}, [1], ["has space"], ["x" * 41], [f"t{i}" for i in range(21)]]
)
def test_bad_topics_are_refused(raw: object) -> None:
    with pytest.raises(InvalidInput):
        subscriptions.parse_topics(raw)


@pytest.mark.parametrize("raw", ["de", "NB-no", 5, ["nb"]])
def test_unknown_languages_are_refused(raw: object) -> None:
    with pytest.raises(InvalidInput):
        subscriptions.parse_language(raw)
