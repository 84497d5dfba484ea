"""The publisher's desk: write a release, preview it, test it, publish it, watch it go out."""

from __future__ import annotations

from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as BaseResponse

from service import dispatch
from service.app_state import session_scope, settings
from service.db import utcnow
from service.dispatch import TaskName
from service.domain import corrections, releases, send_guards
from service.domain.addresses import display_address
from service.domain.errors import N_, DomainError, ErrorKind, InvalidInput
from service.domain.mail_headers import HeaderError
from service.domain.refusals import NO_SMTPUTF8
from service.domain.subscriptions import parse_language, parse_topics
from service.locales import LANGUAGES, PRIMARY_LANGUAGE
from service.models import Release, ReleaseKind, ReleaseStatus
from service.sending import control, ledger, progress
from service.sending.messages import Composer
from service.web.body_limits import allow_body
from service.web.desk_clock import (
    EMBARGO_NOT_A_TIME,
    repeated_hour_note,
    repeated_hour_notice,
    schedule_time,
)
from service.web.desk_login import guard
from service.web.errors import status_of
from service.web.l10n import format_datetime
from service.web.l10n import gettext as _

bp = Blueprint("desk_releases", __name__, url_prefix="/admin/releases")
guard(bp)

RELEASE_FORM_LIMIT = 2 * 1024 * 1024  # the text and a translation, each up to MAX_BODY
# The email's own HTML in a frame of the editor: its inlined styles, no scripts, no forms.
PREVIEW_POLICY = (
    "default-src 'none'; img-src * data:; style-src 'unsafe-inline'; "
    "form-action 'none'; frame-ancestors 'self'; base-uri 'none'"
)


def other_language(language: str) -> str:
    return next(code for code in LANGUAGES if code != language)


# --- The editor's form, to and from the fields the domain knows ------------------------------


def form_fields(form: MultiDict[str, str], *, unsent: bool) -> dict[str, Any]:
    """The editor's form as the domain's release fields (the API's JSON shape).

    `unsent`: who gets the release (language, topics, email) may still change."""
    language = parse_language(form.get("language"))
    translation = {
        name: form.get(f"translation_{name}", "") for name in ("title", "summary", "body")
    }
    fields: dict[str, Any] = {
        "title": form.get("title", ""),
        "summary": form.get("summary", ""),
        "body": form.get("body", ""),
        "translations": (
            {other_language(language): translation}
            if any(value.strip() for value in translation.values())
            else {}
        ),
    }
    if unsent:
        fields |= {
            "language": language,
            # The form's spellings (a comma-separated field, any case) made the API's list.
            "topics": parse_topics(
                form.getlist("topics") if settings().topics else form.get("topics", "")
            ),
            "email": form.get("email") == "yes",
            "fallback_to_primary": form.get("fallback_to_primary") == "yes",
            "publish_at": schedule_time(form.get("publish_at", "")),
            "embargo_until": schedule_time(
                form.get("embargo_until", ""), not_a_time=EMBARGO_NOT_A_TIME
            ),
            "corrects": corrects_choice(form.get("corrects", "")),
        }
    return fields


def corrects_choice(raw: str) -> int | None:
    """The editor's "correction of" choice: a release id, or empty for none."""
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise InvalidInput(N_("Choose the release this one corrects from the list."))
    return int(raw)


def local_field(moment: datetime | None) -> str:
    """A stored time as a `datetime-local` field shows it: on the desk's clock, to the minute."""
    return moment.astimezone(settings().zone).strftime("%Y-%m-%dT%H:%M") if moment else ""


def form_values(release: Release | None) -> dict[str, Any]:
    """What the editor shows: a release's fields, or a new release's defaults."""
    if release is None:
        return {
            "title": "",
            "summary": "",
            "body": "",
            "language": PRIMARY_LANGUAGE,
            "topics": [],
            "email": True,
            "fallback_to_primary": True,
            "publish_at": "",
            "embargo_until": "",
            "corrects": "",
            "translation": {"title": "", "summary": "", "body": ""},
        }
    translation = (release.translations or {}).get(other_language(release.language)) or {}
    return {
        "title": release.title,
        "summary": release.summary,
        "body": release.body,
        "language": release.language,
        "topics": list(release.topics or []),
        "email": release.send_email,
        "fallback_to_primary": release.fallback_to_primary,
        "publish_at": local_field(release.publish_at),
        "embargo_until": local_field(release.embargo_until),
        "corrects": str(release.corrects_id or ""),
        "translation": {key: translation.get(key, "") for key in ("title", "summary", "body")},
    }


