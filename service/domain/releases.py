"""Releases: write, publish (idempotent), pause, resume, cancel, and how far the send has come."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select, update
from sqlalchemy.orm import Session

from service.db import MAX_ROW_ID
from service.domain import corrections, webhook_outbox
from service.domain.content import render_markdown
from service.domain.errors import N_, DomainError, ErrorKind, InvalidInput, NotFound
from service.domain.mime import lines_of
from service.domain.subscriptions import exact_language, topic_list
from service.domain.webhook_endpoints import EventType
from service.locales import LANGUAGES
from service.models import Delivery, DeliveryStatus, Release, ReleaseKind, ReleaseStatus

MAX_TITLE = 300
MAX_SUMMARY = 2_000
MAX_BODY = 200_000
BACKDATE_LIMIT = timedelta(days=2)
EMAILED_STATES = (ReleaseStatus.SENDING, ReleaseStatus.PAUSED, ReleaseStatus.SENT)
# A release that has been published, sent by email or not: the public archive shows these.
PUBLIC_STATES = (*EMAILED_STATES, ReleaseStatus.PUBLISHED)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_LINE_BREAK = re.compile(r"[\r\n\u2028\u2029\x85]")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
_TRANSLITERATE = str.maketrans({"æ": "ae", "ø": "o", "å": "a", "Æ": "ae", "Ø": "o", "Å": "a"})
# RFC 3339 section 5.6 date-time (what OpenAPI's `format: date-time` means) in the years 2 to
# 9000, which every time zone can show; datetime.fromisoformat then checks the calendar.
DATE_TIME = re.compile(
    r"(?:000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9000)-(?:0[1-9]|1[0-2])"
    r"-(?:0[1-9]|[12][0-9]|3[01])[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(?:\.[0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])",
    re.ASCII,
)
MAX_DATE_TIME = 40
TEXT_FIELDS = frozenset({"title", "summary", "body"})


class InvalidState(DomainError):
    code = "invalid_state"
    kind = ErrorKind.CONFLICT
    message = N_("The release cannot do that in its present state.")


class Embargoed(InvalidState):
    """Publishing (now or at a schedule) before the release's embargo ends."""

    code = "embargoed"
    message = N_("The release is under embargo until %(time)s: it cannot be published before.")


class InvalidEmbargo(InvalidInput):
    """A schedule or a publish request that the embargo in the same request rules out."""

    code = "embargoed"
    message = N_("The time to publish cannot be before the embargo ends.")


@dataclass(frozen=True)
class ReleaseText:
    title: str
    summary: str
    body: str

    def as_version(self) -> dict[str, str]:
        return {
            "title": self.title,
            "summary": self.summary,
            "body": self.body,
            "body_html": render_markdown(self.body),
        }


@dataclass(frozen=True)
class ReleaseDraft:
    text: ReleaseText
    language: str
    topics: list[str]
    translations: dict[str, ReleaseText] = field(default_factory=dict)
    fallback_to_primary: bool = True
    email: bool | None = None  # None: the default (yes, unless backdated)
    publish: bool = False
    publish_at: datetime | None = None
    published_at: datetime | None = None
    embargo_until: datetime | None = None
    corrects: int | None = None  # the id of the sent release this one corrects


def _text(raw: object, name: str, *, limit: int, one_line: bool, required: bool) -> str:
    """A text field; null is not text (send "" for none). `limit` counts what was sent,
    surrounding spaces included, as the schema's maxLength does."""
    if not isinstance(raw, str):
        raise InvalidInput(N_("The field '%(field)s' must be text."), field=name)
    if not raw.isascii() and _LONE_SURROGATE.search(raw):
        # "\ud800" in JSON is no character (RFC 8259 8.2), and no database can store it.
        raise InvalidInput(N_("The field '%(field)s' holds an invalid character."), field=name)
    if len(raw) > limit:
        raise InvalidInput(
            N_("The field '%(field)s' has more than %(count)s characters."), field=name, count=limit
        )
    if one_line and _LINE_BREAK.search(raw):
        raise InvalidInput(N_("The field '%(field)s' must be one line."), field=name)
    value = lines_of(raw).strip()  # stored with LF alone: no bare CR can reach a mail
    if one_line and "\t" in value:  # a subject line would show it as a space, not as given
        raise InvalidInput(N_("The field '%(field)s' holds control characters."), field=name)
    if _CONTROL.search(value.replace("\n", "").replace("\t", "")):
        raise InvalidInput(N_("The field '%(field)s' holds control characters."), field=name)
    if required and not value:
        raise InvalidInput(N_("The field '%(field)s' is required."), field=name)
    return value


