"""The publisher's desk: outgoing webhooks. The endpoints, the events that failed or are being
retried (with the last error), adding an endpoint (its secret shown once) and removing one.

GET  /admin/webhooks               the endpoints and their recent failures
POST /admin/webhooks               add an endpoint: url, events (repeated), include_address
POST /admin/webhooks/<id>/remove   remove an endpoint and the events still owed to it
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response as BaseResponse

from service.app_state import session_scope, settings
from service.db import utcnow
from service.domain import webhook_endpoints, webhook_outbox
from service.domain.errors import DomainError
from service.web.desk_login import guard
from service.web.errors import status_of
from service.web.l10n import gettext as _

bp = Blueprint("desk_webhooks", __name__, url_prefix="/admin/webhooks")
guard(bp)

EVENT_LABELS = {
    "subscriber.confirmed": _l("a reader confirmed"),
    "subscriber.unsubscribed": _l("a reader unsubscribed"),
    "subscriber.bounced": _l("a reader's address bounced"),
    "release.published": _l("a release was published"),
    "release.sent": _l("a release was sent to everyone"),
    "release.paused": _l("a send was paused"),
}
STATUS_LABELS = {
    "pending": _l("retrying"),
    "delivered": _l("delivered"),
    "failed": _l("failed"),
}


@bp.get("", strict_slashes=False)
def index() -> str:
    return _page()[0]


@bp.post("", strict_slashes=False)
def add() -> tuple[str, int]:
    url = (request.form.get("url") or "")[: webhook_endpoints.MAX_URL + 1]
    events = request.form.getlist("events")[: len(webhook_endpoints.EVENT_TYPES) + 1]
    include_address = request.form.get("include_address") == "yes"
    try:
        with session_scope() as session:
            added = webhook_endpoints.add(
                session,
                url,
                events,
                include_address=include_address,
                now=utcnow(),
                allow_private=settings().webhook_allow_private,
            )
            endpoint_id = added.endpoint.id
    except DomainError as error:
        message = _(error.message, **error.params)
        return _page(error=message, url=url, chosen=events, status=status_of(error))
    return _page(added_id=endpoint_id, secret=added.secret)


@bp.post("/<int:endpoint_id>/remove")
def remove(endpoint_id: int) -> BaseResponse | tuple[str, int]:
    try:
        with session_scope() as session:
            webhook_endpoints.remove(session, endpoint_id)
    except DomainError as error:
        return _page(error=_(error.message, **error.params), status=status_of(error))
    flash(_("Webhook endpoint %(id)s is removed.", id=endpoint_id))
    return redirect(url_for(".index"), code=303)


def _page(
    *,
    error: str | None = None,
    url: str = "",
    chosen: list[str] | None = None,
    added_id: int | None = None,
    secret: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    with session_scope() as session:
        endpoints = webhook_endpoints.every(session)
        counts = webhook_outbox.counts(session)
        problems = webhook_outbox.problems(session)
    page = render_template(
        "admin/webhooks.html",
        endpoints=endpoints,
        counts=counts,
        problems=problems,
        event_types=webhook_endpoints.EVENT_TYPES,
        event_label=lambda name: str(EVENT_LABELS.get(name, name)),
        status_label=lambda name: str(STATUS_LABELS.get(name, name)),
        error=error,
        url=url,
        chosen=chosen or [],
        added_id=added_id,
        secret=secret,
    )
    return page, status
