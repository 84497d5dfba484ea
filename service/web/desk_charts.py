"""The publisher's desk: charts of the list over time and of what each release did.

The page carries every number as tables too (useful without JavaScript, and to screen
readers); static/charts.js draws the charts from data.json, with labels in the desk's language.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from babel.dates import format_skeleton
from flask import Blueprint, Response, jsonify, render_template, request, url_for
from flask_babel import gettext as _

from service.app_state import session_scope, settings
from service.db import utcnow
from service.domain import stats
from service.web.desk_login import guard
from service.web.l10n import date_locale, format_date

bp = Blueprint("desk_charts", __name__, url_prefix="/admin/charts")
guard(bp)


def _numbers(days: int) -> tuple[stats.SubscriberHistory, list[stats.ReleaseOutcome]]:
    with session_scope() as session:
        history = stats.subscriber_history(session, days=days, now=utcnow(), zone=settings().zone)
        outcomes = stats.release_outcomes(session)
    return history, outcomes


def short_date(day: date) -> str:
    return format_skeleton("MMMd", day, locale=date_locale())


def long_date(day: date) -> str:
    return format_date(day, "long")


def local_date(moment: datetime) -> str:
    return long_date(moment.astimezone(settings().zone).date())


@bp.get("", strict_slashes=False)
def index() -> str:
    days = stats.parse_window(request.args.get("days"))
    history, outcomes = _numbers(days)
    return render_template(
        "admin/charts.html",
        days=days,
        windows=stats.WINDOWS,
        history=history,
        changed_days=[day for day in reversed(history.days) if day.confirmed or day.left],
        releases=outcomes,
        data_url=url_for(".data", days=days),
        timezone=settings().timezone,
        long_date=long_date,
        local_date=local_date,
    )


@bp.get("/data.json")
def data() -> Response:
    days = stats.parse_window(request.args.get("days"))
    history, outcomes = _numbers(days)
    return jsonify(as_json(days, history, outcomes))


def as_json(
    days: int, history: stats.SubscriberHistory, outcomes: list[stats.ReleaseOutcome]
) -> dict[str, Any]:
    series = history.days
    return {
        "days": days,
        "timezone": settings().timezone,
        "subscribers": {
            "dates": [d.day.isoformat() for d in series],
            "labels": [short_date(d.day) for d in series],
            "titles": [long_date(d.day) for d in series],
            "confirmed": [d.confirmed for d in series],
            "unsubscribed": [d.unsubscribed for d in series],
            "bounced": [d.bounced for d in series],
            "erased": [d.erased for d in series],
            "left": [d.left for d in series],
            "net": [d.net for d in series],
            "total": [d.total for d in series],
            "current": history.current,
        },
        "releases": [
            {
                "id": r.release_id,
                "title": r.title,
                "sent_at": r.sent_at.isoformat() if r.sent_at else None,
                "sent_on": local_date(r.sent_at) if r.sent_at else None,
                "recipients": r.recipients,
                "delivered": r.delivered,
                "failed": r.failed,
                "pending": r.pending,
                "unsubscribed": r.unsubscribed,
                "bounced": r.bounced,
                "complained": r.complained,
                "url": url_for("desk_releases.show", release_id=r.release_id),
            }
            for r in outcomes
        ],
        "text": {
            "subscribers": _("Subscribers"),
            "changes": _("Joined and left per day"),
            "releases": _("Per release"),
            "confirmed": _("Joined"),
            "unsubscribed": _("Unsubscribed"),
            "bounced": _("Bounced"),
            "erased": _("Erased"),
            "net": _("Net change"),
            "delivered": _("Delivered"),
            "failed": _("Failed"),
            "unsubscribes": _("Unsubscribes"),
            "complaints": _("Complaints"),
            "readers": _("Readers"),
            "messages": _("Messages"),
            "no_releases": _("No release has been sent by email yet."),
        },
    }