def posted_values(form: MultiDict[str, str]) -> dict[str, Any]:
    """The form as it was sent, to show it again with an error message."""
    return {
        "title": form.get("title", ""),
        "summary": form.get("summary", ""),
        "body": form.get("body", ""),
        "language": form.get("language") if form.get("language") in LANGUAGES else PRIMARY_LANGUAGE,
        "topics": form.getlist("topics")
        if settings().topics
        else [t.strip() for t in form.get("topics", "").split(",") if t.strip()],
        "email": form.get("email") == "yes",
        "fallback_to_primary": form.get("fallback_to_primary") == "yes",
        "publish_at": form.get("publish_at", ""),
        "embargo_until": form.get("embargo_until", ""),
        "corrects": form.get("corrects", ""),
        "translation": {
            key: form.get(f"translation_{key}", "") for key in ("title", "summary", "body")
        },
    }


def editor(
    release: Release | None,
    values: dict[str, Any],
    *,
    error: DomainError | None = None,
    same_title: list[dict[str, Any]] | None = None,
) -> str | tuple[str, int]:
    """The editor; with an error, the form as it was sent and what is wrong with it; with
    `same_title`, the form as it was sent, not saved, and the published releases whose
    title it has (same_title_of), to save it all the same or change the title."""
    unsent = release is None or release.status in releases.UNSENT_STATES
    with session_scope() as session:
        # What a correction may name: the sent releases.
        choices = [
            {"id": found.id, "title": found.title, "published": _local_time(found.published_at)}
            for found in corrections.correctable(session, excluding=release.id if release else None)
        ]
        original = (
            session.get(Release, release.corrects_id)
            if release is not None and release.corrects_id
            else None
        )
        corrects = (
            {"id": original.id, "title": original.title, "slug": original.slug}
            if original
            else None
        )
    page = render_template(
        "admin/release_form.html",
        release=release,
        values=values,
        unsent=unsent,
        error=_(error.message, **error.params) if error else None,
        same_title=same_title or [],
        timezone=settings().timezone,
        schedule_note=repeated_hour_note(release.publish_at) if release else None,
        languages=LANGUAGES,
        correctable=choices,
        corrects=corrects,
        embargo=_local_time(release.embargo_until) if release else None,
    )
    return (page, status_of(error)) if error else page


# --- A title a published release has: a warning, never a refusal -----------------------------

SAME_TITLE_CONFIRMED = "same_title"  # the editor's checkbox: "save it all the same"


class SameTitle(Exception):  # not an error: a question to the publisher
    """Raised inside the transaction to roll the save back and ask first."""

    def __init__(self, found: list[dict[str, Any]]) -> None:
        super().__init__("a published release has this title")
        self.found = found


def same_title_of(
    session: Session, titles: list[str], *, excluding: int | None = None
) -> list[dict[str, Any]]:
    """The published releases whose title is one of `titles` (releases.published_with_title),
    as the editor and the publish page show them."""
    return [
        {
            "id": found.id,
            "title": found.title,
            "url": url_for("archive.release", slug=found.slug),
            "published": _local_time(found.published_at),
        }
        for found in releases.published_with_title(session, titles, excluding=excluding)[:5]
    ]


def ask_about_same_title(session: Session, titles: list[str], excluding: int | None) -> None:
    """SameTitle unless the publisher ticked "save it all the same" or no published release
    has one of these titles."""
    if request.form.get(SAME_TITLE_CONFIRMED) == "yes":
        return
    found = same_title_of(session, titles, excluding=excluding)
    if found:
        raise SameTitle(found)


# --- Pages ------------------------------------------------------------------------------------


@bp.get("/new")
def new() -> str | tuple[str, int]:
    return editor(None, form_values(None))


@bp.post("/new")
@allow_body(RELEASE_FORM_LIMIT)
def create() -> BaseResponse | str | tuple[str, int]:
    now = utcnow()
    try:
        with session_scope() as session:
            draft = releases.parse_release(form_fields(request.form, unsent=True), now=now)
            ask_about_same_title(session, releases.titles_of(draft), excluding=None)
            release = releases.create_release(
                session, draft, publisher_id=current_user.publisher_id, now=now
            )
            release_id = release.id
    except DomainError as error:
        return editor(None, posted_values(request.form), error=error)
    except SameTitle as question:
        return editor(None, posted_values(request.form), same_title=question.found)
    _say_which_hour(request.form.get("publish_at", ""))
    return after_save(release_id)


@bp.get("/<int:release_id>")
def show(release_id: int) -> BaseResponse | str | tuple[str, int]:
    with session_scope() as session:
        release = releases.get_release(session, release_id)
        if release.kind is ReleaseKind.DIGEST:  # written by Pressroom, never edited
            return redirect(url_for("desk_releases.send_view", release_id=release_id), code=303)
        return editor(release, form_values(release))


