"""The consent ledger and the undo of an unsubscribe, through the reader's pages and the desk."""

from __future__ import annotations

import hashlib
import json
import re
import time

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from service.app_state import get_database
from service.domain import consent_ledger, subscriptions
from service.domain.tokens import TokenSigner
from service.models import (
    ConsentAct,
    ConsentChannel,
    ConsentRecord,
    ConsentSource,
    ConsentText,
    Subscriber,
    SubscriberStatus,
    SubscriptionEvent,
    SubscriptionEventKind,
)
from tests.web.helpers import load, subscribe_form, token_for

EMAIL = "reader@mail.example"
UNDO_NB = "Det var en feil: behold abonnementet mitt"
UNDO_EN = "That was a mistake: keep me subscribed"


def a_reader(app: Flask) -> str:
    """A confirmed reader who reads English and chose two topics; their uid."""
    with app.app_context(), get_database().session_scope() as session:
        row = Subscriber(
            email=EMAIL,
            status=SubscriberStatus.CONFIRMED,
            language="en",
            consent_source=ConsentSource.FORM,
            consent_text_version="v1",
        )
        row.set_topics(["culture", "space"])
        session.add(row)
        session.flush()
        return row.uid


def ledger(app: Flask, uid: str) -> list[consent_ledger.Entry]:
    with app.app_context(), get_database().session_scope() as session:
        row = session.scalar(select(Subscriber).where(Subscriber.uid == uid))
        assert row is not None
        return list(consent_ledger.history(session, row.id))


def undo_path(page: str) -> str:
    found = re.search(r'action="(/undo/[^"]+)"', page)
    assert found, "no undo button on the page"
    return found.group(1)


def test_the_form_records_the_text_it_showed_and_the_ip_as_configured(
    app: Flask, client: FlaskClient
) -> None:
    client.environ_base.update(REMOTE_ADDR="198.51.100.77", HTTP_USER_AGENT="Firefox/140")
    shown = client.get("/?lang=en").text
    assert subscribe_form(client, EMAIL, language="en")[0] == 200
    with app.app_context(), get_database().session_scope() as session:
        record = session.scalars(select(ConsentRecord)).one()
        text = session.get(ConsentText, record.text_sha256)
        assert (record.act, record.source) == (ConsentAct.SIGNUP, ConsentChannel.FORM)
        assert (record.ip, record.user_agent) == ("198.51.100.0/24", "Firefox/140")
        assert text is not None and text.language == "en"
        assert record.text_sha256 == hashlib.sha256(text.text.encode()).hexdigest()
        subscriber = session.get(Subscriber, record.subscriber_id)
        assert subscriber is not None and subscriber.consent_ip == "198.51.100.0/24"
    # Word for word what the page showed.
    for paragraph in text.text.split("\n"):
        assert paragraph in shown


def test_unsubscribing_on_the_page_can_be_undone_with_the_choices_kept(
    app: Flask, client: FlaskClient
) -> None:
    uid = a_reader(app)
    unsubscribe = f"/unsubscribe/{token_for(app, uid, 'unsubscribe')}"
    assert 'name="from" value="page"' in client.get(unsubscribe).text
    left = client.post(
        unsubscribe + "?lang=nb", data={"List-Unsubscribe": "One-Click", "from": "page"}
    )
    assert left.status_code == 200 and UNDO_NB in left.text
    assert load(app, uid).status is SubscriberStatus.UNSUBSCRIBED  # type: ignore[union-attr]
    undo = undo_path(left.text)
    assert UNDO_EN in client.get(undo + "?lang=en").text  # a page with the button, no change
    assert load(app, uid).status is SubscriberStatus.UNSUBSCRIBED  # type: ignore[union-attr]

    done = client.post(undo + "?lang=en")
    assert done.status_code == 200 and "subscribed again" in done.text
    row = load(app, uid)
    assert row is not None and row.status is SubscriberStatus.CONFIRMED
    assert (row.language, row.topics) == ("en", ["culture", "space"])
    entries = ledger(app, uid)
    assert [(e.act, e.source) for e in entries] == [
        (ConsentAct.UNSUBSCRIBE, ConsentChannel.FORM),
        (ConsentAct.UNDO, ConsentChannel.FORM),
    ]
    assert entries[-1].text is not None and UNDO_EN in entries[-1].text
    with app.app_context(), get_database().session_scope() as session:
        kinds = session.scalars(select(SubscriptionEvent.kind)).all()
        assert SubscriptionEventKind.RESTORED in kinds

    again = client.post(undo + "?lang=en")
    assert again.status_code == 400 and "cannot take the unsubscribe back" in again.text
    assert len(ledger(app, uid)) == 2


