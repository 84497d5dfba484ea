"""The publisher's desk (/admin): sign in and out, and the releases with their delivery."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from service.app_state import session_scope, settings
from service.db import utcnow
from service.domain import digests, publishers, releases
from service.web.desk_login import end_session, new_sign_in, safe_next

bp = Blueprint("desk", __name__, url_prefix="/admin")

LOGIN_RATE_LIMIT = "10/minute;50/hour"
DESK_RELEASES = 50
DESK_DIGEST_RUNS = 10
DIGEST_LABELS = {"daily": _l("Daily digest"), "weekly": _l("Weekly digest")}
STATE_LABELS = {
    "draft": _l("draft"),
    "scheduled": _l("scheduled"),
    "published": _l("published, not emailed"),
    "sending": _l("sending"),
    "paused": _l("paused"),
    "sent": _l("sent"),
    "cancelled": _l("cancelled"),
}


class LoginForm(FlaskForm):
    email = EmailField(validators=[DataRequired(), Length(max=254)])
    password = PasswordField(validators=[DataRequired(), Length(max=1024)])


@bp.app_context_processor
def desk_helpers() -> dict[str, object]:
    return {
        "release_state_label": lambda state: str(STATE_LABELS.get(state, state)),
        "digest_label": lambda frequency: str(DIGEST_LABELS.get(frequency, frequency)),
    }


@bp.after_request
def private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/login", methods=["GET", "POST"])
def login() -> BaseResponse | tuple[str, int] | str:
    target = safe_next(request.args.get("next")) or url_for("desk.index")
    if current_user.is_authenticated:
        return redirect(target, code=303)
    form = LoginForm()
    if request.method == "GET":
        return render_template("admin/login.html", form=form, failed=False)
    if form.validate_on_submit():
        with session_scope() as session:
            publisher = publishers.authenticate(
                session, form.email.data or "", form.password.data or "", now=utcnow()
            )
            user = new_sign_in(session, publisher) if publisher is not None else None
        if user is not None:
            login_user(user)
            return redirect(target, code=303)
    # The same answer for an unknown address and a wrong password.
    return render_template("admin/login.html", form=form, failed=True), 401


@bp.post("/logout")
def logout() -> BaseResponse:
    if current_user.is_authenticated:
        end_session(current_user)
    logout_user()
    return redirect(url_for("desk.login"), code=303)


@bp.get("", strict_slashes=False)
@login_required
def index() -> str:
    with session_scope() as session:
        rows = releases.newest_releases(session, limit=DESK_RELEASES)
        runs = digests.latest_runs(session, limit=DESK_DIGEST_RUNS)
        counts = releases.delivery_counts_of(session, [r.id for r in (*rows, *runs)])
        items = [{"release": r, "counts": counts[r.id]} for r in rows]
        digest_runs = [{"release": r, "counts": counts[r.id]} for r in runs]
        config = settings()
        return render_template(
            "admin/index.html",
            items=items,
            digest_runs=digest_runs,
            digest_hour=f"{config.digest_hour:02d}:00",
            zone_name=config.timezone,
            now=utcnow(),
        )


def limit_logins(app: Flask) -> None:
    """Password guessing is slowed per client address."""
    limiter = app.extensions["pressroom.limiter"]
    app.view_functions["desk.login"] = limiter.limit(LOGIN_RATE_LIMIT, methods=["POST"])(
        app.view_functions["desk.login"]
    )