@bp.post("/<int:release_id>")
@allow_body(RELEASE_FORM_LIMIT)
def save(release_id: int) -> BaseResponse | str | tuple[str, int]:
    try:
        with session_scope() as session:
            release = releases.get_press_release(session, release_id)
            unsent = release.status in releases.UNSENT_STATES
            fields = form_fields(request.form, unsent=unsent)
            if unsent and request.form.get("publish_at", "") == form_values(release)["publish_at"]:
                # The schedule as the editor showed it (to the minute): left as it is, not
                # moved to the start of its minute, nor refused once that minute has begun.
                del fields["publish_at"]
            before = {releases.same_title_key(title) for title in releases.titles_of(release)}
            schedule = release.publish_at
            releases.edit_release(session, release_id, fields, now=utcnow())
            # Asked about a title once it is new, or when this save sets when the release
            # goes out by itself (no publish page comes before a schedule).
            scheduled = release.publish_at is not None and release.publish_at != schedule
            ask_about_same_title(
                session,
                [
                    title
                    for title in releases.titles_of(release)
                    if scheduled or releases.same_title_key(title) not in before
                ],
                excluding=release_id,
            )
            schedule_posted = fields.get("publish_at") is not None
    except DomainError as error:
        if error.kind is ErrorKind.NOT_FOUND:
            raise
        with session_scope() as session:
            release = releases.get_press_release(session, release_id)
            return editor(release, posted_values(request.form), error=error)
    except SameTitle as question:
        with session_scope() as session:
            release = releases.get_press_release(session, release_id)
            return editor(release, posted_values(request.form), same_title=question.found)
    if schedule_posted:
        _say_which_hour(request.form.get("publish_at", ""))
    return after_save(release_id)


def _say_which_hour(raw: str) -> None:
    """A schedule in the hour the clocks repeat: which of the two it is (the first)."""
    notice = repeated_hour_notice(raw)
    if notice:
        flash(notice)


def after_save(release_id: int) -> BaseResponse:
    """The editor's buttons: save, send a test, or go on to publish."""
    intent = request.form.get("intent", "save")
    if intent == "test":
        try:
            return send_test(release_id)
        except dispatch.BROKER_OUTAGES:
            # The edit is stored: say so, rather than a 503 that reads as "nothing happened".
            flash(_("Saved. The test email could not be sent just now: try again in a minute."))
            return redirect(url_for(".show", release_id=release_id), code=303)
    if intent == "publish":
        return redirect(url_for(".confirm_publish", release_id=release_id), code=303)
    flash(_("Saved."))
    return redirect(url_for(".show", release_id=release_id), code=303)


@bp.post("/<int:release_id>/test")
def send_test(release_id: int) -> BaseResponse:
    language = parse_language(request.form.get("preview_language"))
    with session_scope() as session:
        releases.get_press_release(session, release_id)  # a clear 404 before anything is queued
    dispatch.enqueue(TaskName.SEND_TEST_RELEASE, release_id, current_user.publisher_id, language)
    flash(
        _(
            "A test email is on its way to %(email)s. It is marked as a test and not counted.",
            email=display_address(current_user.email),
        )
    )
    return redirect(url_for(".show", release_id=release_id), code=303)


@bp.get("/<int:release_id>/publish")
def confirm_publish(release_id: int) -> BaseResponse | str:
    with session_scope() as session:
        release = releases.get_press_release(session, release_id)
        if release.status not in releases.UNSENT_STATES:
            return redirect(url_for(".send_view", release_id=release_id), code=303)
        by_language = progress.audience(session, release) if release.send_email else {}
        return render_template(
            "admin/publish.html",
            release=release,
            same_title=same_title_of(session, releases.titles_of(release), excluding=release.id),
            audience=by_language,
            readers=sum(by_language.values()),
            publish_at=_local_time(release.publish_at),
            schedule_note=repeated_hour_note(release.publish_at),
            embargo=(
                _local_time(release.embargo_until)
                if release.embargo_until and release.embargo_until > utcnow()
                else None
            ),
        )


@bp.post("/<int:release_id>/<any(publish, pause, resume, cancel):action>")
def change(release_id: int, action: control.Action) -> BaseResponse:
    with session_scope() as session:
        release, follow_up = control.change(
            session, release_id, action, now=utcnow(), chains=settings().send_chains
        )
        state = release.status
    follow_up.ring(dispatch.ring)
    messages = {
        "publish": _("Published."),
        "pause": _("Paused. Nothing more goes out until you resume."),
        "resume": _("Resumed."),
        "cancel": _("Cancelled. Readers who have not had it yet will not get it."),
    }
    flash(messages[action])
    if state is ReleaseStatus.PUBLISHED:
        return redirect(url_for(".show", release_id=release_id), code=303)
    return redirect(url_for(".send_view", release_id=release_id), code=303)