def test_the_preferences_page_unsubscribe_offers_the_undo_too(
    app: Flask, client: FlaskClient
) -> None:
    uid = a_reader(app)
    page = client.get(f"/preferences/{token_for(app, uid, 'preferences')}").text
    action = re.search(r'action="(/unsubscribe/[^"]+)"', page)
    assert action and 'name="from" value="page"' in page
    left = client.post(
        action.group(1) + "?lang=en", data={"List-Unsubscribe": "One-Click", "from": "page"}
    )
    assert UNDO_EN in left.text


def test_a_one_click_post_is_recorded_as_such_and_offers_no_undo(app: Flask) -> None:
    uid = a_reader(app)
    bare = app.test_client(use_cookies=False)
    answer = bare.post(
        f"/unsubscribe/{token_for(app, uid, 'unsubscribe')}?lang=en",
        data={"List-Unsubscribe": "One-Click"},
    )
    assert answer.status_code == 200
    assert "/undo/" not in answer.text and UNDO_EN not in answer.text
    assert [(e.act, e.source) for e in ledger(app, uid)] == [
        (ConsentAct.UNSUBSCRIBE, ConsentChannel.ONE_CLICK)
    ]


def test_an_undo_link_older_than_24_hours_is_refused(app: Flask, client: FlaskClient) -> None:
    uid = a_reader(app)
    client.post(
        f"/unsubscribe/{token_for(app, uid, 'unsubscribe')}",
        data={"List-Unsubscribe": "One-Click", "from": "page"},
    )
    row = load(app, uid)
    assert row is not None
    old = TokenSigner(app.config["SECRET_KEY"], clock=lambda: time.time() - 25 * 3600)
    answer = client.post(f"/undo/{subscriptions.undo_token(old, row)}?lang=en")
    assert answer.status_code == 410 and "24 hours" in answer.text
    assert load(app, uid).status is SubscriberStatus.UNSUBSCRIBED  # type: ignore[union-attr]
    assert client.get("/undo/not-a-token").status_code == 400


def test_the_data_export_holds_the_ledger(app: Flask, client: FlaskClient) -> None:
    uid = a_reader(app)
    preferences = f"/preferences/{token_for(app, uid, 'preferences')}"
    client.post(preferences, data={"language": "nb", "topics": "space"})
    data = json.loads(client.get(f"{preferences}/data.json").data)
    (entry,) = data["consent_ledger"]
    assert (entry["act"], entry["source"]) == ("preferences", "form")
    assert (entry["language"], entry["topics"]) == ("nb", ["space"])


def test_the_desk_shows_a_subscribers_ledger(app: Flask, desk: FlaskClient) -> None:
    uid = a_reader(app)
    client = app.test_client()
    client.post(
        f"/unsubscribe/{token_for(app, uid, 'unsubscribe')}",
        data={"List-Unsubscribe": "One-Click", "from": "page"},
    )
    listing = desk.get("/admin/subscribers?lang=en").text
    assert f"/admin/subscribers/{uid}" in listing
    english = desk.get(f"/admin/subscribers/{uid}?lang=en")
    assert english.status_code == 200
    assert "Consent record" in english.text and "press room page" in english.text
    norwegian = desk.get(f"/admin/subscribers/{uid}?lang=nb").text
    assert "Samtykkelogg" in norwegian and "presserommets side" in norwegian
    assert desk.get("/admin/subscribers/nobody").status_code == 404
