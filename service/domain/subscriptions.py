"""The reader's lifecycle: subscribe, confirm, unsubscribe, change preferences, erase."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from service.config import TOPIC_PATTERN
from service.db import insert_for, utcnow
from service.domain import (
    consent_ledger,
    digests,
    owed_notices,
    subscription_events,
    webhook_outbox,
)
from service.domain.consent_ledger import READER_PAGE, Origin, Wording
from service.domain.errors import N_, ExpiredToken, InvalidInput, InvalidToken
from service.domain.owed_notices import Owed
from service.domain.tokens import CONFIRM_TTL, UNDO_TTL, Purpose, TokenSigner
from service.domain.webhook_endpoints import EventType
from service.locales import LANGUAGES, PRIMARY_LANGUAGE
from service.models import (
    ConsentAct,
    ConsentChannel,
    ConsentSource,
    Frequency,
    OwedNotice,
    Subscriber,
    SubscriberStatus,
    SubscriptionEventKind,
    Suppression,
    SuppressionReason,
    address_hash,
)
from service.models.subscriber import new_uid

MAX_TOPICS = 20
CONFIRMATION_INTERVAL = timedelta(minutes=10)
USED_LINK = N_("This link has already been used. Subscribe again to get a new one.")
USED_UNDO = N_(
    "This link cannot take the unsubscribe back any more: it was used already, or you have "
    "changed your subscription since. Subscribe again on the press room page."
)
UNDO_EXPIRED = N_(
    "This link has expired: the 24 hours to take back the unsubscribe are over. Subscribe "
    "again on the press room page."
)
NO_SUBSCRIPTION = N_("There is no subscription for this link any more.")
SUPPRESSED_UNDO = N_(
    "This address can no longer be put back on the list from here. Subscribe again on the "
    "press room page."
)


class SignupEmail(enum.StrEnum):
    """The one email, if any, that a signup should cause."""

    CONFIRM = "confirm"
    ALREADY_SUBSCRIBED = "already_subscribed"
    NONE = "none"


@dataclass(frozen=True)
class Signup:
    email: str
    language: str
    topics: list[str]
    source: ConsentSource
    consent_text_version: str
    ip: str | None = None  # as CONSENT_IP_PRECISION keeps it
    user_agent: str | None = None
    name: str | None = None
    frequency: Frequency = Frequency.IMMEDIATELY  # or a daily or weekly digest
    wording: Wording | None = None  # the consent text the form showed; None from the API


@dataclass(frozen=True)
class SignupOutcome:
    subscriber_uid: str
    follow_up: SignupEmail
    owed: Owed | None = None  # the notice recorded as owed, to ring after the commit


@dataclass(frozen=True)
class Confirmation:
    subscriber: Subscriber
    already_confirmed: bool
    owed: Owed | None = None  # the welcome, recorded as owed, to ring after the commit


@dataclass(frozen=True)
class Departure:
    """What an unsubscribe did: `left` when it took a confirmed reader off the list (only
    then can it be undone)."""

    subscriber: Subscriber | None
    left: bool


def parse_language(raw: object, *, default: str = PRIMARY_LANGUAGE) -> str:
    if raw is None or raw == "":
        return default
    if not isinstance(raw, str) or raw.strip().lower() not in LANGUAGES:
        raise InvalidInput(
            N_("Language must be one of: %(languages)s."), languages=", ".join(LANGUAGES)
        )
    return raw.strip().lower()


def exact_language(raw: object) -> str:
    """A language as the JSON API takes it: exactly one of LANGUAGES (no case folding, no
    blanks), as its OpenAPI schema's enum says."""
    if not isinstance(raw, str) or raw not in LANGUAGES:
        raise InvalidInput(
            N_("Language must be one of: %(languages)s."), languages=", ".join(LANGUAGES)
        )
    return raw