def parse_text(raw: dict[str, Any], *, prefix: str = "") -> ReleaseText:
    """Title, summary and body; a missing summary or body is empty, a null one is refused."""

    def field(name: str, limit: int, *, one_line: bool = False, required: bool = False) -> str:
        return _text(
            raw.get(name, ""), prefix + name, limit=limit, one_line=one_line, required=required
        )

    return ReleaseText(
        title=field("title", MAX_TITLE, one_line=True, required=True),
        summary=field("summary", MAX_SUMMARY),
        body=field("body", MAX_BODY),
    )


def parse_datetime(raw: object, name: str) -> datetime | None:
    """An RFC 3339 (section 5.6) date-time with its offset, as UTC; None for null.

    Years 2 to 9000 only: years near 9999 cannot be shown in every time zone (or even turned
    into UTC), and no release is planned that far ahead. Raises InvalidInput."""
    if raw is None:
        return None
    if isinstance(raw, str) and len(raw) <= MAX_DATE_TIME and DATE_TIME.fullmatch(raw):
        try:
            value = datetime.fromisoformat(raw.upper().replace("Z", "+00:00"))
        except ValueError:  # a day the month does not have
            pass
        else:
            return value.astimezone(UTC)
    if isinstance(raw, str) and re.fullmatch(r"[0-9T:.-]{10,29}", raw):
        raise InvalidInput(
            N_("The field '%(field)s' needs a time zone, like 2026-12-01T09:00:00+01:00."),
            field=name,
        )
    raise InvalidInput(N_("The field '%(field)s' must be an ISO 8601 date and time."), field=name)


def _flag(raw: object, name: str) -> bool:
    if not isinstance(raw, bool):
        raise InvalidInput(N_("The field '%(field)s' must be true or false."), field=name)
    return raw


def _optional_flag(raw: dict[str, Any], name: str) -> bool | None:
    """A true/false field: None when left out; null is refused like any other non-boolean."""
    return _flag(raw[name], name) if name in raw else None


def _translations(raw: dict[str, Any], language: str) -> dict[str, ReleaseText]:
    """The `translations` object: at most one version per other language, each holding
    title (required), summary and body, nothing else."""
    if "translations" not in raw:
        return {}
    value = raw["translations"]
    if not isinstance(value, dict):
        raise InvalidInput(N_("Translations must be an object keyed by language."))
    translations: dict[str, ReleaseText] = {}
    for key, text in value.items():
        other = exact_language(key)
        if other == language:
            raise InvalidInput(N_("A translation cannot be in the release's own language."))
        if not isinstance(text, dict):
            raise InvalidInput(N_("Each translation must hold title, summary and body."))
        unknown = sorted(set(text) - TEXT_FIELDS)
        if unknown:
            raise InvalidInput(
                N_("Unknown field(s): %(fields)s."),
                fields=", ".join(f"translations.{other}.{name}" for name in unknown)[:200],
            )
        translations[other] = parse_text(text, prefix=f"translations.{other}.")
    return translations


RELEASE_FIELDS = frozenset(
    {"title", "summary", "body", "language", "topics", "translations", "publish", "publish_at",
     "published_at", "email", "fallback_to_primary", "embargo_until", "corrects"}
)  # fmt: skip


