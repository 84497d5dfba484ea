"""The desk's release pages: write, preview, test, publish with a head count, watch, control."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from service.app_state import get_database
from service.db import utcnow
from service.domain import releases
from service.models import Delivery, Release, ReleaseStatus, SubscriberStatus
from tests.conftest import EMAIL, csrf_token, log_in
from tests.pipeline.helpers import add_subscribers, api_token, wait_until
from tests.web.helpers import GAGARIN, form, stored


def create(desk: FlaskClient, **fields: object) -> int:
    page = desk.get("/admin/releases/new")
    answer = desk.post("/admin/releases/new", data=form(page.text, **fields))
    assert answer.status_code == 303, answer.text
    match = re.search(r"/admin/releases/(\d+)", answer.headers["Location"])
    assert match, answer.headers["Location"]
    return int(match.group(1))


def deliveries(app: Flask) -> int:
    with app.app_context(), get_database().session_scope() as session:
        return session.scalar(select(func.count()).select_from(Delivery)) or 0


POSTED_ROUTES = [
    "/admin/releases/new",
    "/admin/releases/1",
    "/admin/releases/preview",
    "/admin/releases/1/preview",
    "/admin/releases/1/test",
    "/admin/releases/1/publish",
    "/admin/releases/1/pause",
    "/admin/releases/1/resume",
    "/admin/releases/1/cancel",
]


@pytest.mark.parametrize("path", POSTED_ROUTES)
def test_a_valid_form_without_a_login_changes_nothing(
    app: Flask, client: FlaskClient, publisher: str, path: str
) -> None:
    # A real CSRF token (from the login page): only the missing login stops the request.
    token = csrf_token(client.get("/admin/login").text)
    answer = client.post(path, data=form(f'name="csrf_token" value="{token}"'))
    assert answer.status_code in (302, 303), answer.text
    assert "/admin/login" in answer.headers["Location"]
    with app.app_context(), get_database().session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Release)) == 0


def test_every_release_page_needs_a_login(client: FlaskClient, publisher: str) -> None:
    for path in ("/admin/releases/new", "/admin/releases/1", "/admin/releases/1/send",
                 "/admin/releases/1/preview"):  # fmt: skip
        answer = client.get(path)
        assert answer.status_code in (302, 303), path
        assert "/admin/login" in answer.headers["Location"]
    polled = client.get("/admin/releases/1/progress.json")
    assert polled.status_code == 401
    assert polled.json["error"]["code"] == "unauthorized"


def test_a_publisher_writes_a_draft_in_two_languages(app: Flask, desk: FlaskClient) -> None:
    desk.get("/admin?lang=en")  # the desk remembers the language chosen
    release_id = create(
        desk,
        translation_title="60 years since Yuri Gagarin conquered space",
        translation_body="He went round the Earth **once**.",
    )
    release = stored(app, release_id)
    assert release.status is ReleaseStatus.DRAFT
    assert release.title == GAGARIN
    assert "<strong>én gang</strong>" in release.body_html
    assert release.translations["en"]["title"] == "60 years since Yuri Gagarin conquered space"
    editor = desk.get(f"/admin/releases/{release_id}?lang=en")
    assert editor.status_code == 200
    assert "60 years since Yuri Gagarin conquered space" in editor.text
    assert "Saved." in editor.text

    changed = desk.post(
        f"/admin/releases/{release_id}",
        data=form(editor.text, title="Gagarin, 60 år etter", translation_title=""),
    )
    assert changed.status_code == 303
    release = stored(app, release_id)
    assert release.title == "Gagarin, 60 år etter"
    assert release.translations == {}  # emptied fields remove the translation


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"title": ""}, "title"),
        ({"title": "Two\nlines"}, "one line"),
        ({"language": "sv"}, "language"),
        ({"publish_at": "2001-01-01T09:00"}, "future"),
        ({"publish_at": "tomorrow"}, "date"),
        ({"topics": "Not a topic!"}, "topic"),
    ],
)
def test_a_bad_release_form_says_why_and_stores_nothing(
    app: Flask, desk: FlaskClient, fields: dict[str, str], message: str
) -> None:
    page = desk.get("/admin/releases/new?lang=en")
    answer = desk.post("/admin/releases/new", data=form(page.text, **fields))
    assert answer.status_code == 422
    assert message in answer.text.lower()
    assert 'role="alert"' in answer.text
    assert fields.get("summary", "Gagarin det første") in answer.text  # the text is kept
    with app.app_context(), get_database().session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Release)) == 0


def test_a_schedule_is_read_on_the_desk_clock(app: Flask, desk: FlaskClient) -> None:
    when = datetime.now(UTC) + timedelta(days=3)
    oslo = when.astimezone(app.extensions["pressroom.settings"].zone)
    release_id = create(desk, publish_at=oslo.strftime("%Y-%m-%dT%H:%M"))
    release = stored(app, release_id)
    assert release.status is ReleaseStatus.SCHEDULED
    assert release.publish_at == when.replace(second=0, microsecond=0)
    editor = desk.get(f"/admin/releases/{release_id}")
    assert oslo.strftime("%Y-%m-%dT%H:%M") in editor.text
    # Emptying the field takes the schedule away again.
    desk.post(f"/admin/releases/{release_id}", data=form(editor.text, publish_at=""))
    assert stored(app, release_id).status is ReleaseStatus.DRAFT


def test_the_preview_is_the_email_readers_get(app: Flask, desk: FlaskClient) -> None:
    page = desk.get("/admin/releases/new")
    fields = form(page.text, body="Første avsnitt.\n\n[Les mer](https://press.example/mer)")
    html = desk.post("/admin/releases/preview?part=html&language=nb", data=fields)
    assert html.status_code == 200
    assert GAGARIN in html.text
    assert 'href="https://press.example/mer"' in html.text
    assert "http://press.example/unsubscribe/" in html.text
    assert "style=" in html.text  # CSS inlined, as in the mail
    policy_header = html.headers["Content-Security-Policy"]
    assert "script-src" not in policy_header and "default-src 'none'" in policy_header
    assert "frame-ancestors 'self'" in policy_header

    text = desk.post("/admin/releases/preview?part=text&language=en", data=fields)
    assert text.status_code == 200
    assert f"Subject</dt><dd>{GAGARIN}" in text.text
    assert f"To</dt><dd>{EMAIL}" in text.text
    assert "Les mer (https://press.example/mer)" in text.text
    assert "[Les mer]" not in text.text
    assert deliveries(app) == 0

    missing = desk.post("/admin/releases/preview?part=html", data=form(page.text, title=""))
    assert missing.status_code == 422
    assert "title" in missing.text


def test_the_text_preview_shows_no_markdown(app: Flask, desk: FlaskClient) -> None:
    """Issue 10, item 2: the text part showed `**12. april 1961**` and `[NASA](https://...)`."""
    page = desk.get("/admin/releases/new")
    body = (
        "Den **12. april 1961** ble Gagarin det første mennesket i verdensrommet, skriver "
        "[NASA](https://www.nasa.gov/history/gagarin/).\n\n## Fakta\n\n- Vostok 1\n- *108* minutter"
    )
    for path in ("/admin/releases/preview", f"/admin/releases/{create(desk, body=body)}/preview"):
        shown = desk.post(f"{path}?part=text&language=nb", data=form(page.text, body=body))
        assert shown.status_code == 200
        text = " ".join(shown.text.split())
        assert "Den 12. april 1961 ble" in text
        assert "NASA (https://www.nasa.gov/history/gagarin/)" in text
        assert "Fakta -----" in text and "- Vostok 1 - 108 minutter" in text
        assert "**" not in shown.text and "[NASA]" not in shown.text


def test_a_test_email_goes_to_the_publisher_only_and_is_not_counted(
    app: Flask, desk: FlaskClient, sink, worker: None
) -> None:
    add_subscribers(app, ["reader@mail.example"])
    page = desk.get("/admin/releases/new")
    answer = desk.post("/admin/releases/new", data=form(page.text, intent="test"))
    assert answer.status_code == 303
    assert EMAIL in desk.get(answer.headers["Location"]).text
    wait_until(lambda: len(sink.handler.received) >= 1, 30, "the test email")
    (mail,) = sink.handler.received
    assert list(mail.recipients) == [EMAIL]
    message = mail.message
    assert message["Subject"] == f"[TEST] {GAGARIN}"
    assert message["X-Pressroom-Test"] == "yes"
    assert deliveries(app) == 0
    release_id = int(answer.headers["Location"].rsplit("/", 1)[-1])
    assert stored(app, release_id).status is ReleaseStatus.DRAFT


def test_repeated_test_emails_each_have_a_message_id_of_their_own(
    app: Flask, desk: FlaskClient, sink, worker: None
) -> None:
    """Issue 10, item 1: "Save and send a test email" twice, once per preview language, gave
    both one Message-ID, and Gmail folds repeats of one. The domain is MAIL_FROM's."""
    release_id = create(desk, translation_title="Gagarin, 60 years on")
    editor = desk.get(f"/admin/releases/{release_id}")
    for language in ("nb", "en", "nb"):
        answer = desk.post(
            f"/admin/releases/{release_id}",
            data=form(editor.text, intent="test", preview_language=language,
                      translation_title="Gagarin, 60 years on"),
        )  # fmt: skip
        assert answer.status_code == 303
    wait_until(lambda: len(sink.handler.received) >= 3, 30, "three test emails")
    ids = [mail.message["Message-ID"] for mail in sink.handler.received]
    assert len(set(ids)) == 3, ids
    assert all(value.endswith("@press.example>") for value in ids), ids


