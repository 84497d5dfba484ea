"""The publisher's desk: the suppression list, and lifting an entry with a note.

GET  /admin/suppressions           the list, by id (?after= for the next page)
POST /admin/suppressions/lift      lift the entry of an address: a note says why (kept)
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from service.app_state import session_scope
from service.db import MAX_ROW_ID, utcnow
from service.domain import suppressions
from service.domain.addresses import normalize_address
from service.domain.errors import DomainError
from service.models import SuppressionReason
from service.web.desk_login import guard
from service.web.errors import status_of
from service.web.l10n import gettext as _

bp = Blueprint("desk_suppressions", __name__, url_prefix="/admin/suppressions")
guard(bp)

PAGE = 100


def reason_name(reason: str) -> str:
    return {
        SuppressionReason.ERASED.value: _("erased"),
        SuppressionReason.BOUNCED.value: _("bounced"),
        SuppressionReason.COMPLAINED.value: _("complained"),
    }.get(reason, reason)


@bp.get("", strict_slashes=False)
def index() -> str:
    return _page(error=None, email="", note="")[0]


@bp.post("/lift")
def lift() -> BaseResponse | tuple[str, int]:
    email = (request.form.get("email") or "")[:320]
    note = (request.form.get("note") or "")[:2000]
    try:
        address = normalize_address(email)
        with session_scope() as session:
            reason = suppressions.lift(
                session, address, note=note, by_publisher=current_user.publisher_id, now=utcnow()
            )
    except DomainError as error:
        message = _(error.message, **error.params)
        return _page(error=message, email=email, note=note, status=status_of(error))
    flash(_("The address may be mailed again (it was %(reason)s).", reason=reason_name(reason)))
    return redirect(url_for(".index"), code=303)


def _page(*, error: str | None, email: str, note: str, status: int = 200) -> tuple[str, int]:
    raw = request.args.get("after", "0")
    after = int(raw) if raw.isascii() and raw.isdigit() and int(raw) <= MAX_ROW_ID else 0
    with session_scope() as session:
        entries = suppressions.page(session, after=after, limit=PAGE)
    page = render_template(
        "admin/suppressions.html",
        entries=entries,
        next_after=entries[-1].id if len(entries) == PAGE else None,
        reason_name=reason_name,
        error=error,
        email=email,
        note=note,
        max_note=suppressions.MAX_NOTE,
    )
    return page, status