def parse_release(
    raw: dict[str, Any], *, now: datetime, past_schedule: bool = False
) -> ReleaseDraft:
    """Validate what a publisher sent; raises InvalidInput with a message naming the field.

    `past_schedule`: a `publish_at` that has passed schedules the release as due (the sweep
    publishes it at once, as it would a schedule whose time came) instead of being refused:
    the API's way, where a client's clock may be behind and the schema can state no "now".
    """
    unknown = sorted(set(raw) - RELEASE_FIELDS)
    if unknown:
        raise InvalidInput(N_("Unknown field(s): %(fields)s."), fields=", ".join(unknown)[:200])
    if raw.get("language") is None:
        raise InvalidInput(N_("The field '%(field)s' is required."), field="language")
    language = exact_language(raw["language"])
    translations = _translations(raw, language)
    publish_at = parse_datetime(raw.get("publish_at"), "publish_at")
    if publish_at is not None and publish_at <= now and not past_schedule:
        raise InvalidInput(N_("The time to publish must be in the future."))
    published_at = parse_datetime(raw.get("published_at"), "published_at")
    if published_at is not None and published_at > now:
        raise InvalidInput(N_("Use publish_at to publish later; published_at is for backdating."))
    publish = _optional_flag(raw, "publish") or False
    if publish and publish_at is not None:
        raise InvalidInput(N_("Give either publish or publish_at, not both."))
    embargo_until = parse_datetime(raw.get("embargo_until"), "embargo_until")
    if publish:
        refuse_embargoed(embargo_until, now, asked=True)
    check_schedule(publish_at, embargo_until)
    return ReleaseDraft(
        text=parse_text(raw),
        language=language,
        topics=topic_list(raw["topics"]) if "topics" in raw else [],
        translations=translations,
        fallback_to_primary=_optional_flag(raw, "fallback_to_primary") is not False,
        email=_optional_flag(raw, "email"),
        publish=publish,
        publish_at=publish_at,
        published_at=published_at,
        embargo_until=embargo_until,
        corrects=corrections.parse_corrects(raw.get("corrects")),
    )


def refuse_embargoed(embargo_until: datetime | None, now: datetime, *, asked: bool = False) -> None:
    """Publishing at `now` would break an embargo that has not ended: Embargoed (409) for a
    stored release, InvalidEmbargo (422) when one request `asked` for both."""
    if embargo_until is not None and now < embargo_until:
        error = InvalidEmbargo if asked else Embargoed
        raise error(Embargoed.message, time=f"{embargo_until:%Y-%m-%d %H:%M} UTC")


def check_schedule(publish_at: datetime | None, embargo_until: datetime | None) -> None:
    """A schedule that falls before the embargo ends is refused (InvalidEmbargo): it would
    be refused when its time came."""
    if publish_at is not None and embargo_until is not None and publish_at < embargo_until:
        raise InvalidEmbargo()


def slugify(title: str) -> str:
    text = unicodedata.normalize("NFKD", title.translate(_TRANSLITERATE))
    ascii_text = text.encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")
    return slug[:100].rstrip("-") or "release"


SLUG_LOCK = 0x70726573  # PostgreSQL advisory lock key of the release slug namespace


def _unique_slug(session: Session, title: str) -> str:
    """A slug no release has, held until the caller's commit: two releases created at once
    with one title must not both pick it (the second would fail on UNIQUE, a 500)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(SLUG_LOCK)))
    else:  # SQLite: a write first takes the database's write lock, then the read is current
        session.execute(
            update(Release)
            .where(false())
            .values(slug=Release.slug)
            .execution_options(synchronize_session=False)
        )
    return next_slug(session, title)


def _slug_family(base: str) -> ColumnElement[bool]:
    """`base` and its numbered forms (`base-2`, ...): where a title's slug can be."""
    return (Release.slug == base) | Release.slug.like(f"{base}-%")


def next_slug(session: Session, title: str) -> str:
    """The slug a release of `title` created now gets: slugify(title), or with the first
    free number (`-2`, `-3` ...) when a release has it. The editor's preview of an unsaved
    release shows this one, so that its link is the one the release will have; only
    create_release holds it (under a lock) while it saves."""
    base = slugify(title)
    taken = set(session.scalars(select(Release.slug).where(_slug_family(base))))
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def same_title_key(title: str) -> str:
    """A title as compared for "the same title": Unicode-normalized (NFKC), lower case,
    every run of white space (no-break spaces too) as one space, none at the ends."""
    return " ".join(unicodedata.normalize("NFKC", title).lower().split())