def topic_list(raw: object, offered: Sequence[str] = ()) -> list[str]:
    """Topics as the JSON API takes them: a list of at most MAX_TOPICS items, each a slug
    spelled exactly as TOPIC_PATTERN says (no case folding, no blanks, no commas), and one of
    `offered` when the site offers a fixed set. A topic named twice counts once.

    The OpenAPI schema says the same (maxItems, pattern, enum); raises InvalidInput."""
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise InvalidInput(N_("Topics must be a list of short names."))
    if len(raw) > MAX_TOPICS:
        raise InvalidInput(N_("Choose at most %(count)s topics."), count=MAX_TOPICS)
    if not all(TOPIC_PATTERN.fullmatch(item) for item in raw):
        raise InvalidInput(
            N_("A topic is a short name of a-z, 0-9 and hyphens, at most 40 characters.")
        )
    return parse_topics(raw, offered)


def parse_topics(raw: object, offered: Sequence[str] = ()) -> list[str]:
    """Topics as a list of short slugs; a comma-separated string is accepted from forms.

    When the site offers a fixed set of topics, only those are accepted.
    """
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        items: Iterable[object] = raw.split(",")
    elif isinstance(raw, list):
        items = raw
    else:
        raise InvalidInput(N_("Topics must be a list of short names."))
    topics: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidInput(N_("Topics must be a list of short names."))
        topic = item.strip().lower()
        if not topic:
            continue
        if not TOPIC_PATTERN.match(topic):
            raise InvalidInput(
                N_("A topic is a short name of a-z, 0-9 and hyphens, at most 40 characters.")
            )
        if offered and topic not in offered:
            raise InvalidInput(N_("There is no topic called %(topic)s."), topic=topic)
        if topic not in topics:
            topics.append(topic)
            if len(topics) > MAX_TOPICS:
                raise InvalidInput(N_("Choose at most %(count)s topics."), count=MAX_TOPICS)
    return topics


def find_by_email(session: Session, email: str) -> Subscriber | None:
    return session.scalar(select(Subscriber).where(Subscriber.email == email))


