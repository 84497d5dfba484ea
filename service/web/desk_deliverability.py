"""The publisher's desk: will mailbox providers take our mail?

GET  /admin/deliverability         SPF, DKIM, DMARC, MX and https (domain.deliverability)
POST /admin/deliverability/test    send the signed-in publisher a message listing its headers
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from service import dispatch
from service.app_state import settings
from service.dispatch import TaskName
from service.dns_lookup import lookup_via
from service.domain.addresses import display_address
from service.domain.deliverability import Identity, check
from service.web.desk_login import guard
from service.web.l10n import gettext as _

bp = Blueprint("desk_deliverability", __name__, url_prefix="/admin/deliverability")
guard(bp)


@bp.get("", strict_slashes=False)
def index() -> str:
    config = settings()
    findings = check(Identity.from_settings(config), lookup_via(config.dns_resolver))
    return render_template("admin/deliverability.html", findings=findings)


@bp.post("/test")
def send_test() -> BaseResponse:
    dispatch.enqueue(TaskName.SEND_HEADER_TEST, current_user.publisher_id)
    flash(
        _(
            "A test message is on its way to %(email)s. It lists its own headers as sent.",
            email=display_address(current_user.email),
        )
    )
    return redirect(url_for(".index"), code=303)
