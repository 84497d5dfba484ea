"""The publisher's desk: subscribers. Find them, import and export them as CSV, erase one.

GET  /admin/subscribers              the list: ?q= &status= &language= &topic=; ?before= / ?after=
GET  /admin/subscribers/import       the import form
POST /admin/subscribers/import       check a CSV file and leave its import to a worker
GET  /admin/subscribers/import/<id>  that import's progress, then its report
GET  /admin/subscribers/export.csv   every subscriber, as `flask subscribers export` writes them
POST /admin/subscribers/invite       send imported readers still pending the confirmation email
GET  /admin/subscribers/<uid>        one subscriber: their choices and their consent ledger
GET  /admin/subscribers/<uid>/erase  what erasing this subscriber means, and a box to confirm it
POST /admin/subscribers/<uid>/erase  erase: the row goes, a hashed suppression entry stays
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Iterator

from flask import (
    Blueprint,
    Response,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response as BaseResponse

from service import background_import, dispatch
from service.app_state import session_scope, settings
from service.config import TOPIC_PATTERN
from service.db import utcnow
from service.dispatch import TaskName
from service.domain import consent_ledger, imports, invitations, subscriber_search, subscriptions
from service.domain.consent_ledger import Origin
from service.domain.errors import N_, DomainError, InvalidInput, NotFound
from service.domain.imports import ImportOptions, Outcome, RowNote
from service.extensions import csrf
from service.locales import LANGUAGES
from service.models import ConsentAct, ConsentChannel, Frequency, Subscriber, SubscriberStatus
from service.redis_clients import app_redis
from service.web.desk_login import guard, safe_next
from service.web.errors import status_of
from service.web.l10n import gettext as _

bp = Blueprint("desk_subscribers", __name__, url_prefix="/admin/subscribers")
guard(bp)

IMPORT_LIMIT = 20 * 1024 * 1024  # bytes of one upload; the app's limit is 64 KiB
IMPORT_LIMIT_MB = IMPORT_LIMIT // (1024 * 1024)
# Werkzeug's multipart parser holds up to this much of the body at a time, file parts included
# (it reads 64 KiB blocks): the app's 64 KiB would refuse every file above that size.
IMPORT_FORM_MEMORY = 1024 * 1024
EXPORT_FLUSH = 64 * 1024
FILTER_ARGS = ("q", "status", "language", "topic")

STATUS_NAMES = {
    SubscriberStatus.PENDING.value: _l("pending"),
    SubscriberStatus.CONFIRMED.value: _l("confirmed"),
    SubscriberStatus.UNSUBSCRIBED.value: _l("unsubscribed"),
    SubscriberStatus.BOUNCED.value: _l("bounced"),
}
FREQUENCY_NAMES = {
    Frequency.IMMEDIATELY.value: _l("at once"),
    Frequency.DAILY.value: _l("daily digest"),
    Frequency.WEEKLY.value: _l("weekly digest"),
}
ACT_NAMES = {
    ConsentAct.SIGNUP: _l("signed up"),
    ConsentAct.RESUBSCRIBE: _l("signed up again"),
    ConsentAct.CONFIRM: _l("confirmed"),
    ConsentAct.PREFERENCES: _l("changed language, topics or how often"),
    ConsentAct.UNSUBSCRIBE: _l("unsubscribed"),
    ConsentAct.UNDO: _l("took the unsubscribe back"),
    ConsentAct.IMPORT: _l("imported"),
    ConsentAct.ERASE: _l("erased"),
}
SOURCE_NAMES = {
    ConsentChannel.FORM: _l("press room page"),
    ConsentChannel.API: _l("API"),
    ConsentChannel.IMPORT: _l("import"),
    ConsentChannel.DESK: _l("desk"),
    ConsentChannel.ONE_CLICK: _l("one-click unsubscribe in the mail program"),
    ConsentChannel.COMPLAINT: _l("spam complaint"),
}
OUTCOME_NAMES = {
    Outcome.EXISTS: _l("already there"),
    Outcome.SUPPRESSED: _l("suppressed: erased or bounced before"),
    Outcome.OPTED_OUT: _l("opted out: unsubscribed or bounced in the file"),
    Outcome.REJECTED: _l("rejected"),
}


@bp.context_processor
def subscriber_helpers() -> dict[str, object]:
    return {
        "subscriber_status_name": lambda status: str(STATUS_NAMES.get(status, status)),
        "frequency_name": lambda value: str(FREQUENCY_NAMES.get(value, value)),
        "statuses": list(STATUS_NAMES),
        "languages": LANGUAGES,
        "act_name": lambda act: str(ACT_NAMES.get(act, act)),
        "source_name": lambda source: str(SOURCE_NAMES.get(source, source)),
    }


# --- the list -------------------------------------------------------------------------------


@bp.get("", strict_slashes=False)
def index() -> str | tuple[str, int]:
    asked = {name: request.args.get(name, "") for name in FILTER_ARGS}
    try:
        wanted = subscriber_search.parse_filter(
            address=asked["q"],
            status=asked["status"],
            language=asked["language"],
            topic=asked["topic"],
        )
        before = subscriber_search.parse_cursor(request.args.get("before"), "before")
        after = subscriber_search.parse_cursor(request.args.get("after"), "after")
        with session_scope() as session:
            page = subscriber_search.search(session, wanted, before=before, after=after)
            invited = invitations.summary(session, now=utcnow())
    except DomainError as error:
        page_text = render_template(
            "admin/subscribers.html",
            asked=asked,
            page=None,
            error=_(error.message, **error.params),
            topic_choices=_topic_choices(asked["topic"]),
        )
        return page_text, status_of(error)
    kept = {name: value for name, value in asked.items() if value}
    return render_template(
        "admin/subscribers.html",
        asked=asked,
        page=page,
        filtered=wanted.active,
        error=None,
        topic_choices=_topic_choices(asked["topic"]),
        older_url=url_for(".index", **kept, before=page.older) if page.older else None,
        newer_url=url_for(".index", **kept, after=page.newer) if page.newer is not None else None,
        kept_filters=kept,
        here=request.full_path.rstrip("?"),
        invitations=invited,
        invite_days=invitations.INVITE_INTERVAL.days,
    )


@bp.post("/invite")
def invite() -> BaseResponse:
    """One round of confirmation invitations (domain/invitations); a worker sends them at
    SEND_RATE. A second click within INVITE_INTERVAL invites nobody again."""
    with session_scope() as session:
        count = invitations.invite(session, now=utcnow())
    if count:
        # Stored: should the doorbell fail, the sweep starts the sending within a minute or two.
        dispatch.ring(TaskName.SEND_INVITATIONS)
        flash(
            ngettext(
                "The confirmation email is on its way to %(num)s reader.",
                "The confirmation email is on its way to %(num)s readers.",
                count,
            )
        )
    else:
        flash(
            _(
                "Nobody was invited: no imported reader is waiting for confirmation who was "
                "not invited in the last %(days)s days.",
                days=invitations.INVITE_INTERVAL.days,
            )
        )
    return redirect(url_for(".index"), code=303)


def _topic_choices(asked: str) -> list[str]:
    """The offered topics, and the one asked for when it is not (any more) among them."""
    offered = list(settings().topics)
    wanted = asked.strip().lower()
    if offered and TOPIC_PATTERN.match(wanted) and wanted not in offered:
        offered.append(wanted)
    return offered


# --- import ---------------------------------------------------------------------------------


@bp.get("/import")
def import_page() -> str:
    return render_template("admin/subscribers_import.html", **_import_form())


# The app-wide CSRF check would read the body before this view, under the app's 64 KiB limit:
# this view makes the same check itself, once it has raised the limit for its upload.
@bp.post("/import")
@csrf.exempt
def import_file() -> BaseResponse | tuple[str, int]:
    """Check the upload at once (CSRF, size, encoding, a header naming email, the options), keep
    it in Redis and leave the import to a worker: a large file takes longer than a proxy waits."""
    request.max_content_length = IMPORT_LIMIT
    request.max_form_memory_size = IMPORT_FORM_MEMORY
    try:
        csrf.protect()  # a missing or wrong token raises CSRFError: the app's 400 page
        request.files  # noqa: B018  (reads the whole body, under the limit above)
    except RequestEntityTooLarge:
        message = _(
            "The file is larger than %(size)s MB. Split it into smaller files and import "
            "them one after the other. Nothing was imported.",
            size=IMPORT_LIMIT_MB,
        )
        return _import_refused(message, 413, from_request=False)
    try:
        note = imports.check_consent_note(request.form.get("consent_note"))
        options = ImportOptions(
            consent_text_version=settings().consent_text_version,
            confirmed=request.form.get("confirmed") == "yes",
            consent_note=note,
            offered_topics=settings().topics,
        )
        upload = _uploaded_file()
        if upload is None:
            raise InvalidInput(N_("Choose a CSV file to import."))
        data = upload.stream.read()
        # A file that is not text, or has no header naming email, is refused now, before any
        # job exists; the job reads it again with the same reader.
        imports.open_csv(io.BytesIO(data))
    except DomainError as error:
        return _import_refused(_(error.message, **error.params), status_of(error))
    job_id = background_import.create(
        app_redis(), data, options, publisher_id=current_user.publisher_id
    )
    try:
        dispatch.enqueue(TaskName.IMPORT_SUBSCRIBERS, job_id)
    except dispatch.BROKER_OUTAGES:
        # Nothing stored, then the app's 503 "try again": the job lives in Redis alone, and
        # no sweep would ever start it.
        with contextlib.suppress(*dispatch.BROKER_OUTAGES):
            background_import.discard(app_redis(), job_id)
        raise
    return redirect(url_for(".import_job", job_id=job_id), code=303)


@bp.get("/import/<job_id>")
def import_job(job_id: str) -> str:
    """The import's progress while a worker runs it (the page reloads itself), then its report."""
    job = background_import.load(app_redis(), job_id)
    if job is None:
        raise NotFound(
            N_("There is no such import. An import's report is kept for a day after it ends.")
        )
    values = _import_form()  # another file is another list: its terms are chosen anew
    values.update(job=job, running=not job.finished)
    if job.finished:
        values.update(
            report=job.report,
            describe=_describe,
            confirmed_import=job.options.confirmed,
            without_note=job.options.confirmed and not job.options.consent_note,
        )
    if job.error:
        values["error"] = _(job.error, **job.error_params)
    return render_template("admin/subscribers_import.html", **values)