def subscribe(session: Session, signup: Signup, *, now: datetime) -> SignupOutcome:
    """Record a signup; answers the same to the caller whatever the address's state.

    The outcome says which email to send; at most one per address per CONFIRMATION_INTERVAL,
    even when the same address is sent many times at once (a double click, a script).
    """
    # Insert-or-nothing, then lock the row: concurrent signups for one address take turns.
    session.execute(
        insert_for(session, Subscriber)
        .values(
            uid=new_uid(),
            email=signup.email,
            status=SubscriberStatus.PENDING,
            language=signup.language,
            frequency=signup.frequency,
            token_version=1,
            bounce_score=0,
            consent_at=now,
            consent_source=signup.source,
            consent_text_version=signup.consent_text_version,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["email"])
    )
    subscriber = session.scalars(
        select(Subscriber)
        .where(Subscriber.email == signup.email)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if subscriber.status is not SubscriberStatus.CONFIRMED:
        # Only a person who confirms changes what is kept; until then the latest request wins.
        came_back = subscriber.status is not SubscriberStatus.PENDING
        subscriber.language = signup.language
        subscriber.frequency = signup.frequency
        subscriber.set_topics(signup.topics)
        if signup.name:
            subscriber.name = signup.name
        _record_consent(subscriber, signup, now)
        session.flush()
        consent_ledger.append(
            session,
            subscriber,
            ConsentAct.RESUBSCRIBE if came_back else ConsentAct.SIGNUP,
            Origin(ConsentChannel(signup.source.value), signup.ip, signup.user_agent),
            now=now,
            wording=signup.wording,
        )
    session.flush()
    follow_up = (
        SignupEmail.ALREADY_SUBSCRIBED
        if subscriber.status is SubscriberStatus.CONFIRMED
        else SignupEmail.CONFIRM
    )
    # Claim the mail slot with a compare-and-set, so two requests cannot both win it.
    claimed = session.execute(
        update(Subscriber)
        .where(
            Subscriber.id == subscriber.id,
            or_(
                Subscriber.confirmation_sent_at.is_(None),
                Subscriber.confirmation_sent_at <= now - CONFIRMATION_INTERVAL,
            ),
        )
        .values(confirmation_sent_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not claimed:
        return SignupOutcome(subscriber_uid=subscriber.uid, follow_up=SignupEmail.NONE)
    set_committed_value(subscriber, "confirmation_sent_at", now)
    notice = (
        OwedNotice.CONFIRMATION
        if follow_up is SignupEmail.CONFIRM
        else OwedNotice.ALREADY_SUBSCRIBED
    )
    owed = owed_notices.owe(subscriber, notice, now=now)
    session.flush()
    return SignupOutcome(subscriber_uid=subscriber.uid, follow_up=follow_up, owed=owed)


def _record_consent(subscriber: Subscriber, signup: Signup, now: datetime) -> None:
    subscriber.consent_at = now
    subscriber.consent_ip = signup.ip
    subscriber.consent_user_agent = consent_ledger.clean_user_agent(signup.user_agent)
    subscriber.consent_source = signup.source
    subscriber.consent_text_version = signup.consent_text_version


def confirm_token(signer: TokenSigner, subscriber: Subscriber) -> str:
    return signer.dumps(Purpose.CONFIRM, {"u": subscriber.uid, "v": subscriber.token_version})


def unsubscribe_token(signer: TokenSigner, subscriber: Subscriber) -> str:
    return signer.dumps(Purpose.UNSUBSCRIBE, {"u": subscriber.uid})


def preferences_token(signer: TokenSigner, subscriber: Subscriber) -> str:
    return signer.dumps(Purpose.PREFERENCES, {"u": subscriber.uid})


def undo_token(signer: TokenSigner, subscriber: Subscriber) -> str:
    """The link that takes back the unsubscribe just done: valid UNDO_TTL, once (it names the
    token version the unsubscribe left, which the undo moves on)."""
    return signer.dumps(Purpose.UNDO, {"u": subscriber.uid, "v": subscriber.token_version})


def _resolve(
    session: Session, signer: TokenSigner, purpose: Purpose, token: str
) -> tuple[dict[str, Any], Subscriber | None]:
    max_age = {Purpose.CONFIRM: CONFIRM_TTL, Purpose.UNDO: UNDO_TTL}.get(purpose)
    payload = signer.loads(purpose, token, max_age=max_age)
    uid = payload.get("u")
    if not isinstance(uid, str):
        raise InvalidToken()
    return payload, session.scalar(select(Subscriber).where(Subscriber.uid == uid))


def subscriber_for_token(
    session: Session, signer: TokenSigner, purpose: Purpose, token: str
) -> Subscriber | None:
    """The subscriber a token names, or None when the row is gone (erased).

    Raises InvalidToken / ExpiredToken for a token that is forged, of another purpose, or old.
    """
    return _resolve(session, signer, purpose, token)[1]


def check_confirmation(session: Session, signer: TokenSigner, token: str) -> Confirmation:
    """What a confirm link would do, changing nothing: the page behind GET shows this."""
    payload, subscriber = _resolve(session, signer, Purpose.CONFIRM, token)
    if subscriber is None:
        raise InvalidToken()
    if subscriber.token_version != payload.get("v"):
        if subscriber.status is SubscriberStatus.CONFIRMED:
            return Confirmation(subscriber, already_confirmed=True)
        raise InvalidToken(USED_LINK)
    return Confirmation(subscriber, already_confirmed=False)


def confirm(
    session: Session,
    signer: TokenSigner,
    token: str,
    *,
    now: datetime,
    origin: Origin = READER_PAGE,
    wording: Wording | None = None,
) -> Confirmation:
    """Confirm the opt-in; `origin` is the person pressing the button (confirmed_ip is its IP),
    `wording` the text the confirm page showed them."""
    checked = check_confirmation(session, signer, token)
    if checked.already_confirmed:
        return checked
    subscriber = checked.subscriber
    # Single use even under a double click: only the request that moves the version on wins.
    won = session.execute(
        update(Subscriber)
        .where(
            Subscriber.id == subscriber.id,
            Subscriber.token_version == subscriber.token_version,
            Subscriber.status != SubscriberStatus.CONFIRMED,
        )
        .values(
            status=SubscriberStatus.CONFIRMED,
            confirmed_at=now,
            confirmed_ip=origin.ip,
            unsubscribed_at=None,
            bounce_score=0,
            token_version=Subscriber.token_version + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(subscriber)
    if not won:
        # Another request moved the version on first: a double click, or an unsubscribe.
        if subscriber.status is SubscriberStatus.CONFIRMED:
            return Confirmation(subscriber, already_confirmed=True)
        raise InvalidToken(USED_LINK)
    subscription_events.record(session, SubscriptionEventKind.CONFIRMED, at=now)
    webhook_outbox.subscriber_changed(session, EventType.SUBSCRIBER_CONFIRMED, subscriber, now=now)
    consent_ledger.append(session, subscriber, ConsentAct.CONFIRM, origin, now=now, wording=wording)
    digests.forget_held(session, subscriber.id)  # a new subscription: nothing from before
    # The person asked again and proved they own the address: lift an earlier suppression.
    session.execute(
        delete(Suppression).where(Suppression.email_hash == address_hash(subscriber.email))
    )
    owed = owed_notices.owe(subscriber, OwedNotice.WELCOME, now=now)
    session.flush()
    return Confirmation(subscriber, already_confirmed=False, owed=owed)


def unsubscribe(
    session: Session,
    signer: TokenSigner,
    token: str,
    *,
    now: datetime,
    origin: Origin = READER_PAGE,
) -> Subscriber | None:
    """Idempotent; a valid token for an erased subscriber is a no-op, not an error.

    A link from a release email names that release ("r"), which the departure is counted for.
    """
    return leave(session, signer, token, now=now, origin=origin).subscriber


def leave(
    session: Session,
    signer: TokenSigner,
    token: str,
    *,
    now: datetime,
    origin: Origin = READER_PAGE,
) -> Departure:
    """unsubscribe, saying also whether this call took a confirmed reader off the list."""
    payload, subscriber = _resolve(session, signer, Purpose.UNSUBSCRIBE, token)
    if subscriber is None:
        return Departure(None, left=False)
    release_id = payload.get("r")
    if not isinstance(release_id, int) or isinstance(release_id, bool) or release_id < 1:
        release_id = None  # a link from a notice, the preferences page, or an older email
    left = unsubscribe_subscriber(
        session, subscriber, now=now, release_id=release_id, origin=origin
    )
    session.flush()
    return Departure(subscriber, left=left)


def unsubscribe_subscriber(
    session: Session,
    subscriber: Subscriber,
    *,
    now: datetime,
    release_id: int | None = None,
    origin: Origin = READER_PAGE,
) -> bool:
    """Stop all mail to the reader. True when this call took a confirmed reader off the list:
    only then is the departure counted, so a repeated or concurrent one-click POST counts once.
    A call that changed the reader (confirmed or pending before) writes one ledger row.
    """
    if subscriber.status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.BOUNCED):
        return False
    values = {
        "status": SubscriberStatus.UNSUBSCRIBED,
        "unsubscribed_at": now,
        "token_version": Subscriber.token_version + 1,  # an old confirm link must not re-subscribe
        "updated_at": now,
    }
    left = leave_list(
        session,
        subscriber.id,
        SubscriptionEventKind.UNSUBSCRIBED,
        now=now,
        release_id=release_id,
        **values,
    )
    changed = left
    if not left:  # never confirmed, or another request was first
        changed = bool(
            session.execute(
                update(Subscriber)
                .where(
                    Subscriber.id == subscriber.id, Subscriber.status == SubscriberStatus.PENDING
                )
                .values(values)
                .execution_options(synchronize_session=False)
            ).rowcount
        )
    session.refresh(subscriber)
    if changed:
        webhook_outbox.subscriber_changed(
            session,
            EventType.SUBSCRIBER_UNSUBSCRIBED,
            subscriber,
            now=now,
            release_id=release_id,
        )
        consent_ledger.append(session, subscriber, ConsentAct.UNSUBSCRIBE, origin, now=now)
    return left


def check_undo(session: Session, signer: TokenSigner, token: str) -> Subscriber:
    """The reader an undo link would put back on the list, changing nothing (the page behind
    GET). Raises ExpiredToken after UNDO_TTL, InvalidToken once used or overtaken."""
    try:
        payload, subscriber = _resolve(session, signer, Purpose.UNDO, token)
    except ExpiredToken:
        raise ExpiredToken(UNDO_EXPIRED) from None
    if subscriber is None:
        raise InvalidToken(NO_SUBSCRIPTION)
    if (
        subscriber.token_version != payload.get("v")
        or subscriber.status is not SubscriberStatus.UNSUBSCRIBED
    ):
        raise InvalidToken(USED_UNDO)
    if is_suppressed(session, subscriber.email):
        # Since the unsubscribe, the address marked our email as spam (or bounced for good):
        # only a new opt-in, which lifts that, may put it back on the list.
        raise InvalidToken(SUPPRESSED_UNDO)
    return subscriber


def undo_unsubscribe(
    session: Session,
    signer: TokenSigner,
    token: str,
    *,
    now: datetime,
    origin: Origin = READER_PAGE,
    wording: Wording | None = None,
) -> Subscriber:
    """Take back an unsubscribe within UNDO_TTL: the reader is confirmed again with the
    choices the row kept (language, topics and any other), with no new opt-in. Logged as
    RESTORED (a join on the desk's charts), owed as subscriber.confirmed to webhooks, and one
    UNDO row in the consent ledger. Single use: the version the token names moves on."""
    subscriber = check_undo(session, signer, token)
    won = session.execute(
        update(Subscriber)
        .where(
            Subscriber.id == subscriber.id,
            Subscriber.token_version == subscriber.token_version,
            Subscriber.status == SubscriberStatus.UNSUBSCRIBED,
        )
        .values(
            status=SubscriberStatus.CONFIRMED,
            unsubscribed_at=None,
            token_version=Subscriber.token_version + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(subscriber)
    if not won:  # a double click: the other request put the reader back
        raise InvalidToken(USED_UNDO)
    subscription_events.record(session, SubscriptionEventKind.RESTORED, at=now)
    webhook_outbox.subscriber_changed(session, EventType.SUBSCRIBER_CONFIRMED, subscriber, now=now)
    consent_ledger.append(session, subscriber, ConsentAct.UNDO, origin, now=now, wording=wording)
    session.flush()
    return subscriber


def leave_list(
    session: Session,
    subscriber_id: int,
    kind: SubscriptionEventKind,
    *,
    now: datetime,
    release_id: int | None = None,
    **values: Any,
) -> bool:
    """Move a confirmed reader off the list (compare-and-set on the status, so that of two
    requests at once only one wins) and log the departure. False when the reader was not
    confirmed; nothing is changed then."""
    left = session.execute(
        update(Subscriber)
        .where(Subscriber.id == subscriber_id, Subscriber.status == SubscriberStatus.CONFIRMED)
        .values(values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if left:
        subscription_events.record(session, kind, at=now, release_id=release_id)
    return bool(left)


def change_preferences(
    session: Session,
    subscriber: Subscriber,
    *,
    language: str,
    topics: list[str],
    frequency: Frequency | None = None,
    now: datetime | None = None,
    origin: Origin = READER_PAGE,
) -> Subscriber:
    """Set the reader's language, topics and (unless None) how often they hear from us; one
    ledger row when that changed anything. A reader who leaves a digest for "immediately" gets
    what was held for them in one last daily digest (domain/digests): nothing lost, nothing
    twice."""
    before = (subscriber.language, subscriber.topics, subscriber.frequency)
    subscriber.language = language
    subscriber.set_topics(topics)
    if frequency is not None:
        subscriber.frequency = frequency
    session.flush()
    if (subscriber.language, subscriber.topics, subscriber.frequency) != before:
        consent_ledger.append(
            session, subscriber, ConsentAct.PREFERENCES, origin, now=now or utcnow()
        )
    return subscriber


def export_data(session: Session, subscriber: Subscriber) -> dict[str, Any]:
    """Everything kept about one reader, for 'download my data': the row and the ledger."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "status": subscriber.status.value,
        "language": subscriber.language,
        "topics": subscriber.topics,
        "frequency": subscriber.frequency.value,
        "created_at": iso(subscriber.created_at),
        "confirmed_at": iso(subscriber.confirmed_at),
        "unsubscribed_at": iso(subscriber.unsubscribed_at),
        "consent": {
            "at": iso(subscriber.consent_at),
            "ip": subscriber.consent_ip,
            "user_agent": subscriber.consent_user_agent,
            "source": subscriber.consent_source.value,
            "text_version": subscriber.consent_text_version,
            "note": subscriber.consent_note,
        },
        "confirmed_from_ip": subscriber.confirmed_ip,
        "consent_ledger": [
            {
                "at": iso(entry.occurred_at),
                "act": entry.act.value,
                "source": entry.source.value,
                "ip": entry.ip,
                "user_agent": entry.user_agent,
                "language": entry.language,
                "topics": entry.topics.split(",") if entry.topics else [],
                "frequency": entry.frequency,
                "note": entry.note,
                "text_sha256": entry.text_sha256,
                "text": entry.text,
                "text_language": entry.text_language,
            }
            for entry in consent_ledger.history(session, subscriber.id)
        ],
    }


def erase(
    session: Session, subscriber: Subscriber, *, now: datetime, origin: Origin = READER_PAGE
) -> None:
    """Delete the row; keep only a hash so that an import cannot add the address again.

    A confirmed reader's departure is logged, with nothing that names them. Their consent
    ledger goes with them; one anonymous ERASE row says when and through which door."""
    leave_list(
        session,
        subscriber.id,
        SubscriptionEventKind.ERASED,
        now=now,
        status=SubscriberStatus.UNSUBSCRIBED,  # the row goes next; this only claims the count
    )
    suppress(session, subscriber.email, SuppressionReason.ERASED, now=now)
    webhook_outbox.forget_address(session, subscriber)
    # Suppressed before for a bounce or a complaint: from now on the hash alone.
    session.execute(
        update(Suppression)
        .where(Suppression.email_hash == address_hash(subscriber.email))
        .values(email=None)
    )
    consent_ledger.forget(session, subscriber.id)
    consent_ledger.append_anonymous(session, ConsentAct.ERASE, Origin(origin.source), now=now)
    session.delete(subscriber)
    session.flush()


def suppress(
    session: Session,
    email: str,
    reason: SuppressionReason,
    *,
    now: datetime,
    release_id: int | None = None,
) -> bool:
    """Keep `email` (as its hash) from being mailed or imported again. True when it was not
    suppressed before; an address suppressed already keeps its first reason."""
    added = session.execute(
        insert_for(session, Suppression)
        .values(
            email_hash=address_hash(email),
            email=None if reason is SuppressionReason.ERASED else email,
            reason=reason,
            created_at=now,
            release_id=release_id,
        )
        .on_conflict_do_nothing(index_elements=["email_hash"])
    ).rowcount
    return bool(added)


def is_suppressed(session: Session, email: str) -> bool:
    digest = address_hash(email)
    return (
        session.scalar(select(Suppression.id).where(Suppression.email_hash == digest)) is not None
    )
