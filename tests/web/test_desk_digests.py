"""Digest runs on the desk: listed apart from the releases, watched on the send view, never
edited (desk or API), never public; the release list says how many readers get a release in a
digest still to go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient

from service.app_state import get_database
from service.db import utcnow
from service.domain import digests
from service.models import Frequency, Release
from tests.conftest import EMAIL
from tests.pipeline.helpers import api_token, held_for_a_daily_reader
from tests.web.helpers import text_of

PUBLISHED = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def a_release_held_for_a_daily_reader(app: Flask) -> int:
    return held_for_a_daily_reader(app, published_at=PUBLISHED)


def open_daily_run(app: Flask) -> int:
    with app.app_context(), get_database().session_scope() as session:
        run_id = digests.open_run(
            session, Frequency.DAILY, PUBLISHED + timedelta(days=1), now=utcnow()
        )
        assert run_id is not None
        return run_id


def test_the_desk_lists_digest_runs_apart_and_counts_digests_to_come(
    app: Flask, desk: FlaskClient
) -> None:
    release_id = a_release_held_for_a_daily_reader(app)
    page = text_of(desk.get("/admin?lang=en"))
    assert "Gagarin" in page and "+ 1 in digests to come" in page
    assert "Digests" not in page  # no run yet
    run_id = open_daily_run(app)
    page = desk.get("/admin?lang=en").text
    assert f"/admin/releases/{run_id}/send" in page and "Daily digest" in page
    assert page.count("/admin/releases/") >= 2 and str(release_id) in page
    view = desk.get(f"/admin/releases/{run_id}/send?lang=en")
    assert view.status_code == 200
    assert "Daily digest" in view.text and "Edit the text" not in view.text
    assert "In daily or weekly digests" in desk.get(f"/admin/releases/{release_id}/send").text


def test_a_digest_run_is_never_edited_nor_public(
    app: Flask, desk: FlaskClient, client: FlaskClient
) -> None:
    a_release_held_for_a_daily_reader(app)
    run_id = open_daily_run(app)
    editor = desk.get(f"/admin/releases/{run_id}")
    assert editor.status_code == 303 and editor.headers["Location"].endswith(f"/{run_id}/send")
    token = api_token(app, EMAIL)
    answer = client.patch(
        f"/api/v1/releases/{run_id}",
        json={"title": "Hijacked"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 409, answer.text
    listed = client.get("/api/v1/releases", headers={"Authorization": f"Bearer {token}"})
    assert run_id not in [item["id"] for item in listed.get_json()["items"]]
    with app.app_context(), get_database().session_scope() as session:
        run = session.get(Release, run_id)
        assert run is not None and run.title != "Hijacked"
        slug = run.slug
    assert client.get(f"/releases/{slug}").status_code == 404
    feed = client.get("/feed.atom")
    assert feed.status_code == 200 and slug not in feed.text and "gagarin" in feed.text
