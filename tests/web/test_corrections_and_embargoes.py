"""Corrections and embargoes through the API, the desk and the public pages: what is refused
(and changes nothing), what is stored, and that an embargoed release stays closed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from service.app_state import get_database
from service.db import utcnow
from service.domain import corrections, releases
from service.domain.corrections import InvalidCorrection
from service.domain.errors import InvalidInput
from service.models import Delivery, DeliveryStatus, Release, ReleaseStatus
from service.sending import control, progress
from tests.conftest import csrf_token
from tests.pipeline.helpers import add_subscribers, api_token
from tests.web.helpers import form, run_sweep, stored

ATOM = "{http://www.w3.org/2005/Atom}"
VALID = {"title": "Tittel", "summary": "Kort", "body": "Tekst", "language": "nb"}


def api(client: FlaskClient, token: str, method: str, path: str, body: Any = None) -> Any:
    return client.open(
        f"/api/v1{path}",
        method=method,
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )


def iso(moment: datetime) -> str:
    return moment.isoformat()


def release_count(app: Flask) -> int:
    with app.app_context(), get_database().session_scope() as session:
        return session.scalar(select(func.count()).select_from(Release)) or 0


def sent_release(app: Flask, slug: str, readers: list[int], *, missed: list[int] = ()) -> int:
    """A release that went out (SENT), delivered to `readers`; `missed` had rows not sent."""
    with app.app_context(), get_database().session_scope() as session:
        release = Release(
            slug=slug, title=f"Title of {slug}", summary="", body="", body_html="",
            language="nb", translations={}, status=ReleaseStatus.SENT,
            published_at=utcnow() - timedelta(hours=1),
        )  # fmt: skip
        session.add(release)
        session.flush()
        for reader in readers:
            session.add(
                Delivery(release_id=release.id, subscriber_id=reader, language="nb",
                         status=DeliveryStatus.SENT)
            )  # fmt: skip
        for reader in missed:
            session.add(
                Delivery(release_id=release.id, subscriber_id=reader, language="nb",
                         status=DeliveryStatus.FAILED)
            )  # fmt: skip
        return release.id


def feed_links(client: FlaskClient) -> list[str]:
    root = ET.fromstring(client.get("/feed.atom").data)
    return [
        link.get("href", "")
        for entry in root.iter(f"{ATOM}entry")
        for link in entry.iter(f"{ATOM}link")
    ]


# --- Embargoes ------------------------------------------------------------------------------


def test_an_embargoed_release_cannot_be_published_before_its_time(
    app: Flask, client: FlaskClient
) -> None:
    token = api_token(app)
    until = (utcnow() + timedelta(hours=2)).replace(microsecond=0)
    answer = api(client, token, "POST", "/releases", {**VALID, "embargo_until": iso(until)})
    assert answer.status_code == 201, answer.text
    release = answer.get_json()
    assert release["embargo_until"] == iso(until)
    refused = api(client, token, "POST", f"/releases/{release['id']}/publish")
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "embargoed"
    assert stored(app, release["id"]).status is ReleaseStatus.DRAFT
    assert client.get(f"/releases/{release['slug']}").status_code == 404
    assert not any(release["slug"] in link for link in feed_links(client))


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"publish": True, "embargo_until": "+2h"}, "embargoed"),
        ({"publish_at": "+1h", "embargo_until": "+2h"}, "embargoed"),
        ({"embargo_until": "2030-01-01T09:00:00"}, "invalid_input"),  # no time zone
        ({"embargo_until": "soon"}, "invalid_input"),
        ({"embargo_until": 5}, "invalid_input"),
        ({"corrects": 999_999}, "invalid_correction"),
        ({"corrects": "1"}, "invalid_input"),
        ({"corrects": True}, "invalid_input"),
        ({"corrects": 0}, "invalid_input"),
    ],
)
def test_bad_corrections_and_embargoes_are_refused_and_change_nothing(
    app: Flask, client: FlaskClient, fields: dict[str, Any], code: str
) -> None:
    token = api_token(app)
    now = utcnow()
    body = {
        name: iso(now + timedelta(hours=int(value[1:-1])))
        if isinstance(value, str) and value.startswith("+")
        else value
        for name, value in fields.items()
    }
    answer = api(client, token, "POST", "/releases", {**VALID, **body})
    assert answer.status_code == 422, answer.text
    assert answer.get_json()["error"]["code"] == code
    assert answer.get_json()["error"]["message"]
    assert release_count(app) == 0


def test_a_schedule_may_fall_at_the_end_of_the_embargo_and_not_before(
    app: Flask, client: FlaskClient
) -> None:
    token = api_token(app)
    until = utcnow() + timedelta(hours=2)
    body = {**VALID, "embargo_until": iso(until), "publish_at": iso(until)}
    release = api(client, token, "POST", "/releases", body).get_json()
    assert release["status"] == "scheduled"
    later = api(
        client, token, "PATCH", f"/releases/{release['id']}",
        {"embargo_until": iso(until + timedelta(minutes=1))},
    )  # fmt: skip
    assert later.status_code == 422
    assert later.get_json()["error"]["code"] == "embargoed"
    assert stored(app, release["id"]).embargo_until == until
    # The sweep's publish at the time: refused before it, done at it.
    with (
        app.app_context(),
        get_database().session_scope() as session,
        pytest.raises(releases.Embargoed),
    ):
        control.publish(session, release["id"], now=until - timedelta(seconds=1))
    with app.app_context(), get_database().session_scope() as session:
        published, _ = control.publish(session, release["id"], now=until)
        assert published.status is ReleaseStatus.SENDING


def test_an_embargo_that_has_passed_closes_nothing(app: Flask, client: FlaskClient) -> None:
    token = api_token(app)
    body = {**VALID, "email": False, "publish": True, "embargo_until": iso(utcnow())}
    answer = api(client, token, "POST", "/releases", body)
    assert answer.status_code == 201, answer.text
    assert answer.get_json()["status"] == "published"
    assert client.get(f"/releases/{answer.get_json()['slug']}").status_code == 200


def test_an_embargoed_row_stays_off_every_public_page_until_its_time(
    app: Flask, client: FlaskClient
) -> None:
    """A published row under embargo (written by other means, or backdated): the page is 404,
    the feed and the front page leave it out, until the time comes."""
    with app.app_context(), get_database().session_scope() as session:
        session.add(
            Release(
                slug="under-embargo", title="Under embargo", summary="", body="", body_html="",
                language="nb", translations={}, status=ReleaseStatus.PUBLISHED,
                published_at=utcnow() - timedelta(days=1),
                embargo_until=utcnow() + timedelta(hours=1),
            )
        )  # fmt: skip
    assert client.get("/releases/under-embargo").status_code == 404
    assert not any("under-embargo" in link for link in feed_links(client))
    assert "Under embargo" not in client.get("/").text
    with app.app_context(), get_database().session_scope() as session:
        session.execute(update(Release).values(embargo_until=utcnow() - timedelta(seconds=1)))
    assert client.get("/releases/under-embargo").status_code == 200
    assert any("under-embargo" in link for link in feed_links(client))
    assert "Under embargo" in client.get("/").text


# --- Corrections ----------------------------------------------------------------------------


def test_a_correction_names_a_sent_release_and_only_while_it_is_unsent(
    app: Flask, client: FlaskClient
) -> None:
    token = api_token(app)
    ids = add_subscribers(app, ["a@mail.example", "b@mail.example"])
    original = sent_release(app, "original", ids)
    answer = api(client, token, "POST", "/releases", {**VALID, "corrects": original})
    assert answer.status_code == 201, answer.text
    correction = answer.get_json()
    assert correction["corrects"] == original
    itself = api(
        client, token, "PATCH", f"/releases/{correction['id']}", {"corrects": correction["id"]}
    )
    assert itself.status_code == 422
    assert itself.get_json()["error"]["code"] == "invalid_correction"
    assert stored(app, correction["id"]).corrects_id == original
    draft = api(client, token, "POST", "/releases", VALID).get_json()
    of_a_draft = api(
        client, token, "PATCH", f"/releases/{correction['id']}", {"corrects": draft["id"]}
    )
    assert of_a_draft.status_code == 422
    assert stored(app, correction["id"]).corrects_id == original
    cleared = api(client, token, "PATCH", f"/releases/{correction['id']}", {"corrects": None})
    assert cleared.get_json()["corrects"] is None
    # Once it is out, what it corrects is fixed.
    with app.app_context(), get_database().session_scope() as session:
        session.execute(update(Release).where(Release.id == draft["id"]).values(status="sent"))
    fixed = api(client, token, "PATCH", f"/releases/{draft['id']}", {"corrects": original})
    assert fixed.status_code == 409


def test_a_correction_of_an_unsent_or_archive_only_release_is_refused(app: Flask) -> None:
    with app.app_context(), get_database().session_scope() as session:
        for status in set(ReleaseStatus) - {ReleaseStatus.SENT}:
            release = Release(slug=f"r-{status.value}", title="t", language="nb", status=status)
            session.add(release)
            session.flush()
            with pytest.raises(InvalidCorrection):
                corrections.check_original(session, release.id, correction_id=None)
        with pytest.raises(InvalidInput):
            corrections.parse_corrects(1.5)


def test_corrections_cannot_go_round_in_a_circle(app: Flask) -> None:
    """By the rules no cycle can be made (only a sent release is corrected, and only an unsent
    one names what it corrects); rows written by other means are refused all the same."""
    with app.app_context(), get_database().session_scope() as session:
        a = Release(slug="a", title="a", language="nb", status=ReleaseStatus.SENT)
        b = Release(slug="b", title="b", language="nb", status=ReleaseStatus.SENT)
        session.add_all([a, b])
        session.flush()
        a.corrects_id, b.corrects_id = b.id, a.id
        session.flush()
        with pytest.raises(InvalidCorrection):
            corrections.check_original(session, a.id, correction_id=None)
        session.execute(update(Release).values(corrects_id=None))


def test_a_correction_is_planned_only_for_readers_who_got_the_original(app: Flask) -> None:
    got = add_subscribers(app, ["got1@mail.example", "got2@mail.example"])
    failed = add_subscribers(app, ["failed@mail.example"])
    add_subscribers(app, ["later@mail.example"])
    original = sent_release(app, "original", got, missed=failed)
    with app.app_context(), get_database().session_scope() as session:
        correction = Release(
            slug="correction", title="Rettelse", language="nb", corrects_id=original
        )
        session.add(correction)
        session.flush()
        assert progress.audience(session, correction) == {"nb": 2}
        copies = corrections.copies_to(session, original, [*got, *failed])
        assert set(copies) == set(got)
        session.execute(update(Release).values(corrects_id=None))


# --- The desk -------------------------------------------------------------------------------


def test_the_desk_offers_sent_releases_to_correct_and_stores_choice_and_embargo(
    app: Flask, desk: FlaskClient
) -> None:
    original = sent_release(app, "original", add_subscribers(app, ["a@mail.example"]))
    page = desk.get("/admin/releases/new?lang=en")
    assert re.search(rf'<option value="{original}"\s*>Title of original', page.text)
    answer = desk.post(
        "/admin/releases/new",
        data=form(page.text, corrects=str(original), embargo_until="2031-03-02T09:30"),
    )
    assert answer.status_code == 303, answer.text
    release_id = int(answer.headers["Location"].rsplit("/", 1)[1])
    saved = stored(app, release_id)
    assert saved.corrects_id == original
    # 09:30 on the desk's clock (TIMEZONE, Europe/Oslo: UTC+1 in March).
    assert saved.embargo_until == datetime(2031, 3, 2, 8, 30, tzinfo=UTC)
    editor = desk.get(f"/admin/releases/{release_id}?lang=en")
    assert 'value="2031-03-02T09:30"' in editor.text
    assert "Under embargo until" in editor.text and "A correction of:" in editor.text
    confirm = desk.get(f"/admin/releases/{release_id}/publish?lang=en")
    assert "under embargo until" in confirm.text
    refused = desk.post(
        f"/admin/releases/{release_id}/publish", data={"csrf_token": csrf_token(editor.text)}
    )
    assert refused.status_code == 409
    assert stored(app, release_id).status is ReleaseStatus.DRAFT
    listing = desk.get("/admin?lang=en")
    assert "Correction" in listing.text and "Embargo until" in listing.text


def test_the_desk_refuses_an_embargo_that_is_no_time(app: Flask, desk: FlaskClient) -> None:
    page = desk.get("/admin/releases/new?lang=nb")
    answer = desk.post("/admin/releases/new", data=form(page.text, embargo_until="i morgen"))
    assert answer.status_code == 422
    assert "Oppgi når embargoen går ut" in answer.text
    assert release_count(app) == 0


def test_the_preview_of_a_correction_shows_its_thread_and_what_it_corrects(
    app: Flask, desk: FlaskClient
) -> None:
    original = sent_release(app, "original", add_subscribers(app, ["a@mail.example"]))
    page = desk.get("/admin/releases/new?lang=nb")
    text = desk.post(
        "/admin/releases/preview?part=text", data=form(page.text, corrects=str(original))
    )
    assert text.status_code == 200, text.text
    assert f"&lt;release-{original}." in text.text or f"<release-{original}." in text.text
    assert "Rettelse til: Title of original" in " ".join(text.text.split())


def test_the_sweep_leaves_a_due_schedule_under_embargo_until_the_embargo_ends(
    app: Flask,
) -> None:
    """A schedule earlier than its embargo is refused when set; a row written by other means
    (or an embargo moved later by hand) waits, still scheduled, and is published by the first
    sweep after the embargo."""
    now = utcnow()
    with app.app_context(), get_database().session_scope() as session:
        release = Release(
            slug="under-embargo",
            title="Under embargo",
            language="nb",
            status=ReleaseStatus.SCHEDULED,
            publish_at=now - timedelta(minutes=1),
            embargo_until=now + timedelta(hours=1),
        )
        session.add(release)
        session.flush()
        release_id = release.id
    run_sweep(app)
    assert stored(app, release_id).status is ReleaseStatus.SCHEDULED
    with app.app_context(), get_database().session_scope() as session:
        session.execute(
            update(Release)
            .where(Release.id == release_id)
            .values(embargo_until=now - timedelta(seconds=1))
        )
    run_sweep(app)
    assert stored(app, release_id).status in (ReleaseStatus.SENDING, ReleaseStatus.SENT)