def test_publishing_asks_first_and_names_how_many_readers_get_it(
    app: Flask, desk: FlaskClient, sink, worker: None
) -> None:
    add_subscribers(app, [f"nb{n}@mail.example" for n in range(3)])
    add_subscribers(app, ["en@mail.example"], language="en")
    add_subscribers(app, ["sport@mail.example"], topics=("sport",))
    add_subscribers(app, ["waiting@mail.example"], status=SubscriberStatus.PENDING)
    release_id = create(
        desk, topics="kultur", intent="publish", translation_title="Gagarin, 60 years on"
    )
    confirm = desk.get(f"/admin/releases/{release_id}/publish?lang=en")
    assert confirm.status_code == 200
    assert "It will be emailed to 4 readers." in confirm.text
    assert "3 in Norwegian" in confirm.text and "1 in English" in confirm.text
    assert stored(app, release_id).status is ReleaseStatus.DRAFT  # nothing yet

    answer = desk.post(
        f"/admin/releases/{release_id}/publish", data={"csrf_token": csrf_token(confirm.text)}
    )
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(f"/admin/releases/{release_id}/send")
    wait_until(
        lambda: desk.get(f"/admin/releases/{release_id}/progress.json").json["state"] == "sent",
        60,
        "the send to finish",
    )
    progress = desk.get(f"/admin/releases/{release_id}/progress.json").json
    assert (progress["total"], progress["sent"], progress["failed"]) == (4, 4, 0)
    assert progress["percent"] == 100.0
    assert sorted(r for mail in sink.handler.received for r in mail.recipients) == sorted(
        ["nb0@mail.example", "nb1@mail.example", "nb2@mail.example", "en@mail.example"]
    )
    view = desk.get(f"/admin/releases/{release_id}/send")
    assert view.status_code == 200
    assert 'value="100.0"' in view.text

    # A second publish (a double click, a stale tab) sends nothing again.
    desk.post(f"/admin/releases/{release_id}/publish", data={"csrf_token": csrf_token(view.text)})
    assert deliveries(app) == 4


