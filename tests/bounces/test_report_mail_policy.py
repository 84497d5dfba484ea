"""Report mails in the formats of real mail systems, through the one policy, on a real
database session (rolled back after each test)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.domain import bounce_intake, consent_ledger, report_mail, subscriptions
from service.domain.bounce_policy import Report, take
from service.domain.verp import VerpAddresses
from service.models import (
    BounceReport,
    ConsentAct,
    ConsentChannel,
    Delivery,
    DeliveryStatus,
    Release,
    ReleaseStatus,
    ReportDoor,
    ReportKind,
    ReportOutcome,
    Subscriber,
    SubscriberStatus,
    SubscriptionEvent,
    SubscriptionEventKind,
    Suppression,
    SuppressionReason,
    address_hash,
)
from tests.bounces import copies, formats
from tests.bounces.copies import READER

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
VERP = VerpAddresses("bounces@press.example", ["test-secret-key-not-for-production"])


def add_reader(session: Session, email: str = READER) -> Subscriber:
    return copies.add_reader(session, email, now=NOW)


def add_delivery(session: Session, subscriber: Subscriber) -> Delivery:
    return copies.add_delivery(session, subscriber, now=NOW)


def original_of(
    delivery: Delivery, subscriber: Subscriber, *, verp: bool = True
) -> formats.Original:
    sender = VERP.for_delivery(delivery.id) if verp else "noreply@press.example"
    return copies.original_of(delivery, subscriber, sender)


def take_mail(session: Session, data: bytes, *, verp: VerpAddresses | None = VERP):
    return bounce_intake.take_mail(session, data, door=ReportDoor.SMTP, verp=verp, now=NOW)


def suppression(session: Session, email: str) -> Suppression | None:
    return session.scalar(select(Suppression).where(Suppression.email_hash == address_hash(email)))


HARD_BOUNCES: dict[str, Callable[[formats.Original, str], bytes]] = {
    "postfix": formats.postfix,
    "exim": formats.exim,
    "exchange": formats.exchange,
    "gmail": formats.gmail,
    "qmail": formats.qmail,
}


@pytest.mark.parametrize("verp", [True, False], ids=["verp", "no-verp"])
@pytest.mark.parametrize("mta", sorted(HARD_BOUNCES))
def test_a_hard_bounce_in_each_mtas_format_suppresses_its_reader_at_once(
    session: Session, mta: str, verp: bool
) -> None:
    reader = add_reader(session)
    bystander = add_reader(session, "leonov@mail.example")
    delivery = add_delivery(session, reader)
    original = original_of(delivery, reader, verp=verp)
    to = original.envelope_sender if verp else "bounces@press.example"

    [taken] = take_mail(session, HARD_BOUNCES[mta](original, to), verp=VERP)

    assert (taken.kind, taken.outcome, taken.release_id) == (
        ReportKind.HARD_BOUNCE,
        ReportOutcome.SUPPRESSED,
        delivery.release_id,
    )
    session.refresh(reader)
    assert reader.status is SubscriberStatus.BOUNCED
    row = suppression(session, READER)
    assert row is not None
    assert (row.reason, row.release_id) == (SuppressionReason.BOUNCED, delivery.release_id)
    event = session.scalar(select(SubscriptionEvent))
    assert event is not None
    assert (event.kind, event.release_id) == (SubscriptionEventKind.BOUNCED, delivery.release_id)
    session.refresh(bystander)
    assert bystander.status is SubscriberStatus.CONFIRMED


def test_a_mailbox_full_is_a_soft_bounce_that_scores_once_a_day_until_the_threshold(
    session: Session,
) -> None:
    reader = add_reader(session)
    outcomes = []
    for day in range(5):
        delivery = add_delivery(session, reader) if day == 0 else None
        release_delivery = delivery or add_another_delivery(session, reader, day)
        mail = formats.gmail(
            original_of(release_delivery, reader),
            VERP.for_delivery(release_delivery.id),
            over_quota=True,
        )
        [taken] = bounce_intake.take_mail(
            session, mail, door=ReportDoor.SMTP, verp=VERP, now=NOW + timedelta(days=day)
        )
        outcomes.append(taken.outcome)
        session.refresh(reader)
    assert outcomes == [ReportOutcome.SCORED] * 4 + [ReportOutcome.SUPPRESSED]
    assert reader.status is SubscriberStatus.BOUNCED
    assert reader.bounce_score == 5


def add_another_delivery(session: Session, reader: Subscriber, n: int) -> Delivery:
    release = Release(slug=f"r-{n}", title="t", language="nb", status=ReleaseStatus.SENT)
    session.add(release)
    session.flush()
    delivery = Delivery(
        release_id=release.id, subscriber_id=reader.id, language="nb", status=DeliveryStatus.SENT
    )
    session.add(delivery)
    session.flush()
    return delivery


def test_soft_bounces_on_one_day_count_once_and_go_stale_after_seven_days(
    session: Session,
) -> None:
    reader = add_reader(session)
    reader.bounce_score = 2  # scored before this policy, when is not known: as stale
    days = [NOW, NOW + timedelta(hours=3), NOW + timedelta(days=8)]
    # The second adds no point, and is not taken for one (`subscribers unbounce`).
    outcomes = [ReportOutcome.SCORED, ReportOutcome.UNCHANGED, ReportOutcome.SCORED]
    for n, (when, outcome) in enumerate(zip(days, outcomes, strict=True)):
        report = Report(
            ReportDoor.GENERIC,
            "delayed",
            "4.2.2",
            address=READER,
            report_id=f"ev-{n}",
            address_vouched=True,
        )
        assert take(session, report, now=when).outcome is outcome, n
        session.refresh(reader)
        assert reader.bounce_score == 1, n


def test_a_complaint_unsubscribes_and_suppresses_and_counts_for_its_release(
    session: Session,
) -> None:
    reader = add_reader(session)
    delivery = add_delivery(session, reader)
    original = original_of(delivery, reader)

    [taken] = take_mail(session, formats.yahoo_arf(original, "fbl@press.example"))

    assert (taken.kind, taken.outcome) == (ReportKind.COMPLAINT, ReportOutcome.UNSUBSCRIBED)
    session.refresh(reader)
    assert reader.status is SubscriberStatus.UNSUBSCRIBED
    row = suppression(session, READER)
    assert row is not None and row.reason is SuppressionReason.COMPLAINED
    event = session.scalar(select(SubscriptionEvent))
    assert event is not None
    assert (event.kind, event.release_id) == (
        SubscriptionEventKind.UNSUBSCRIBED,
        delivery.release_id,
    )
    # The consent ledger says how the reader left: by a spam complaint, one row.
    acts = [(e.act, e.source) for e in consent_ledger.history(session, reader.id)]
    assert acts[-1:] == [(ConsentAct.UNSUBSCRIBE, ConsentChannel.COMPLAINT)]
    assert acts.count((ConsentAct.UNSUBSCRIBE, ConsentChannel.COMPLAINT)) == 1


def test_a_complaint_with_the_address_left_out_is_traced_by_its_envelope_sender(
    session: Session,
) -> None:
    reader = add_reader(session)
    delivery = add_delivery(session, reader)
    mail = formats.yahoo_arf(
        original_of(delivery, reader), "fbl@press.example", recipient_shown=False
    )
    [taken] = take_mail(session, mail)
    assert taken.outcome is ReportOutcome.UNSUBSCRIBED


def test_a_content_refusal_counts_against_the_release_and_never_the_reader(
    session: Session,
) -> None:
    reader = add_reader(session)
    delivery = add_delivery(session, reader)
    original = original_of(delivery, reader)
    [taken] = take_mail(
        session, formats.postfix(original, original.envelope_sender, status="5.7.1")
    )
    assert (taken.kind, taken.outcome) == (ReportKind.REFUSAL, ReportOutcome.COUNTED)
    session.refresh(reader)
    assert (reader.status, reader.bounce_score) == (SubscriberStatus.CONFIRMED, 0)
    assert suppression(session, READER) is None
    counted = session.scalar(
        select(func.count()).where(
            BounceReport.release_id == delivery.release_id, BounceReport.kind == ReportKind.REFUSAL
        )
    )
    assert counted == 1


@pytest.mark.parametrize("reply", [formats.out_of_office, formats.challenge])
def test_auto_replies_are_ignored_even_at_a_verp_address(
    session: Session, reply: Callable[[formats.Original, str], bytes]
) -> None:
    reader = add_reader(session)
    delivery = add_delivery(session, reader)
    original = original_of(delivery, reader)
    assert take_mail(session, reply(original, original.envelope_sender)) == []
    session.refresh(reader)
    assert (reader.status, reader.bounce_score) == (SubscriberStatus.CONFIRMED, 0)
    assert session.scalar(select(func.count()).select_from(BounceReport)) == 0


def test_the_same_report_twice_or_through_two_doors_counts_once(session: Session) -> None:
    reader = add_reader(session)
    delivery = add_delivery(session, reader)
    original = original_of(delivery, reader)
    mail = formats.postfix(original, original.envelope_sender, status="4.2.2")
    [first] = take_mail(session, mail)
    [again] = take_mail(session, mail)
    [webhook] = [
        take(
            session,
            Report(ReportDoor.SES, "delayed", "4.2.2", address=READER, delivery_id=delivery.id),
            now=NOW,
        )
    ]
    assert first.outcome is ReportOutcome.SCORED
    assert again.repeat and webhook.repeat
    session.refresh(reader)
    assert reader.bounce_score == 1
    assert session.scalar(select(func.count()).select_from(BounceReport)) == 1


def test_a_bounce_for_an_erased_reader_changes_nothing_and_keeps_nothing(
    session: Session,
) -> None:
    reader = add_reader(session)
    delivery = add_delivery(session, reader)
    original = original_of(delivery, reader)
    subscriptions.erase(session, reader, now=NOW)
    session.flush()
    suppressions_before = session.scalar(select(func.count()).select_from(Suppression))

    taken = take_mail(session, formats.postfix(original, original.envelope_sender))

    assert [t.outcome for t in taken] == [None]
    assert session.scalar(select(func.count()).select_from(BounceReport)) == 0
    assert session.scalar(select(func.count()).select_from(Suppression)) == suppressions_before


def test_a_forged_verp_code_or_an_address_alone_names_nobody(session: Session) -> None:
    reader = add_reader(session)
    victim = add_reader(session, "leonov@mail.example")
    victims_delivery = add_delivery(session, victim)
    forged = VERP.for_delivery(victims_delivery.id).replace("-", "-a", 1)
    assert VERP.read(forged) is None
    for to in (forged, "bounces@press.example"):
        mail = formats.postfix(formats.Original(READER, to, "<x@mail.example>"), to)
        assert [t.outcome for t in take_mail(session, mail)] == [None]
    session.refresh(reader)
    session.refresh(victim)
    assert (reader.status, victim.status) == (SubscriberStatus.CONFIRMED,) * 2
    assert session.scalar(select(func.count()).select_from(BounceReport)) == 0


def test_a_verp_code_gives_one_reports_worst_line_to_its_delivery_and_drops_the_rest(
    session: Session,
) -> None:
    reader = add_reader(session)
    others = [add_reader(session, f"other{n}@mail.example") for n in range(3)]
    delivery = add_delivery(session, reader)
    original = original_of(delivery, reader)
    lines = "".join(
        f"<{o.email}>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n" for o in others
    )
    mail = formats.qmail(original, original.envelope_sender).replace(
        b"(#5.1.1)\r\n\r\n", b"(#5.1.1)\r\n\r\n" + lines.replace("\n", "\r\n").encode(), 1
    )
    taken = take_mail(session, mail)
    assert [(t.kind, t.outcome) for t in taken] == [
        (ReportKind.HARD_BOUNCE, ReportOutcome.SUPPRESSED)
    ]
    for other in others:
        session.refresh(other)
        assert other.status is SubscriberStatus.CONFIRMED


def test_an_unreadable_mail_at_a_verp_address_is_a_bounce_of_unknown_cause(
    session: Session,
) -> None:
    reader = add_reader(session)
    delivery = add_delivery(session, reader)
    mail = (
        f"From: postmaster@mail.example\r\nTo: {VERP.for_delivery(delivery.id)}\r\n"
        "Subject: Returned mail\r\n\r\nYour message could not be handled.\r\n"
    ).encode()
    [taken] = take_mail(session, mail)
    assert (taken.kind, taken.outcome) == (ReportKind.SOFT_BOUNCE, ReportOutcome.SCORED)


def test_a_persons_reply_or_a_report_of_no_failure_at_a_verp_address_changes_nothing(
    session: Session,
) -> None:
    reader = add_reader(session)
    delivery = add_delivery(session, reader)
    original = original_of(delivery, reader)
    to = original.envelope_sender
    reply = f"From: {READER}\r\nTo: {to}\r\nSubject: Re: Gagarin\r\n\r\nTakk!\r\n".encode()
    not_spam = formats.yahoo_arf(original, to).replace(
        b"Feedback-Type: abuse", b"Feedback-Type: not-spam"
    )
    relayed = formats.postfix(original, to).replace(b"Action: failed", b"Action: relayed")
    for mail in (reply, not_spam, relayed):
        assert take_mail(session, mail) == []
    session.refresh(reader)
    assert (reader.status, reader.bounce_score) == (SubscriberStatus.CONFIRMED, 0)


@pytest.mark.parametrize(
    "mail",
    [
        b"From: MAILER-DAEMON@mx.mail.example\r\nSubject: \xff\xfe Undelivered\r\n"
        b"Auto-Submitted: \xe6\xf8\xe5\r\nContent-Type: multipart/report; "
        b"report-type=delivery-status; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n"
        b"Final-Recipient: utf-8; \xc3\xb8@mail.example\r\nAction: \xff\r\n"
        b"Status: 5.\xff.1\r\n\r\n--b--\r\n",
        b"Content-Type: multipart/mixed; boundary=a\r\n\r\n"
        + b"--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n" * 3000,
        b"To: bounces+d1-\xc3\xb8\xc3\xb8@press.example\r\nFrom: postmaster@x.example\r\n\r\nx",
        b"\x00\xff" * 5000,
    ],
    ids=["8-bit-headers", "nested-3000-deep", "non-ascii-verp-code", "binary"],
)
def test_a_mail_nobody_can_read_changes_nothing_and_raises_nothing(
    session: Session, mail: bytes
) -> None:
    add_reader(session, "ø@mail.example")
    assert [t.outcome for t in take_mail(session, mail)] in ([], [None])
    assert session.scalar(select(func.count()).select_from(BounceReport)) == 0


def test_a_bounce_of_many_thousand_lines_is_read_quickly_and_capped(session: Session) -> None:
    reader = add_reader(session)
    delivery = add_delivery(session, reader)
    original = original_of(delivery, reader, verp=False)
    lines = "".join(
        f"<x{n}@mail.example>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
        for n in range(15_000)
    )
    mail = formats.qmail(original, "bounces@press.example").replace(
        b"--- Below this line", lines.encode() + b"--- Below this line", 1
    )
    started = time.monotonic()
    parsed = report_mail.read(mail)
    assert time.monotonic() - started < 10  # was quadratic: 14 s for 14,000 lines
    assert len(parsed.recipients) == report_mail.MAX_LINES


def test_verp_addresses_survive_a_change_of_case_and_key_rotation() -> None:
    address = VERP.for_delivery(123_456)
    assert len(address.partition("@")[0]) <= 64
    assert VERP.read(address.upper()) is not None
    rotated = VerpAddresses(
        "bounces@press.example", ["new-key", "test-secret-key-not-for-production"]
    )
    target = rotated.read(address)
    assert target is not None and (target.named, target.id) == ("delivery", 123_456)
    other_secret = VerpAddresses("bounces@press.example", ["another-site's-key"])
    assert other_secret.read(address) is None
    assert VERP.read(VERP.for_subscriber(7)).named == "subscriber"  # type: ignore[union-attr]