def titles_of(release: Release | ReleaseDraft) -> list[str]:
    """The main title and each translation's."""
    if isinstance(release, ReleaseDraft):
        return [release.text.title, *(text.title for text in release.translations.values())]
    return [release.title, *(v["title"] for v in (release.translations or {}).values())]


def published_with_title(
    session: Session, titles: list[str], *, excluding: int | None = None
) -> list[Release]:
    """Public releases (PUBLIC_STATES: published or emailed), but `excluding`'s id, with a
    title (main or translation) that is one of `titles` (same_title_key), newest first. For
    a warning only: two releases may share a title.

    Only the titles are read, not the slug: a title edited after the release was created no
    longer matches its slug."""
    keys = {same_title_key(title) for title in titles if title.strip()}
    if not keys:
        return []
    rows = session.execute(
        select(
            Release.id,
            Release.title,
            *(Release.translations[code]["title"].as_string() for code in LANGUAGES),
        )
        .where(Release.status.in_(PUBLIC_STATES), Release.kind == ReleaseKind.RELEASE)
        .where(Release.id != (excluding or 0))
    )
    ids = [row[0] for row in rows if any(t and same_title_key(t) in keys for t in row[1:])]
    if not ids:
        return []
    return list(
        session.scalars(
            select(Release)
            .where(Release.id.in_(ids))
            .order_by(Release.published_at.desc(), Release.id.desc())
        )
    )


def release_from_draft(draft: ReleaseDraft, *, slug: str, **columns: Any) -> Release:
    """A Release holding the draft's texts and choices, not yet in any session."""
    primary = draft.text.as_version()
    return Release(
        slug=slug,
        title=primary["title"],
        summary=primary["summary"],
        body=primary["body"],
        body_html=primary["body_html"],
        language=draft.language,
        topics=draft.topics,
        translations={lang: text.as_version() for lang, text in draft.translations.items()},
        fallback_to_primary=draft.fallback_to_primary,
        send_email=draft.email is not False,
        embargo_until=draft.embargo_until,
        corrects_id=draft.corrects,
        **columns,
    )


def create_release(
    session: Session, draft: ReleaseDraft, *, publisher_id: int | None, now: datetime
) -> Release:
    if draft.corrects is not None:
        corrections.check_original(session, draft.corrects, correction_id=None)
    release = release_from_draft(
        draft,
        slug=_unique_slug(session, draft.text.title),
        status=ReleaseStatus.DRAFT,
        published_at=draft.published_at,
        created_by_id=publisher_id,
        created_at=now,
    )
    session.add(release)
    session.flush()
    if draft.publish_at is not None:
        schedule(session, release, draft.publish_at)
    # Backdated releases are archive material: emailed only when the publisher says so.
    if draft.published_at is not None and now - draft.published_at > BACKDATE_LIMIT:
        release.send_email = draft.email is True
    return release


EDITABLE_FIELDS = frozenset({"title", "summary", "body", "translations", "topics", "publish_at"})
# Who gets the release and how: only while nothing has gone out.
UNSENT_FIELDS = frozenset({"topics", "language", "email", "fallback_to_primary"})
# When it may come out and what it corrects: only while it is not out.
UNPUBLISHED_FIELDS = frozenset({"embargo_until", "corrects"})
UNSENT_STATES = (ReleaseStatus.DRAFT, ReleaseStatus.SCHEDULED)