def sending_without_tasks(app: Flask, release_id: int, *, paused: bool = False) -> None:
    """A send in progress whose tasks have not run: what the buttons act on, whether or not
    a worker is running in this test session."""
    with app.app_context(), get_database().session_scope() as session:
        releases.publish(session, release_id, now=utcnow())
        if paused:
            releases.pause(session, release_id, now=utcnow())


def test_pause_and_cancel_from_the_send_view(app: Flask, desk: FlaskClient) -> None:
    add_subscribers(app, ["a@mail.example", "b@mail.example"])
    release_id = create(desk)
    sending_without_tasks(app, release_id)
    view = desk.get(f"/admin/releases/{release_id}/send?lang=en")
    token = csrf_token(view.text)
    assert 'id="send-pause"' in view.text
    answer = desk.post(f"/admin/releases/{release_id}/pause", data={"csrf_token": token})
    assert answer.headers["Location"].endswith(f"/admin/releases/{release_id}/send")
    assert stored(app, release_id).status is ReleaseStatus.PAUSED
    assert desk.get(f"/admin/releases/{release_id}/progress.json").json["state"] == "paused"
    desk.post(f"/admin/releases/{release_id}/cancel", data={"csrf_token": token})
    assert stored(app, release_id).status is ReleaseStatus.CANCELLED
    refused = desk.post(f"/admin/releases/{release_id}/resume", data={"csrf_token": token})
    assert refused.status_code == 409
    assert stored(app, release_id).status is ReleaseStatus.CANCELLED
    without_token = desk.post(f"/admin/releases/{release_id}/pause")
    assert without_token.status_code == 400


