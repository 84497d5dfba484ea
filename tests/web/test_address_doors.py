"""Every door that takes an address treats it the same way (issue 10, items 4, 6, 7, 8):
the form, the API, a CSV import (desk and CLI), the desk's search and login, the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from service import create_app
from service.app_state import get_database
from service.mailsink import MailSink
from service.models import Subscriber
from tests.conftest import EMAIL as DESK_EMAIL
from tests.conftest import PASSWORD, log_in, make_settings
from tests.pipeline.helpers import add_subscribers, api_token
from tests.web.helpers import LIST, listed, subscribe_form, text_of, upload

# What copy-paste brings around an address: zero-width space, BOM, no-break space, word
# joiner, left-to-right mark, line separator, a tab, the narrow no-break space.
AROUND = ["\u200b", "\ufeff", "\u00a0", "\u2060", "\u200e", "\u2028", "\t", "\u202f"]


@pytest.fixture
def desk(desk: FlaskClient, worker: None) -> FlaskClient:
    """The desk (tests/conftest.py), with a worker running the imports."""
    return desk


def stored(app: Flask) -> list[str]:
    with app.app_context(), get_database().session_scope() as session:
        return list(session.scalars(select(Subscriber.email).order_by(Subscriber.id)))


@pytest.mark.parametrize("mark", AROUND)
def test_invisible_characters_around_an_address_are_taken_off_by_the_form(
    app: Flask, client: FlaskClient, mark: str
) -> None:
    status, _ = subscribe_form(client, f"{mark}reader@mail.example{mark}")
    assert status == 200
    assert stored(app) == ["reader@mail.example"]


@pytest.mark.parametrize("mark", AROUND)
def test_invisible_characters_around_an_address_are_taken_off_by_the_api(
    app: Flask, client: FlaskClient, mark: str
) -> None:
    answer = client.post("/api/v1/subscriptions", json={"email": f"{mark}reader@mail.example"})
    assert answer.status_code == 202, answer.text
    assert stored(app) == ["reader@mail.example"]


def test_invisible_characters_inside_an_address_stay_an_error(
    app: Flask, client: FlaskClient
) -> None:
    for typed in ("read\u200ber@mail.example", "reader@mail\u00a0.example"):
        answer = client.post("/api/v1/subscriptions", json={"email": typed})
        assert answer.status_code == 422, typed
    assert stored(app) == []


def test_erasing_through_the_api_takes_invisible_characters_off(
    app: Flask, client: FlaskClient
) -> None:
    add_subscribers(app, ["reader@mail.example"])
    token = api_token(app)
    answer = client.delete(
        "/api/v1/subscribers/\u200breader@mail.example\ufeff",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 204, answer.text
    assert stored(app) == []


def test_the_api_filter_takes_invisible_characters_off(app: Flask, client: FlaskClient) -> None:
    add_subscribers(app, ["reader@mail.example", "other@mail.example"])
    token = api_token(app)
    answer = client.get(
        "/api/v1/subscribers",
        query_string={"email": "\u200breader@\t"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.text
    assert [item["email"] for item in answer.get_json()["items"]] == ["reader@mail.example"]


def test_the_desk_search_takes_invisible_characters_off(app: Flask, desk: FlaskClient) -> None:
    add_subscribers(app, ["reader@mail.example", "other@mail.example"])
    answer = desk.get(LIST, query_string={"q": "\u200breader@mail.example\ufeff"})
    assert answer.status_code == 200
    assert listed(answer) == ["reader@mail.example"]


def test_the_desk_login_takes_invisible_characters_off(app: Flask, client: FlaskClient) -> None:
    api_token(app, DESK_EMAIL)
    assert log_in(client, "\u200b" + DESK_EMAIL + "\u00a0", PASSWORD)[0] == 303


def test_a_desk_import_takes_invisible_characters_off(app: Flask, desk: FlaskClient) -> None:
    text = "email,name\r\n\u200bkari@mail.example\u200b,Kari\r\n\ufeffola@mail.example,Ola\r\n"
    upload(desk, text.encode())
    assert sorted(stored(app)) == ["kari@mail.example", "ola@mail.example"]


def test_a_cli_import_takes_invisible_characters_off(app: Flask, tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("email\n\u2060kari@mail.example\u200e\n", encoding="utf-8")
    result = app.test_cli_runner().invoke(args=["subscribers", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert stored(app) == ["kari@mail.example"]


def test_cli_commands_take_invisible_characters_off(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=["publisher", "create", "\u200bnew@press.example", "--password-stdin"],
        input="long enough password\n",
    )
    assert result.exit_code == 0, result.output
    result = app.test_cli_runner().invoke(args=["token", "create", "new@press.example\ufeff"])
    assert result.exit_code == 0, result.output


# --- item 6: a domain in Unicode is the same address everywhere, and shown as typed ------

FJOS = "kari@fjøs.example"
FJOS_STORED = "kari@xn--fjs-1na.example"
BLABAER = "ola@blåbær.example"
BLABAER_STORED = "ola@xn--blbr-roah.example"


def test_the_desk_search_finds_an_address_typed_with_its_unicode_domain(
    app: Flask, desk: FlaskClient
) -> None:
    client = app.test_client()
    for email in (FJOS, BLABAER, "per@mail.example"):
        assert client.post("/api/v1/subscriptions", json={"email": email}).status_code == 202
    assert stored(app) == [FJOS_STORED, BLABAER_STORED, "per@mail.example"]
    for typed in (BLABAER, "Ola@BLÅBÆR.example", "blåbær", "@blåbær.example", BLABAER_STORED):
        answer = desk.get(LIST, query_string={"q": typed})
        assert answer.status_code == 200
        assert listed(answer) == [BLABAER], typed
    # The table shows every address as a person writes it.
    assert listed(desk.get(LIST)) == ["per@mail.example", BLABAER, FJOS]


def test_the_api_filter_finds_an_address_by_its_unicode_domain(
    app: Flask, client: FlaskClient
) -> None:
    add_subscribers(app, [BLABAER_STORED, FJOS_STORED])
    token = api_token(app)
    answer = client.get(
        "/api/v1/subscribers",
        query_string={"email": "blåbær.example"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert [item["email"] for item in answer.get_json()["items"]] == [BLABAER_STORED]


def test_the_confirm_page_shows_the_unicode_domain(app: Flask, client: FlaskClient) -> None:
    from tests.web.helpers import token_for

    assert client.post("/api/v1/subscriptions", json={"email": FJOS}).status_code == 202
    with app.app_context(), get_database().session_scope() as session:
        uid = session.scalars(select(Subscriber.uid)).one()
    page = client.get(f"/confirm/{token_for(app, uid, 'confirm')}")
    assert FJOS in page.text and "xn--" not in page.text
    done = client.post(f"/confirm/{token_for(app, uid, 'confirm')}")
    assert FJOS in done.text and "xn--" not in done.text


def test_erasing_through_the_api_takes_the_unicode_domain(app: Flask, client: FlaskClient) -> None:
    add_subscribers(app, [BLABAER_STORED])
    token = api_token(app)
    answer = client.delete(
        f"/api/v1/subscribers/{BLABAER}", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 204, answer.text
    assert stored(app) == []


def test_the_erase_page_shows_the_unicode_domain(app: Flask, desk: FlaskClient) -> None:
    add_subscribers(app, [BLABAER_STORED])
    with app.app_context(), get_database().session_scope() as session:
        uid = session.scalars(select(Subscriber.uid)).one()
    page = desk.get(f"{LIST}/{uid}/erase")
    assert BLABAER in page.text and "xn--" not in page.text


def test_an_import_knows_a_unicode_domain_as_the_address_already_there(
    app: Flask, desk: FlaskClient
) -> None:
    add_subscribers(app, [BLABAER_STORED])
    report = upload(desk, f"email\r\n{BLABAER.upper()}\r\n{FJOS}\r\n".encode())
    assert sorted(stored(app)) == sorted([BLABAER_STORED, FJOS_STORED])
    assert BLABAER in report.text and "xn--" not in report.text


def test_the_desk_login_and_cli_take_a_unicode_domain(app: Flask, client: FlaskClient) -> None:
    result = app.test_cli_runner().invoke(
        args=["publisher", "create", "Redaksjon@Blåbær.example", "--password-stdin"],
        input=f"{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    with app.app_context(), get_database().session_scope() as session:
        from service.models import Publisher

        assert session.scalars(select(Publisher.email)).all() == ["redaksjon@xn--blbr-roah.example"]
    result = app.test_cli_runner().invoke(args=["token", "create", "redaksjon@blåbær.example"])
    assert result.exit_code == 0, result.output
    assert log_in(client, "redaksjon@BLÅBÆR.example", PASSWORD)[0] == 303
    assert "redaksjon@blåbær.example" in client.get("/admin").text


# --- item 7: a refusal is said in the page's language, in our own words -------------------

LIBRARY_WORDS = ("@-sign", "email address must", "There must be", "IDNA", "is not valid")


def test_the_import_report_says_why_in_one_language(app: Flask, desk: FlaskClient) -> None:
    report = upload(
        desk,
        lang="nb",
        content="email\r\nkari.example.com\r\n@mail.example\r\nola@mail.test\r\nper..a@mail.example\r\n",
    )
    text = text_of(report)
    assert "avvist: En e-postadresse må ha en @" in text
    assert "avvist: E-postadressen mangler delen foran @" in text
    assert "avvist: E-postadressen slutter med et navn som er satt av til spesielle formål" in text
    assert "avvist: E-postadressen har et punktum eller en bindestrek på feil sted" in text
    for words in LIBRARY_WORDS:
        assert words not in text


def test_a_csv_readers_complaint_is_said_in_the_page_language(
    app: Flask, desk: FlaskClient
) -> None:
    text_file = "email,name\r\nkari@mail.example," + "x" * 140_000 + "\r\nola@mail.example,Ola\r\n"
    report = upload(desk, text_file, lang="nb")
    text = text_of(report)
    assert "avvist: Et felt på denne linjen er lengre enn 131" in text
    assert "field limit" not in text


def test_the_form_says_why_in_the_page_language(client: FlaskClient) -> None:
    status, page = subscribe_form(client, "kari.example.com")
    assert status == 422
    assert "En e-postadresse må ha en @" in page
    assert "@-sign" not in page


def test_the_api_says_why_in_its_own_words(client: FlaskClient) -> None:
    answer = client.post(
        "/api/v1/subscriptions",
        json={"email": "kari.example.com"},
        headers={"Accept-Language": "en"},
    )
    assert answer.status_code == 422
    assert answer.get_json()["error"]["message"] == (
        "An email address needs an @, as in name@example.com."
    )


def test_the_per_address_limit_counts_one_mailbox_however_it_is_typed(
    app: Flask, database_url: str, redis_url: str, sink: MailSink
) -> None:
    settings = app.extensions["pressroom.settings"]
    strict = create_app(
        make_settings(
            database_url,
            redis_url,
            sink.url,
            address_rate_limit="2/hour",
            task_queue=settings.task_queue,
        )
    )
    client = strict.test_client()
    try:
        codes = [
            client.post("/api/v1/subscriptions", json={"email": typed}).status_code
            for typed in (BLABAER, BLABAER_STORED, "\u200bOLA@Blåbær.example")
        ]
    finally:
        strict.extensions["pressroom.limiter"].reset()
        with strict.app_context():
            get_database().dispose()
    assert codes == [202, 202, 429]


def test_the_cli_names_a_publisher_by_the_unicode_domain(app: Flask) -> None:
    result = app.test_cli_runner().invoke(
        args=["publisher", "create", "redaksjon@blåbær.example", "--password-stdin"],
        input=f"{PASSWORD}\n",
    )
    assert result.output.strip() == "Created publisher redaksjon@blåbær.example."