def _uploaded_file() -> FileStorage | None:
    files = [upload for upload in request.files.getlist("file") if upload.filename]
    if len(files) > 1:
        raise InvalidInput(N_("Choose one file at a time."))
    return files[0] if files else None


def _describe(note: RowNote) -> str:
    """What became of one line, as the CLI prints it but in the page's language."""
    text = str(OUTCOME_NAMES.get(note.outcome, note.outcome.value))
    if note.outcome is Outcome.REJECTED and note.message:
        text += ": " + _(note.message, **dict(note.params))
    return text


def _import_form(*, confirmed: bool = False, consent_note: str = "") -> dict[str, object]:
    return {
        "confirmed": confirmed,
        "consent_note": consent_note,
        "max_note": imports.MAX_CONSENT_NOTE_LENGTH,
        "max_mb": IMPORT_LIMIT_MB,
        "report": None,
        "error": None,
        "job": None,
        "running": False,
    }


def _import_refused(message: str, status: int, *, from_request: bool = True) -> tuple[str, int]:
    # After a 413 the form cannot be read again: show it empty.
    form = request.form if from_request else {}
    values = _import_form(
        confirmed=form.get("confirmed") == "yes",
        consent_note=(form.get("consent_note") or "")[: imports.MAX_CONSENT_NOTE_LENGTH],
    )
    values["error"] = message
    return render_template("admin/subscribers_import.html", **values), status


