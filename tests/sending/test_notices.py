"""A reader's notices go through the same Transport as releases, and go out only while the
reader still stands where the notice assumes (owed_notices.still_owed)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from service.config import Settings
from service.db import Database
from service.models import OwedNotice, Subscriber, SubscriberStatus
from service.sending import jobs
from service.sending.messages import Composer
from service.sending.outbox import Outbox, TryLater
from tests.sending.parts import RecordingTransport, add_readers

READER = "reader@mail.example"
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture
def outbox(
    db: Database, transport: RecordingTransport, composer: Composer
) -> Callable[..., Outbox]:
    def build() -> Outbox:
        return Outbox(
            open_session=db.session_scope,
            redis=None,  # type: ignore[arg-type]  (a notice needs none)
            transport=transport,
            settings=Settings(
                secret_key="test-secret-key-not-for-production",
                redis_url="redis://unused",
                mail_from=composer.site.mail_from,
                bounce_address="bounces@press.example",
                testing=True,
            ),
            composer=composer,
            messages=lambda release, language: composer.release_message(release, language, now=NOW),
            ring=lambda task, *args: True,
        )

    return build


def uid_of(db: Database, email: str) -> str:
    with db.session_scope() as session:
        uid = session.scalar(select(Subscriber.uid).where(Subscriber.email == email))
        assert uid is not None
        return uid


@pytest.mark.parametrize(
    ("notice", "status", "goes"),
    [
        (OwedNotice.CONFIRMATION, SubscriberStatus.PENDING, True),
        (OwedNotice.CONFIRMATION, SubscriberStatus.CONFIRMED, False),
        (OwedNotice.WELCOME, SubscriberStatus.CONFIRMED, True),
        (OwedNotice.WELCOME, SubscriberStatus.UNSUBSCRIBED, False),
        (OwedNotice.ALREADY_SUBSCRIBED, SubscriberStatus.CONFIRMED, True),
        (OwedNotice.ALREADY_SUBSCRIBED, SubscriberStatus.PENDING, False),
    ],
)
def test_a_notice_goes_only_while_still_owed(
    db: Database,
    transport: RecordingTransport,
    outbox: Callable[..., Outbox],
    notice: OwedNotice,
    status: SubscriberStatus,
    goes: bool,
) -> None:
    add_readers(db, [READER], status=status)

    outcome = jobs.send_notice(outbox(), notice, uid_of(db, READER), key="task-1")

    assert outcome == ("sent" if goes else "skipped")
    assert transport.addressed == ([READER] if goes else [])


def test_notices_share_the_kept_transport_and_keep_their_id_across_retries(
    db: Database, transport: RecordingTransport, outbox: Callable[..., Outbox]
) -> None:
    add_readers(db, [READER], status=SubscriberStatus.PENDING)
    uid = uid_of(db, READER)
    transport.answer(READER, 451)

    with pytest.raises(TryLater):
        jobs.send_notice(outbox(), OwedNotice.CONFIRMATION, uid, key="task-1")
    assert jobs.send_notice(outbox(), OwedNotice.CONFIRMATION, uid, key="task-1") == "sent"

    first, again = (call.message_id for call in transport.calls)
    assert first == again
    assert transport.closed == 0


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [(550, "refused"), (421, TryLater), ("drop", TryLater)],
)
def test_a_notice_refused_for_good_is_not_retried_and_an_outage_is(
    db: Database,
    transport: RecordingTransport,
    outbox: Callable[..., Outbox],
    answer: int | str,
    outcome: str | type[Exception],
) -> None:
    add_readers(db, [READER], status=SubscriberStatus.PENDING)
    transport.answer(READER, answer)

    if isinstance(outcome, str):
        assert jobs.send_notice(outbox(), OwedNotice.CONFIRMATION, uid_of(db, READER), key="k") == (
            outcome
        )
    else:
        with pytest.raises(outcome):
            jobs.send_notice(outbox(), OwedNotice.CONFIRMATION, uid_of(db, READER), key="k")


def test_a_notice_leaves_with_its_readers_own_verp_address(
    db: Database, transport: RecordingTransport, outbox: Callable[..., Outbox]
) -> None:
    [subscriber_id] = add_readers(db, [READER], status=SubscriberStatus.PENDING)
    box = outbox()
    assert jobs.send_notice(box, OwedNotice.CONFIRMATION, uid_of(db, READER), key="k") == "sent"
    [call] = transport.calls
    target = box.envelope.verp.read(call.sender) if box.envelope.verp else None
    assert target is not None and (target.named, target.id) == ("subscriber", subscriber_id)