def edit_release(
    session: Session,
    release_id: int,
    raw: dict[str, Any],
    *,
    now: datetime,
    past_schedule: bool = False,
) -> Release:
    """Change the text of a release (`past_schedule` as for parse_release). Editing never
    sends anything: a release that went out
    stays out, and readers get what was sent to them. A digest run is written by Pressroom
    from the releases it lists, and is never edited (InvalidState)."""
    release = get_release(session, release_id)
    if release.kind is ReleaseKind.DIGEST:
        raise InvalidState(N_("A digest is made of the releases it lists: edit those instead."))
    unknown = sorted(set(raw) - EDITABLE_FIELDS - UNSENT_FIELDS - UNPUBLISHED_FIELDS)
    if unknown:
        raise InvalidInput(
            N_("These fields cannot be edited: %(fields)s."), fields=", ".join(unknown)[:200]
        )
    if release.status is ReleaseStatus.CANCELLED:
        raise InvalidState(N_("A cancelled release cannot be edited."))
    if set(raw) & UNSENT_FIELDS and release.status not in UNSENT_STATES:
        raise InvalidState(N_("Topics decide who gets the release: fixed once it is out."))
    if set(raw) & UNPUBLISHED_FIELDS and release.status not in UNSENT_STATES:
        raise InvalidState(N_("The embargo and what it corrects are fixed once it is out."))
    # Read before anything changes: a bad value changes nothing.
    embargo_until = (
        parse_datetime(raw["embargo_until"], "embargo_until")
        if "embargo_until" in raw
        else release.embargo_until
    )
    corrects = corrections.parse_corrects(raw["corrects"]) if "corrects" in raw else None
    if corrects is not None:
        corrections.check_original(session, corrects, correction_id=release.id)
    if "language" in raw:
        if raw["language"] is None:
            raise InvalidInput(N_("The field '%(field)s' is required."), field="language")
        language = exact_language(raw["language"])
        if language != release.language:
            _make_primary(release, language)
    merged = {**(release.version(release.language) or {}), **raw}
    text = parse_text(merged)
    version = text.as_version()
    release.title, release.summary = version["title"], version["summary"]
    release.body, release.body_html = version["body"], version["body_html"]
    if "translations" in raw:
        sent = raw["translations"]
        if "language" not in raw and isinstance(sent, dict) and release.language in sent:
            # A well-formed request: what it conflicts with is the language stored (409).
            raise InvalidState(N_("A translation cannot be in the release's own language."))
        translations = _translations(raw, release.language)
        release.translations = {lang: t.as_version() for lang, t in translations.items()}
    if "topics" in raw:
        release.topics = topic_list(raw["topics"])
    if "email" in raw:
        release.send_email = _flag(raw["email"], "email")
    if "fallback_to_primary" in raw:
        release.fallback_to_primary = _flag(raw["fallback_to_primary"], "fallback_to_primary")
    if "corrects" in raw:
        release.corrects_id = corrects
    if "publish_at" in raw:
        when = parse_datetime(raw["publish_at"], "publish_at")
        check_schedule(when, embargo_until)
        _reschedule(session, release, when, now=now, past_schedule=past_schedule)
    elif release.status is ReleaseStatus.SCHEDULED:
        check_schedule(release.publish_at, embargo_until)
    release.embargo_until = embargo_until
    release.updated_at = now
    session.flush()
    return release


def _reschedule(
    session: Session,
    release: Release,
    when: datetime | None,
    *,
    now: datetime,
    past_schedule: bool = False,
) -> None:
    """`publish_at` on an edit: a future time schedules a draft or moves its schedule; null
    means "not scheduled": a scheduled release goes back to a draft, a draft stays one, and a
    release that is out has no schedule to drop (409)."""
    if when is None:
        if release.status is ReleaseStatus.SCHEDULED:
            unschedule(session, release)
        elif release.status is not ReleaseStatus.DRAFT:
            raise InvalidState()
        return
    if when <= now and not past_schedule:
        raise InvalidInput(N_("The time to publish must be in the future."))
    schedule(session, release, when)


def _make_primary(release: Release, language: str) -> None:
    """Make `language` the release's main language. Its version, when there is one, moves up
    and the former main text becomes a translation; else the main text was in `language` all
    along and only its label changes. No text is lost either way."""
    translations = dict(release.translations or {})
    promoted = translations.pop(language, None)
    if promoted is not None:
        translations[release.language] = release.version(release.language)
        release.title, release.summary = promoted["title"], promoted["summary"]
        release.body, release.body_html = promoted["body"], promoted["body_html"]
    release.language = language
    release.translations = translations


def get_release(session: Session, release_id: int) -> Release:
    if not 0 < release_id <= MAX_ROW_ID:
        raise NotFound(N_("There is no release with this id."))
    release = session.get(Release, release_id)
    if release is None:
        raise NotFound(N_("There is no release with this id."))
    return release


