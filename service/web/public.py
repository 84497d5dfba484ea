"""The reader's pages: press room, subscribe, confirm, unsubscribe, preferences."""

from __future__ import annotations

import json

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from service.app_state import session_scope, settings, signer
from service.db import utcnow
from service.domain import archive, digests, subscriptions
from service.domain.errors import N_, InvalidInput, InvalidToken
from service.domain.tokens import Purpose
from service.extensions import csrf
from service.locales import PRIMARY_LANGUAGE
from service.models import ConsentChannel, ConsentSource, Subscriber, SubscriberStatus
from service.web import consent_wording
from service.web.consent_wording import Consent
from service.web.signup import (
    HONEYPOT_FIELD,
    build_signup,
    record_signup,
    ring_owed,
)

bp = Blueprint("public", __name__)

# Reader forms whose URL holds a signed token (confirm, unsubscribe, preferences; CONTRACT §8)
# are @csrf.exempt: the token is the credential, a forger would need it, and a CSRF check would
# refuse in-app browsers that drop cookies between the page's GET and the POST. Every other form
# (subscribe, the desk) keeps CSRF.


STATUS_LABELS = {
    "pending": _l("waiting for confirmation"),
    "confirmed": _l("subscribed"),
    "unsubscribed": _l("unsubscribed"),
    "bounced": _l("stopped: the address could not receive mail"),
}


@bp.app_context_processor
def page_helpers() -> dict[str, object]:
    return {
        "current_language": lambda: str(get_locale() or PRIMARY_LANGUAGE),
        "site_name": settings().site_name,
        "status_label": lambda status: str(STATUS_LABELS.get(status, status)),
        "offered_topics": settings().topics,
        "topic_label": lambda slug: slug.replace("-", " ").capitalize(),
        "consent_paragraphs": consent_wording.paragraphs,
        "Consent": Consent,
    }


# The reader's pages post this with an unsubscribe; a mail client's RFC 8058 one-click POST
# (the body `List-Unsubscribe=One-Click` alone) does not, and is offered no undo.
FROM_PAGE_FIELD = "from"
FROM_PAGE = "page"


FRONT_PAGE_RELEASES = 20


@bp.get("/")
def index() -> str:
    with session_scope() as session:
        releases = archive.public_releases(session, now=utcnow(), limit=FRONT_PAGE_RELEASES)
        return render_template("public/index.html", releases=releases)


@bp.get("/subscribe")
def subscribe_page() -> BaseResponse:
    """A reload or a bookmark of the form's address leads back to the form."""
    return redirect(url_for("public.index", _anchor="subscribe"), code=303)


@bp.post("/subscribe")
def subscribe() -> str:
    form = request.form
    if form.get(HONEYPOT_FIELD):
        # A bot filled the hidden field: answer as for anyone, do nothing.
        return render_template("public/check_inbox.html")
    emails = form.getlist("email")
    if len(emails) != 1:
        raise InvalidInput(N_("Enter one email address."))
    record_signup(
        build_signup(
            email=emails[0],
            language=form.get("language"),
            topics=",".join(form.getlist("topics")),
            source=ConsentSource.FORM,
            frequency=form.get("frequency"),
        )
    )
    return render_template("public/check_inbox.html")


@bp.get("/confirm/<token>")
def confirm_page(token: str) -> str:
    with session_scope() as session:
        checked = subscriptions.check_confirmation(session, signer(), token)
        email = checked.subscriber.email
    if checked.already_confirmed:
        return render_template("public/confirmed.html", already=True, email=email)
    return render_template("public/confirm.html", token=token, email=email)


@bp.post("/confirm/<token>")
@csrf.exempt
def confirm(token: str) -> str:
    with session_scope() as session:
        result = subscriptions.confirm(
            session,
            signer(),
            token,
            now=utcnow(),
            origin=consent_wording.origin(ConsentChannel.FORM),
            wording=consent_wording.wording(Consent.CONFIRM),
        )
        email = result.subscriber.email
        preferences = subscriptions.preferences_token(signer(), result.subscriber)
    if result.owed is not None:
        ring_owed(result.owed)  # the welcome: owed in the database until the queue has it
    return render_template(
        "public/confirmed.html",
        already=result.already_confirmed,
        email=email,
        preferences_token=preferences,
    )


