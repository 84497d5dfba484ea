"""How often a reader hears from us (`frequency`) at every door: the subscribe form, the
preferences page, the API and the reader's data export; a bad value is a clear 4xx that
changes nothing."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from service.app_state import get_database
from service.models import ConsentSource, Frequency, Subscriber, SubscriberStatus
from tests.web.helpers import load, subscribe_form, token_for


def frequency_of(app: Flask, email: str) -> Frequency | None:
    with app.app_context(), get_database().session_scope() as session:
        return session.scalar(select(Subscriber.frequency).where(Subscriber.email == email))


def reader(app: Flask, email: str = "reader@mail.example") -> str:
    with app.app_context(), get_database().session_scope() as session:
        row = Subscriber(
            email=email,
            status=SubscriberStatus.CONFIRMED,
            language="nb",
            consent_source=ConsentSource.FORM,
            consent_text_version="v1",
        )
        session.add(row)
        session.flush()
        return row.uid


def test_the_subscribe_form_offers_a_daily_or_weekly_digest(
    app: Flask, client: FlaskClient
) -> None:
    page = client.get("/?lang=en").text
    assert 'name="frequency" value="immediately" checked' in page
    assert 'value="daily"' in page and 'value="weekly"' in page
    assert "One email a day" in page
    assert subscribe_form(client, "daily@mail.example", frequency="daily")[0] == 200
    assert frequency_of(app, "daily@mail.example") is Frequency.DAILY
    assert subscribe_form(client, "plain@mail.example")[0] == 200
    assert frequency_of(app, "plain@mail.example") is Frequency.IMMEDIATELY


def test_the_subscribe_form_refuses_an_unknown_frequency(app: Flask, client: FlaskClient) -> None:
    status, text = subscribe_form(client, "odd@mail.example", frequency="hourly")
    assert status == 422 and "Hvor ofte må være immediately, daily eller weekly." in text
    assert frequency_of(app, "odd@mail.example") is None


@pytest.mark.parametrize(("value", "stored"), [("weekly", "weekly"), ("", "immediately")])
def test_the_api_takes_a_frequency(
    app: Flask, client: FlaskClient, value: str, stored: str
) -> None:
    answer = client.post(
        "/api/v1/subscriptions", json={"email": "api@mail.example", "frequency": value}
    )
    assert answer.status_code == 202, answer.text
    assert frequency_of(app, "api@mail.example") is Frequency(stored)


@pytest.mark.parametrize("value", ["Weekly", "hourly", 7, None, ["daily"]])
def test_the_api_refuses_a_frequency_it_does_not_know(
    app: Flask, client: FlaskClient, value: object
) -> None:
    answer = client.post(
        "/api/v1/subscriptions", json={"email": "api@mail.example", "frequency": value}
    )
    assert answer.status_code == 422, answer.text
    assert answer.get_json()["error"]["code"] == "invalid_frequency"
    assert frequency_of(app, "api@mail.example") is None


def test_the_preferences_page_changes_how_often_and_the_export_says_it(
    app: Flask, client: FlaskClient
) -> None:
    uid = reader(app)
    path = f"/preferences/{token_for(app, uid, 'preferences')}"
    assert 'value="immediately" checked' in client.get(path).text
    answer = client.post(path, data={"language": "nb", "frequency": "weekly"})
    assert answer.status_code == 303
    assert load(app, uid).frequency is Frequency.WEEKLY  # type: ignore[union-attr]
    assert 'value="weekly" checked' in client.get(path).text
    assert client.get(f"{path}/data.json").get_json()["frequency"] == "weekly"
    # A form without the field (an older page) leaves the choice as it was.
    client.post(path, data={"language": "en"})
    assert load(app, uid).frequency is Frequency.WEEKLY  # type: ignore[union-attr]
    refused = client.post(path, data={"language": "nb", "frequency": "sometimes"})
    assert refused.status_code == 422
    row = load(app, uid)
    assert row is not None and (row.frequency, row.language) == (Frequency.WEEKLY, "en")