# --- export ---------------------------------------------------------------------------------


@bp.get("/export.csv")
def export() -> Response:
    """Streams the same bytes as `flask subscribers export`, a keyset page at a time."""

    def generate() -> Iterator[str]:
        buffer = io.StringIO()
        # write_csv's writer: the same columns, dialect and line ends, but in pieces.
        writer = csv.DictWriter(buffer, fieldnames=imports.EXPORT_COLUMNS)
        writer.writeheader()
        with session_scope() as session:
            for row in imports.export_rows(session):
                writer.writerow(row)
                if buffer.tell() >= EXPORT_FLUSH:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    filename = f"subscribers-{utcnow():%Y-%m-%d}.csv"
    return Response(
        stream_with_context(generate()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# --- one subscriber -------------------------------------------------------------------------


@bp.get("/<uid>")
def subscriber_page(uid: str) -> str:
    with session_scope() as session:
        subscriber = _subscriber(session, uid)
        return render_template(
            "admin/subscriber.html",
            subscriber=subscriber,
            ledger=consent_ledger.history(session, subscriber.id),
            back=_back(request.args.get("next")),
        )


# --- erase ----------------------------------------------------------------------------------


@bp.get("/<uid>/erase")
def erase_page(uid: str) -> str:
    with session_scope() as session:
        subscriber = _subscriber(session, uid)
        return render_template(
            "admin/subscriber_erase.html",
            subscriber=subscriber,
            back=_back(request.args.get("next")),
            error=None,
        )


@bp.post("/<uid>/erase")
def erase(uid: str) -> BaseResponse | tuple[str, int]:
    back = _back(request.form.get("next"))
    with session_scope() as session:
        subscriber = _subscriber(session, uid)
        if request.form.get("confirm") != "yes":
            page = render_template(
                "admin/subscriber_erase.html",
                subscriber=subscriber,
                back=back,
                error=_("Tick the box to confirm that this subscriber should be erased."),
            )
            return page, 422
        subscriptions.erase(session, subscriber, now=utcnow(), origin=Origin(ConsentChannel.DESK))
    # The address stays out of the message: it would outlive the erasure in the session cookie.
    flash(
        _(
            "The subscriber is erased. Only a one-way fingerprint of the address is kept, "
            "so that no import adds it again."
        )
    )
    return redirect(back, code=303)


def _subscriber(session: Session, uid: str) -> Subscriber:
    subscriber = subscriber_search.find_by_uid(session, uid)
    if subscriber is None:
        raise NotFound(N_("There is no such subscriber. Perhaps they were erased already."))
    return subscriber


def _back(target: str | None) -> str:
    """Back to the list as it was (its filters and page), and never anywhere else."""
    listing = url_for(".index")
    path = safe_next(target)
    if path and (path == listing or path.startswith(listing + "?")):
        return path
    return listing