@bp.get("/unsubscribe/<token>")
def unsubscribe_page(token: str) -> str:
    with session_scope() as session:
        subscriber = subscriptions.subscriber_for_token(
            session, signer(), Purpose.UNSUBSCRIBE, token
        )
        subscribed = subscriber is not None and subscriber.status is SubscriberStatus.CONFIRMED
        preferences = (
            subscriptions.preferences_token(signer(), subscriber)
            if subscriber is not None
            else None
        )
    return render_template(
        "public/unsubscribe.html",
        token=token,
        subscribed=subscribed,
        preferences_token=preferences,
    )


@bp.post("/unsubscribe/<token>")
@csrf.exempt
def unsubscribe(token: str) -> tuple[str, int]:
    """RFC 8058 one-click: no cookie, no CSRF token; 200 and never a redirect; idempotent.

    From the reader's own pages (the email link's page, the preferences page) the answer
    offers to take it back for 24 hours; a mail client's one-click POST is not offered that."""
    from_page = request.form.get(FROM_PAGE_FIELD) == FROM_PAGE
    source = ConsentChannel.FORM if from_page else ConsentChannel.ONE_CLICK
    with session_scope() as session:
        departure = subscriptions.leave(
            session, signer(), token, now=utcnow(), origin=consent_wording.origin(source)
        )
        subscriber = departure.subscriber
        preferences = (
            subscriptions.preferences_token(signer(), subscriber)
            if subscriber is not None
            else None
        )
        undo = (
            subscriptions.undo_token(signer(), subscriber)
            if subscriber is not None and departure.left and from_page
            else None
        )
    page = render_template(
        "public/unsubscribed.html", preferences_token=preferences, undo_token=undo
    )
    return page, 200


@bp.get("/undo/<token>")
def undo_page(token: str) -> str:
    """What the undo link would do, with its button (a link fetched by a scanner changes
    nothing); a used or expired link answers 4xx here already."""
    with session_scope() as session:
        subscriptions.check_undo(session, signer(), token)
    return render_template("public/undo.html", token=token)


@bp.post("/undo/<token>")
@csrf.exempt
def undo(token: str) -> str:
    with session_scope() as session:
        subscriber = subscriptions.undo_unsubscribe(
            session,
            signer(),
            token,
            now=utcnow(),
            origin=consent_wording.origin(ConsentChannel.FORM),
            wording=consent_wording.wording(Consent.UNDO),
        )
        preferences = subscriptions.preferences_token(signer(), subscriber)
    return render_template("public/undone.html", preferences_token=preferences)


@bp.get("/preferences/<token>")
def preferences_page(token: str) -> str:
    with session_scope() as session:
        subscriber = _preferences_subscriber(session, token)
        return render_template(
            "public/preferences.html",
            token=token,
            subscriber=subscriber,
            unsubscribe_token=subscriptions.unsubscribe_token(signer(), subscriber),
            saved=request.args.get("saved") == "1",
        )


@bp.post("/preferences/<token>")
@csrf.exempt
def save_preferences(token: str) -> BaseResponse:
    form = request.form
    with session_scope() as session:
        subscriber = _preferences_subscriber(session, token)
        subscriptions.change_preferences(
            session,
            subscriber,
            language=subscriptions.parse_language(
                form.get("language"), default=subscriber.language
            ),
            topics=subscriptions.parse_topics(",".join(form.getlist("topics")), settings().topics),
            frequency=digests.parse_frequency(form.get("frequency"), default=subscriber.frequency),
            now=utcnow(),
            origin=consent_wording.origin(ConsentChannel.FORM),
        )
    return redirect(url_for("public.preferences_page", token=token, saved=1), code=303)


@bp.get("/preferences/<token>/data.json")
def download_data(token: str) -> Response:
    with session_scope() as session:
        data = subscriptions.export_data(session, _preferences_subscriber(session, token))
    return Response(
        json.dumps(data, ensure_ascii=False, indent=2),
        mimetype="application/json",
        headers={"Content-Disposition": 'attachment; filename="pressroom-my-data.json"'},
    )


@bp.post("/preferences/<token>/erase")
@csrf.exempt
def erase(token: str) -> str:
    if request.form.get("confirm") != "yes":
        raise InvalidInput(N_("Tick the box to confirm that your data should be deleted."))
    with session_scope() as session:
        subscriptions.erase(
            session,
            _preferences_subscriber(session, token),
            now=utcnow(),
            origin=consent_wording.origin(ConsentChannel.FORM),
        )
    return render_template("public/erased.html")


def _preferences_subscriber(session: Session, token: str) -> Subscriber:
    subscriber = subscriptions.subscriber_for_token(session, signer(), Purpose.PREFERENCES, token)
    if subscriber is None:
        raise InvalidToken(N_("There is no subscription for this link any more."))
    return subscriber