def get_press_release(session: Session, release_id: int) -> Release:
    """A release of the press office's (get_release); a digest run is none (NotFound): it is
    watched, paused and resumed, never edited, previewed, tested or shown."""
    release = get_release(session, release_id)
    if release.kind is ReleaseKind.DIGEST:
        raise NotFound(N_("There is no release with this id."))
    return release


def newest_releases(session: Session, *, limit: int, before: int = 0) -> list[Release]:
    """At most `limit` releases of any status, newest (highest id) first; with `before`, only
    those with a smaller id (keyset pagination: the last id of the previous page). Digest
    runs are no releases of the press office's: they are not among them."""
    query = (
        select(Release)
        .where(Release.kind == ReleaseKind.RELEASE)
        .order_by(Release.id.desc())
        .limit(limit)
    )
    if before:
        query = query.where(Release.id < before)
    return list(session.scalars(query))


def schedule(session: Session, release: Release, publish_at: datetime) -> None:
    if release.status not in (ReleaseStatus.DRAFT, ReleaseStatus.SCHEDULED):
        raise InvalidState()
    release.publish_at = publish_at
    release.status = ReleaseStatus.SCHEDULED
    session.flush()


def unschedule(session: Session, release: Release) -> None:
    """Back to a draft: nothing goes out until someone publishes or schedules it again."""
    if release.status is not ReleaseStatus.SCHEDULED:
        raise InvalidState()
    release.publish_at = None
    release.status = ReleaseStatus.DRAFT
    session.flush()