def test_resume_from_the_send_view_sends_what_is_owed(
    app: Flask, desk: FlaskClient, sink, worker: None
) -> None:
    add_subscribers(app, ["a@mail.example", "b@mail.example"])
    release_id = create(desk)
    sending_without_tasks(app, release_id, paused=True)
    view = desk.get(f"/admin/releases/{release_id}/send?lang=en")
    assert 'id="send-resume"' in view.text
    desk.post(f"/admin/releases/{release_id}/resume", data={"csrf_token": csrf_token(view.text)})
    assert "Resumed." in desk.get(f"/admin/releases/{release_id}/send?lang=en").text
    wait_until(lambda: stored(app, release_id).status is ReleaseStatus.SENT, 60, "the send")
    assert sorted(r for mail in sink.handler.received for r in mail.recipients) == [
        "a@mail.example",
        "b@mail.example",
    ]


def test_an_emailed_release_keeps_its_audience_fixed_in_the_editor(
    app: Flask, desk: FlaskClient, publisher: str
) -> None:
    release_id = create(desk, topics="kultur")
    page = desk.get(f"/admin/releases/{release_id}/publish")
    desk.post(f"/admin/releases/{release_id}/publish", data={"csrf_token": csrf_token(page.text)})
    editor = desk.get(f"/admin/releases/{release_id}?lang=en")
    assert "nothing is sent again" in editor.text
    assert 'name="topics"' not in editor.text
    desk.post(
        f"/admin/releases/{release_id}",
        data=form(editor.text, title="Rettet tittel", topics="sport", language="en"),
    )
    release = stored(app, release_id)
    assert (release.title, release.topics, release.language) == ("Rettet tittel", ["kultur"], "nb")


@pytest.mark.parametrize("release_id", ["999", "0", "2147483648", "99999999999999999999999"])
def test_an_unknown_release_is_a_clear_404(desk: FlaskClient, release_id: str) -> None:
    for page in ("", "/send", "/progress.json", "/publish", "/preview"):
        path = f"/admin/releases/{release_id}{page}"
        assert desk.get(path).status_code == 404, path


def test_a_scheduled_release_saved_again_keeps_its_time(app: Flask, desk: FlaskClient) -> None:
    token = api_token(app, EMAIL)
    when = (datetime.now(UTC) + timedelta(minutes=1)).replace(second=59, microsecond=0)
    answer = desk.application.test_client().post(
        "/api/v1/releases",
        json={"title": GAGARIN, "language": "nb", "publish_at": when.isoformat()},
        headers={"Authorization": f"Bearer {token}"},
    )
    release_id = answer.get_json()["id"]
    editor = desk.get(f"/admin/releases/{release_id}")
    saved = desk.post(
        f"/admin/releases/{release_id}",
        data=form(editor.text, title="Rettet tittel", publish_at=form_minute(app, when)),
    )
    assert saved.status_code == 303, saved.text
    release = stored(app, release_id)
    assert (release.title, release.status, release.publish_at) == (
        "Rettet tittel",
        ReleaseStatus.SCHEDULED,
        when,
    )