@bp.get("/<int:release_id>/send")
def send_view(release_id: int) -> str:
    with session_scope() as session:
        release = releases.get_release(session, release_id)
        return render_template(
            "admin/send.html",
            release=release,
            progress=progress.send_progress(session, release, now=utcnow()),
            failures=ledger.failures(session, release_id),
            failure_reason=failure_reason,
            limits=send_guards.Limits.from_settings(settings()),
        )


def failure_reason(reason: str | None) -> str:
    """Why one delivery failed, for the desk: our own words where the failure is ours to
    explain, else the mail server's reply as it wrote it."""
    if reason == NO_SMTPUTF8:
        return _(
            "Not sent: the address has letters such as æ, ø or å before the @, and the mail "
            "server does not take such addresses (it does not offer SMTPUTF8). Nothing is "
            "wrong with the address; another mail server can deliver it."
        )
    return reason or _("Refused by the mail server.")


@bp.get("/<int:release_id>/progress.json")
def progress_json(release_id: int) -> Response:
    with session_scope() as session:
        release = releases.get_release(session, release_id)
        answer = progress.send_progress(session, release, now=utcnow()).as_dict()
    return jsonify(answer)


# --- Preview: the email as the reader gets it -------------------------------------------------


@bp.get("/<int:release_id>/preview")
def saved_preview(release_id: int) -> Response:
    with session_scope() as session:
        release = releases.get_press_release(session, release_id)
        try:
            return preview_response(release)
        except InvalidInput as error:
            return preview_problem(error)


@bp.post("/preview", defaults={"release_id": None})
@bp.post("/<int:release_id>/preview")
@allow_body(RELEASE_FORM_LIMIT)
def live_preview(release_id: int | None) -> Response:
    """The editor's unsaved text, rendered as the email it would become. Whatever is wrong
    with the form is said inside the frame, while the publisher is still typing."""
    now = utcnow()
    with session_scope() as session:
        saved = releases.get_press_release(session, release_id) if release_id is not None else None
        try:
            fields = form_fields(request.form, unsent=True)
            fields.pop("publish_at")
            fields.pop("embargo_until")  # when it comes out changes nothing in the email
            if saved is not None and saved.status not in releases.UNSENT_STATES:
                # Who gets it is fixed: the form no longer holds those fields.
                fields |= {
                    "language": saved.language,
                    "fallback_to_primary": saved.fallback_to_primary,
                    "corrects": saved.corrects_id,
                }
            draft = releases.parse_release(fields, now=now)
            return preview_response(unsaved_release(session, draft, saved))
        except InvalidInput as error:
            return preview_problem(error)


def preview_problem(error: InvalidInput) -> Response:
    page = render_template(
        "admin/preview_text.html", headers=[], text=_(error.message, **error.params)
    )
    return preview_page(page, status=422)


def unsaved_release(
    session: Session, draft: releases.ReleaseDraft, saved: Release | None
) -> Release:
    """A release as the editor holds it, never added to the session. Unsaved, it has the
    slug saving it now would give (releases.next_slug): its link is the one it will have."""
    # A correction's preview names the original: an unsaved row loads no relationship.
    original = session.get(Release, draft.corrects) if draft.corrects else None
    if draft.corrects and original is None:
        raise InvalidInput(N_("There is no release %(id)s to correct."), id=draft.corrects)
    if saved is None:
        slug = releases.next_slug(session, draft.text.title)
        return releases.release_from_draft(draft, slug=slug, id=0, corrects=original)
    return releases.release_from_draft(
        draft, slug=saved.slug, id=saved.id, published_at=saved.published_at, corrects=original
    )


def preview_response(release: Release) -> Response:
    language = parse_language(request.args.get("language"), default=release.language)
    part = request.args.get("part", "html")
    message = preview_message(release, language)
    if part == "text":
        body = render_template(
            "admin/preview_text.html",
            headers=[
                (name, str(message[name]))
                for name in ("From", "To", "Subject", "In-Reply-To", "List-Unsubscribe")
                if message[name] is not None
            ],
            text=_body_of(message, "plain"),
        )
    else:
        body = _body_of(message, "html")
    return preview_page(body)


def preview_page(body: str, *, status: int = 200) -> Response:
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Content-Security-Policy"] = PREVIEW_POLICY
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


def preview_message(release: Release, language: str) -> EmailMessage:
    """Built by the same code as every reader's copy, addressed to the signed-in publisher."""
    try:
        built = Composer.from_extensions(current_app.extensions).preview(
            release, language, current_user.email, current_user.publisher_id, now=utcnow()
        )
    except HeaderError as error:
        # Input refuses what no header may hold; a row stored before that, or written by
        # other means, is shown as the problem it is (a send of it would be refused too).
        raise InvalidInput(
            N_("This email cannot be written: %(reason)s"), reason=str(error)
        ) from None
    parsed = message_from_bytes(built, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _body_of(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    return part.get_content() if part is not None else ""


def _local_time(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return format_datetime(moment.astimezone(settings().zone), "medium")