def publish(session: Session, release_id: int, *, now: datetime) -> tuple[Release, bool]:
    """Publish now. Returns the release and whether a send must start (once, whoever calls).

    A compare-and-set on the status makes a double click, or two workers, start one send.
    """
    release = get_release(session, release_id)
    if release.status in UNSENT_STATES:
        refuse_embargoed(release.embargo_until, now)
    target = ReleaseStatus.SENDING if release.send_email else ReleaseStatus.PUBLISHED
    won = session.execute(
        update(Release)
        .where(
            Release.id == release_id,
            Release.status.in_([ReleaseStatus.DRAFT, ReleaseStatus.SCHEDULED]),
            # The embargo as the row holds it at the moment of the change, not as read above.
            or_(Release.embargo_until.is_(None), Release.embargo_until <= now),
        )
        .values(
            status=target,
            published_at=func.coalesce(Release.published_at, now),
            send_started_at=now if target is ReleaseStatus.SENDING else None,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(release)
    if not won and release.status is ReleaseStatus.CANCELLED:
        raise InvalidState(N_("A cancelled release cannot be published."))
    if not won and release.status in UNSENT_STATES:
        refuse_embargoed(release.embargo_until, now)  # an embargo set in the meantime
    if won:
        webhook_outbox.release_changed(session, EventType.RELEASE_PUBLISHED, release, now=now)
    return release, bool(won) and target is ReleaseStatus.SENDING


def pause(
    session: Session, release_id: int, *, reason: str | None = None, now: datetime
) -> Release:
    """Pause a sending release (staff, or the relay halting a send: `reason`). A compare-and-
    set on the status: of two pauses racing (staff and a send guard), only the one that paused
    it owes release.paused; the other finds it paused and changes nothing. Raises NotFound,
    InvalidState (not sending)."""
    release = get_release(session, release_id)
    won = session.execute(
        update(Release)
        .where(Release.id == release_id, Release.status == ReleaseStatus.SENDING)
        .values(status=ReleaseStatus.PAUSED, pause_reason=reason)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(release)
    if won:
        webhook_outbox.release_changed(session, EventType.RELEASE_PAUSED, release, now=now)
    elif release.status is not ReleaseStatus.PAUSED:
        raise InvalidState(N_("Only a release that is sending can be paused."))
    return release


def resume(session: Session, release_id: int) -> Release:
    release = get_release(session, release_id)
    if release.status is ReleaseStatus.SENDING:
        return release
    if release.status is not ReleaseStatus.PAUSED:
        raise InvalidState(N_("Only a paused release can be resumed."))
    release.status = ReleaseStatus.SENDING
    release.pause_reason = None
    if release.pause_guard:  # send_guards: the staff saw the figures and go on regardless
        release.guards_waived = ",".join(sorted(release.waived_guards | {release.pause_guard}))
        release.pause_guard = None
    session.flush()
    return release


def cancel(session: Session, release_id: int, *, now: datetime) -> Release:
    """Stop for good: nobody who has not had it yet gets it. Sent mail stays sent."""
    release = get_release(session, release_id)
    if release.status is ReleaseStatus.CANCELLED:
        return release
    if release.status in (ReleaseStatus.SENT, ReleaseStatus.PUBLISHED):
        raise InvalidState(N_("A release that is out cannot be cancelled."))
    release.status = ReleaseStatus.CANCELLED
    release.send_finished_at = now
    session.execute(
        update(Delivery)
        .where(
            Delivery.release_id == release_id,
            or_(
                Delivery.status == DeliveryStatus.PENDING,
                # Owed in a digest that has not taken it yet: a cancelled release owes nothing.
                and_(Delivery.status == DeliveryStatus.HELD, Delivery.digest_id.is_(None)),
            ),
        )
        .values(status=DeliveryStatus.CANCELLED)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return release


def delivery_counts(session: Session, release_id: int) -> dict[str, int]:
    return delivery_counts_of(session, [release_id])[release_id]


def delivery_counts_of(session: Session, release_ids: list[int]) -> dict[int, dict[str, int]]:
    """Delivery rows by state for several releases, in one query. `total` and the states
    count the rows that went, or go, out with the release itself and through digests alike,
    but for `held`: rows owed in a reader's digest that no digest has sent yet, never in
    `total` (the release's own send is done without them). `in_digests`: readers who get, or
    got, it in a digest, held or not (domain/digests); `at_once`: readers sent it in its own
    email."""
    rows = session.execute(
        select(Delivery.release_id, Delivery.status, Delivery.digest_id.is_not(None), func.count())
        .where(Delivery.release_id.in_(release_ids))
        .group_by(Delivery.release_id, Delivery.status, Delivery.digest_id.is_not(None))
    ).all()
    by_release: dict[int, dict[str, int]] = {release_id: {} for release_id in release_ids}
    in_digests: dict[int, int] = dict.fromkeys(release_ids, 0)
    at_once: dict[int, int] = dict.fromkeys(release_ids, 0)
    for release_id, status, listed, count in rows:
        states = by_release[release_id]
        states[status.value] = states.get(status.value, 0) + count
        if listed or status is DeliveryStatus.HELD:
            in_digests[release_id] += count
        elif status is DeliveryStatus.SENT:
            at_once[release_id] += count
    return {
        release_id: {
            "total": sum(n for state, n in by_status.items() if state != "held"),
            "sent": by_status.get("sent", 0),
            "failed": by_status.get("failed", 0),
            "pending": by_status.get("pending", 0) + by_status.get("sending", 0),
            "skipped": by_status.get("skipped", 0),
            "cancelled": by_status.get("cancelled", 0),
            "held": by_status.get("held", 0),
            "in_digests": in_digests[release_id],
            "at_once": at_once[release_id],
        }
        for release_id, by_status in by_release.items()
    }


def release_state(release: Release) -> dict[str, Any]:
    """The release as the API shows it."""
    return {
        "id": release.id,
        "slug": release.slug,
        "status": release.status.value,
        "title": release.title,
        "summary": release.summary,
        "body": release.body,
        "language": release.language,
        "topics": list(release.topics or []),
        "translations": {
            lang: {k: v[k] for k in ("title", "summary", "body")}
            for lang, v in (release.translations or {}).items()
        },
        "fallback_to_primary": release.fallback_to_primary,
        "email": release.send_email,
        "publish_at": release.publish_at.isoformat() if release.publish_at else None,
        "published_at": release.published_at.isoformat() if release.published_at else None,
        "embargo_until": release.embargo_until.isoformat() if release.embargo_until else None,
        "corrects": release.corrects_id,
        "languages": [lang for lang in LANGUAGES if release.version(lang)],
    }