def form_minute(app: Flask, moment: datetime) -> str:
    return moment.astimezone(app.extensions["pressroom.settings"].zone).strftime("%Y-%m-%dT%H:%M")


def test_a_time_past_the_calendar_is_refused_clearly(app: Flask, desk: FlaskClient) -> None:
    page = desk.get("/admin/releases/new?lang=en")
    for value in ("0001-01-01T00:00", "10000-01-01T00:00"):
        answer = desk.post("/admin/releases/new", data=form(page.text, publish_at=value))
        assert answer.status_code == 422, value
        assert 'role="alert"' in answer.text


def test_problems_with_a_preview_are_shown_in_its_frame(desk: FlaskClient) -> None:
    page = desk.get("/admin/releases/new?lang=en")
    for answer in (
        desk.post("/admin/releases/preview?part=html", data=form(page.text, language="sv")),
        desk.post("/admin/releases/preview?part=html&language=sv", data=form(page.text)),
    ):
        assert answer.status_code == 422
        assert "frame-ancestors 'self'" in answer.headers["Content-Security-Policy"]


def test_a_stored_title_no_header_may_hold_is_shown_as_a_problem_in_the_preview(
    app: Flask, desk: FlaskClient
) -> None:
    # Input refuses C1 controls now; a row stored before that (or by hand) may hold one.
    release_id = create(desk)
    with app.app_context(), get_database().session_scope() as session:
        release = session.get(Release, release_id)
        assert release is not None
        release.title = "Kontroll\x9b31m i tittelen"
    for part in ("html", "text"):
        answer = desk.get(f"/admin/releases/{release_id}/preview?part={part}&language=nb")
        assert answer.status_code == 422, answer.text
        assert "control character" in answer.text


def test_signing_in_starts_a_new_session_and_signing_out_ends_copies_of_it(
    client: FlaskClient, publisher: str
) -> None:
    with client.session_transaction() as before:
        before["planted"] = "by someone else"
    log_in(client)
    with client.session_transaction() as after:
        assert "planted" not in after
    cookie = client.get_cookie("session")
    assert cookie is not None
    copied = cookie.value
    desk_page = client.get("/admin")
    assert (
        client.post("/admin/logout", data={"csrf_token": csrf_token(desk_page.text)}).status_code
        == 303
    )
    client.set_cookie("session", copied)  # the cookie as it was before signing out
    assert client.get("/admin").status_code in (302, 303)


def test_a_long_release_fits_through_the_editor(app: Flask, desk: FlaskClient) -> None:
    body = "Et langt avsnitt om romfart, med æ, ø og å. " * 4000  # about 180 kB
    release_id = create(desk, body=body)
    assert stored(app, release_id).body == body.strip()
    too_long = desk.post(
        "/admin/releases/new",
        data=form(desk.get("/admin/releases/new").text, body="x" * 3_000_000),
    )
    assert too_long.status_code == 413


def test_a_cancelled_release_cannot_be_edited_and_the_editor_says_so(
    app: Flask, desk: FlaskClient
) -> None:
    release_id = create(desk)
    sending_without_tasks(app, release_id)
    view = desk.get(f"/admin/releases/{release_id}/send")
    desk.post(f"/admin/releases/{release_id}/cancel", data={"csrf_token": csrf_token(view.text)})
    editor = desk.get(f"/admin/releases/{release_id}?lang=en")
    answer = desk.post(f"/admin/releases/{release_id}", data=form(editor.text, title="Ny"))
    assert answer.status_code == 409
    assert "A cancelled release cannot be edited." in answer.text
    assert stored(app, release_id).title == GAGARIN


# --- Issue 10, item 3: the preview's link, and a title a published release has -----------


def published_by_api(app: Flask, title: str = GAGARIN, **fields: object) -> dict[str, object]:
    """A release published (not emailed) through the API, as an integrator would."""
    from tests.pipeline.helpers import publish

    return publish(app.test_client(), api_token(app, EMAIL), title=title, email=False, **fields)


def test_the_preview_of_an_unsaved_release_links_where_it_will_be(
    app: Flask, desk: FlaskClient
) -> None:
    """Before the first save the preview's "read it in your browser" pointed at the release
    that already had the title's slug; the saved one got `-2`."""
    first = published_by_api(app)
    slug = str(first["slug"])
    page = desk.get("/admin/releases/new")
    for part in ("html", "text"):
        shown = desk.post(f"/admin/releases/preview?part={part}&language=nb", data=form(page.text))
        assert shown.status_code == 200
        assert f"/releases/{slug}-2?lang=nb" in shown.text
        assert f"/releases/{slug}?lang=nb" not in shown.text
    release_id = create(desk, same_title="yes")
    assert stored(app, release_id).slug == f"{slug}-2"
    saved = desk.get(f"/admin/releases/{release_id}/preview?part=html&language=nb")
    assert f"/releases/{slug}-2?lang=nb" in saved.text
    # A draft holds its slug too: the next unsaved release's preview says -3.
    shown = desk.post("/admin/releases/preview?part=html&language=nb", data=form(page.text))
    assert f"/releases/{slug}-3?lang=nb" in shown.text
    # A saved release's own preview keeps its own link, whatever the title becomes.
    editor = desk.get(f"/admin/releases/{release_id}")
    live = desk.post(
        f"/admin/releases/{release_id}/preview?part=html&language=nb",
        data=form(editor.text, title="Et helt annet navn"),
    )
    assert f"/releases/{slug}-2?lang=nb" in live.text


def releases_count(app: Flask) -> int:
    with app.app_context(), get_database().session_scope() as session:
        return session.scalar(select(func.count()).select_from(Release)) or 0


def test_the_desk_asks_before_creating_a_release_with_a_published_title(
    app: Flask, desk: FlaskClient
) -> None:
    first = published_by_api(app)
    page = desk.get("/admin/releases/new?lang=en")
    # Case, spacing and no-break spaces do not make another title.
    same = "  60 ÅR siden Jurij\u00a0 gagarin erobret   verdensrommet "
    asked = desk.post("/admin/releases/new", data=form(page.text, title=same))
    assert asked.status_code == 200
    assert 'role="alert"' in asked.text and 'id="same-title"' in asked.text
    assert "a published release has this title" in asked.text
    assert f'href="/releases/{first["slug"]}"' in asked.text
    assert 'name="same_title" value="yes"' in asked.text
    assert same.strip() in asked.text  # the form as it was sent
    assert releases_count(app) == 1  # nothing saved yet

    created = desk.post("/admin/releases/new", data=form(asked.text, title=same, same_title="yes"))
    assert created.status_code == 303  # a warning, not a refusal
    assert releases_count(app) == 2

    # A title that only a draft has, or another title, is no question.
    other = desk.post("/admin/releases/new", data=form(page.text, title="Vostok 2"))
    assert other.status_code == 303
    again = desk.post("/admin/releases/new", data=form(page.text, title="vostok 2"))
    assert again.status_code == 303


def test_the_desk_asks_before_giving_a_draft_a_published_title(
    app: Flask, desk: FlaskClient
) -> None:
    published_by_api(app)
    release_id = create(desk, title="Vostok 1")
    editor = desk.get(f"/admin/releases/{release_id}?lang=en")
    asked = desk.post(f"/admin/releases/{release_id}", data=form(editor.text, title=GAGARIN))
    assert asked.status_code == 200 and 'id="same-title"' in asked.text
    assert stored(app, release_id).title == "Vostok 1"  # not saved
    # A translation's title counts too.
    asked = desk.post(
        f"/admin/releases/{release_id}",
        data=form(editor.text, title="Vostok 1", translation_title=GAGARIN.upper()),
    )
    assert asked.status_code == 200 and 'id="same-title"' in asked.text
    saved = desk.post(
        f"/admin/releases/{release_id}", data=form(editor.text, title=GAGARIN, same_title="yes")
    )
    assert saved.status_code == 303
    assert stored(app, release_id).title == GAGARIN
    # Saved once with it, the title is no new question at every save.
    editor = desk.get(f"/admin/releases/{release_id}")
    assert (
        desk.post(
            f"/admin/releases/{release_id}", data=form(editor.text, summary="Ny ingress")
        ).status_code
        == 303
    )


def test_publishing_a_release_with_a_published_title_warns_but_goes_ahead(
    app: Flask, desk: FlaskClient
) -> None:
    first = published_by_api(app)
    release_id = create(desk, same_title="yes", email="")
    confirm = desk.get(f"/admin/releases/{release_id}/publish?lang=en")
    assert confirm.status_code == 200
    assert 'id="same-title"' in confirm.text and 'role="alert"' in confirm.text
    assert f'href="/releases/{first["slug"]}"' in confirm.text
    done = desk.post(
        f"/admin/releases/{release_id}/publish", data={"csrf_token": csrf_token(confirm.text)}
    )
    assert done.status_code == 303
    assert stored(app, release_id).status is ReleaseStatus.PUBLISHED
    # Another title: no warning on the way.
    other = create(desk, title="Vostok 2", email="")
    assert 'id="same-title"' not in desk.get(f"/admin/releases/{other}/publish").text
    # The API publishes a third one with the title: it never refuses (201 in the helper).
    assert published_by_api(app)["slug"] == f"{first['slug']}-3"


def test_a_title_is_the_same_whatever_the_slug_and_in_either_language(
    app: Flask, desk: FlaskClient
) -> None:
    """A published release renamed after it was created keeps its slug; a translation's
    title is a title too."""
    renamed = published_by_api(app, title="Vostok 1")
    editor = desk.get(f"/admin/releases/{renamed['id']}")
    assert (
        desk.post(
            f"/admin/releases/{renamed['id']}", data=form(editor.text, title="Gagarin i bane")
        ).status_code
        == 303
    )
    published_by_api(app, title="Sputnik", translations={
        "en": {"title": "Laika in orbit", "summary": "", "body": ""},
    })  # fmt: skip
    page = desk.get("/admin/releases/new")
    for title, translation in (("gagarin i  bane", ""), ("Noe annet", "LAIKA IN ORBIT")):
        asked = desk.post(
            "/admin/releases/new",
            data=form(page.text, title=title, translation_title=translation),
        )
        assert asked.status_code == 200 and 'id="same-title"' in asked.text, title
    assert releases_count(app) == 2


def test_scheduling_a_release_with_a_published_title_asks_first(
    app: Flask, desk: FlaskClient
) -> None:
    """A schedule publishes without the publish page: the editor asks when it is set."""
    release_id = create(desk)  # no release is published yet: no question
    published_by_api(app)
    when = datetime.now(UTC) + timedelta(days=3)
    local = when.astimezone(app.extensions["pressroom.settings"].zone).strftime("%Y-%m-%dT%H:%M")
    editor = desk.get(f"/admin/releases/{release_id}")
    asked = desk.post(f"/admin/releases/{release_id}", data=form(editor.text, publish_at=local))
    assert asked.status_code == 200 and 'id="same-title"' in asked.text
    assert stored(app, release_id).status is ReleaseStatus.DRAFT
    saved = desk.post(
        f"/admin/releases/{release_id}",
        data=form(editor.text, publish_at=local, same_title="yes"),
    )
    assert saved.status_code == 303
    assert stored(app, release_id).status is ReleaseStatus.SCHEDULED
    editor = desk.get(f"/admin/releases/{release_id}")
    again = desk.post(f"/admin/releases/{release_id}", data=form(editor.text, publish_at=local))
    assert again.status_code == 303  # the schedule as it was: no new question
