"""The desk's subscribers (issue 5): find, filter and page through them; import a CSV with a
report of the lines left out; export the CSV the CLI writes; erase one, leaving a suppression.

An import runs in a worker (the real one of tests/conftest.py): `upload` posts the file,
follows the redirect to the job's page and waits for its report."""

from __future__ import annotations

import csv
import io
import re
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from service import background_import
from service.app_state import get_database
from service.domain.imports import ImportOptions
from service.models import ConsentSource, Subscriber, SubscriberStatus, Suppression, address_hash
from tests.cli.helpers import (
    MULTI_LINE_THEN_BAD,
    SPREADSHEET_FILES,
    SPREADSHEET_READERS,
)
from tests.conftest import csrf_token
from tests.pipeline.helpers import add_subscribers
from tests.web.helpers import (
    EXPORT,
    IMPORT,
    LIST,
    job_id_of,
    listed,
    post_file,
    running,
    text_of,
    upload,
    wait_for_report,
)
from workers.tasks import import_subscribers


@pytest.fixture
def desk(desk: FlaskClient, worker: None) -> FlaskClient:
    """A client signed in to the desk (in Norwegian unless a test asks otherwise), with a
    worker running the imports."""
    return desk


def link(answer: TestResponse, rel: str) -> str | None:
    match = re.search(rf'<a href="([^"]+)" rel="{rel}">', answer.text)
    return unescape(match.group(1)) if match else None


def subscribers(app: Flask) -> dict[str, Subscriber]:
    with app.app_context(), get_database().session_scope() as session:
        return {s.email: s for s in session.scalars(select(Subscriber)).all()}


def subscriber_count(app: Flask) -> int:
    with app.app_context(), get_database().session_scope() as session:
        return session.scalar(select(func.count()).select_from(Subscriber)) or 0


def redis_client(app: Flask) -> redis.Redis:
    return redis.Redis.from_url(app.extensions["pressroom.redis_url"])


def new_job(app: Flask, content: str, *, confirmed: bool = False) -> str:
    """A job as the import form leaves it, but not enqueued: no worker takes it."""
    options = ImportOptions(consent_text_version="test", confirmed=confirmed)
    client = redis_client(app)
    try:
        return background_import.create(client, content.encode(), options, publisher_id=1)
    finally:
        client.close()


def report_lines(answer: TestResponse) -> list[tuple[int, str, str]]:
    """(line, address, what happened) for each row of the import report's table."""
    rows = re.findall(
        r'<tr class="outcome-[a-z-]+"><td class="num"[^>]*>(\d+)</td>'
        r'<td class="address"[^>]*>([^<]*)</td><td[^>]*>([^<]*)</td></tr>',
        answer.text,
    )
    return [(int(line), unescape(email), unescape(what)) for line, email, what in rows]


# --- login ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        LIST,
        f"{LIST}?status=confirmed",
        IMPORT,
        f"{IMPORT}/{'a' * 32}",
        EXPORT,
        f"{LIST}/{'a' * 32}/erase",
    ],
)
def test_every_subscriber_page_needs_a_login(app: Flask, client: FlaskClient, path: str) -> None:
    add_subscribers(app, ["reader@mail.example"])
    answer = client.get(path)
    assert answer.status_code in (302, 303)
    assert urlsplit(answer.headers["Location"]).path == "/admin/login"
    assert "reader@mail.example" not in answer.text


def test_an_import_without_login_changes_nothing(app: Flask, client: FlaskClient) -> None:
    token = csrf_token(client.get("/admin/login").text)  # a valid token, but no login
    answer = upload(client, "email\nsneaky@mail.example\n", token=token)
    assert answer.status_code in (302, 303)
    assert urlsplit(answer.headers["Location"]).path == "/admin/login"
    assert subscriber_count(app) == 0


def test_the_pages_are_never_cached(desk: FlaskClient) -> None:
    for path in (LIST, IMPORT, EXPORT):
        assert desk.get(path).headers["Cache-Control"] == "no-store"


# --- the list -------------------------------------------------------------------------------


def test_the_list_shows_each_subscriber_newest_first(app: Flask, desk: FlaskClient) -> None:
    add_subscribers(app, ["first@mail.example"], topics=("kultur",))
    add_subscribers(app, ["second@mail.example"], status=SubscriberStatus.PENDING, language="en")
    add_subscribers(app, ["third@mail.example"], status=SubscriberStatus.UNSUBSCRIBED)
    answer = desk.get(f"{LIST}?lang=en")
    assert answer.status_code == 200
    assert listed(answer) == ["third@mail.example", "second@mail.example", "first@mail.example"]
    page = text_of(answer)
    assert "3 subscribers in all." in page
    assert "third@mail.example unsubscribed Norwegian every topic" in page
    assert "second@mail.example pending English every topic" in page
    assert "first@mail.example confirmed Norwegian Kultur at once 25 Nov 2026 25 Nov 2026" in page
    assert link(answer, "next") is None and link(answer, "prev") is None


def test_the_list_speaks_norwegian(app: Flask, desk: FlaskClient) -> None:
    add_subscribers(app, ["leser@mail.example"])
    page = text_of(desk.get(f"{LIST}?lang=nb"))
    assert "leser@mail.example" in page
    assert "Språk" in page


def test_an_empty_list_says_so_and_offers_an_import(desk: FlaskClient) -> None:
    answer = desk.get(f"{LIST}?lang=en")
    assert "No subscribers yet." in text_of(answer)
    assert f'href="{IMPORT}"' in answer.text


def test_search_by_part_of_the_address(app: Flask, desk: FlaskClient) -> None:
    add_subscribers(app, ["ola@nrk.example", "kari@nrk.example", "per@vg.example"])
    answer = desk.get(f"{LIST}?lang=en&q=NRK.example")
    assert sorted(listed(answer)) == ["kari@nrk.example", "ola@nrk.example"]
    assert "2 subscribers match." in text_of(answer)
    assert 'value="NRK.example"' in answer.text  # the box keeps what was typed
    answer = desk.get(f"{LIST}?lang=en&q=nobody")
    assert listed(answer) == []
    assert "No subscriber matches these filters." in text_of(answer)


def test_search_takes_percent_and_underscore_literally(app: Flask, desk: FlaskClient) -> None:
    add_subscribers(app, ["under_score@mail.example", "underXscore@mail.example", "a@b.example"])
    assert listed(desk.get(f"{LIST}?q=under_")) == ["under_score@mail.example"]
    assert listed(desk.get(f"{LIST}?q=%25")) == []


def test_filters_by_status_language_and_topic_combine(app: Flask, desk: FlaskClient) -> None:
    add_subscribers(app, ["nb-sport@mail.example"], topics=("sport",))
    add_subscribers(app, ["en-sport@mail.example"], language="en", topics=("sport", "kultur"))
    add_subscribers(
        app, ["pending-sport@mail.example"], status=SubscriberStatus.PENDING, topics=("sport",)
    )
    add_subscribers(app, ["en-all@mail.example"], language="en")
    assert sorted(listed(desk.get(f"{LIST}?topic=sport"))) == [
        "en-sport@mail.example",
        "nb-sport@mail.example",
        "pending-sport@mail.example",
    ]
    assert listed(desk.get(f"{LIST}?topic=kultur")) == ["en-sport@mail.example"]
    assert sorted(listed(desk.get(f"{LIST}?language=en"))) == [
        "en-all@mail.example",
        "en-sport@mail.example",
    ]
    assert listed(desk.get(f"{LIST}?status=pending")) == ["pending-sport@mail.example"]
    both = desk.get(f"{LIST}?lang=en&status=confirmed&topic=sport&language=nb&q=sport")
    assert listed(both) == ["nb-sport@mail.example"]
    assert "1 subscriber matches." in text_of(both)
    assert re.search(r'<option value="confirmed" selected>', both.text)
    assert re.search(r'<option value="nb" selected>', both.text)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("status=deleted", "Status must be one of: pending, confirmed, unsubscribed, bounced."),
        ("language=sv", "Language must be one of: nb, en."),
        ("topic=Not%20a%20topic!", "A topic is a short name"),
        ("before=abc", "before must be a whole number"),
        ("after=-1", "after must be a whole number"),
        ("before=99999999999999999999999", "before must be a whole number"),
        ("before=5&after=3", "Ask for older or for newer subscribers, not both."),
        ("q=a%00b", "An address holds no control characters."),
        (f"q={'x' * 300}", "Search for at most 254 characters"),
    ],
)
def test_bad_filter_values_get_a_clear_answer(
    app: Flask, desk: FlaskClient, query: str, message: str
) -> None:
    add_subscribers(app, ["reader@mail.example"])
    answer = desk.get(f"{LIST}?lang=en&{query}")
    assert answer.status_code == 422
    assert message in text_of(answer)
    assert listed(answer) == []
    assert 'class="filters"' in answer.text  # the form is there to fix it


def test_pages_go_older_and_back_newer_without_repeating_anyone(
    app: Flask, desk: FlaskClient
) -> None:
    emails = [f"reader{n:03}@mail.example" for n in range(120)]
    add_subscribers(app, emails, topics=("sport",))
    add_subscribers(app, [f"other{n}@mail.example" for n in range(5)])  # filtered out below
    newest_first = list(reversed(emails))
    seen: list[str] = []
    pages: list[list[str]] = []
    url: str | None = f"{LIST}?lang=en&topic=sport"
    while url:
        answer = desk.get(url)
        assert answer.status_code == 200
        assert "120 subscribers match." in text_of(answer)
        pages.append(listed(answer))
        seen.extend(pages[-1])
        url = link(answer, "next")
        if url:
            assert parse_qs(urlsplit(url).query)["topic"] == ["sport"]  # the filter stays
    assert [len(page) for page in pages] == [50, 50, 20]
    assert seen == newest_first
    # Back from the last page: the middle page, then the first one, which has no newer link.
    last = desk.get(f"{LIST}?topic=sport&before={subscribers(app)[newest_first[99]].id}")
    assert listed(last) == pages[2]
    middle = desk.get(link(last, "prev") or "")
    assert listed(middle) == pages[1]
    first = desk.get(link(middle, "prev") or "")
    assert listed(first) == pages[0]
    assert link(first, "prev") is None
    assert link(first, "next") is not None


def test_a_stale_page_link_leads_back_to_the_start(app: Flask, desk: FlaskClient) -> None:
    add_subscribers(app, ["only@mail.example"])
    answer = desk.get(f"{LIST}?lang=en&before=1")
    assert answer.status_code == 200
    assert listed(answer) == []
    assert "There is nothing on this page any more." in text_of(answer)
    assert listed(desk.get(link(answer, "prev") or "")) == ["only@mail.example"]


# --- import ---------------------------------------------------------------------------------


def test_the_import_form_explains_the_columns(desk: FlaskClient) -> None:
    answer = desk.get(f"{IMPORT}?lang=en")
    assert answer.status_code == 200
    assert 'enctype="multipart/form-data"' in answer.text
    assert "email (required), name, language (nb or en), topics" in text_of(answer)
    assert 'name="csrf_token"' in answer.text


def test_an_import_reports_every_line_left_out_and_adds_the_rest(
    app: Flask, desk: FlaskClient
) -> None:
    add_subscribers(app, ["already@mail.example"], status=SubscriberStatus.UNSUBSCRIBED)
    add_subscribers(app, ["erased@mail.example"])
    erase(desk, app, "erased@mail.example")
    content = (
        "\ufeffE-post;Name;Language;Topics;Status;Shoe size\n"  # BOM, ; and an alias, as Excel
        "Ola@Mail.example;Ola Nordmann;nb;sport;;44\n"  # line 2
        "not an address;;;;;\n"  # 3
        "already@mail.example;;en;;;\n"  # 4: left as it is, unsubscribed
        "erased@mail.example;;;;;\n"  # 5
        "kari@mail.example;Kari;en;sport,kultur;;\n"  # 6
        "ola@mail.example;Again;;;;\n"  # 7: twice in the file
        "gone@mail.example;;;;unsubscribed;\n"  # 8
        "bad-lang@mail.example;;sv;;;\n"  # 9
        "\n"  # 10: blank, skipped silently
        "per@mail.example;;;;;\n"  # 11
    )
    answer = upload(desk, content, confirmed="yes", consent_note="  Signup sheet,\tbook fair 2026 ")
    assert answer.status_code == 200
    page = text_of(answer)
    assert "3 subscribers imported." in page
    assert "They are confirmed and receive the next release." in page
    assert "Already there, left as they were: 2" in page
    assert "Suppressed (erased or bounced before), not added: 1" in page
    assert "Opted out in the file (unsubscribed or bounced), not added: 1" in page
    assert "Rejected: 2" in page
    assert "Ignored columns: shoe size" in page
    lines = report_lines(answer)
    assert [(line, email) for line, email, _ in lines] == [
        (3, "not an address"),
        (4, "already@mail.example"),
        (5, "erased@mail.example"),
        (7, "ola@mail.example"),
        (8, "gone@mail.example"),
        (9, "bad-lang@mail.example"),
    ]
    what = {line: text for line, _, text in lines}
    assert what[3].startswith("rejected: ")
    assert "email address" in what[3]
    assert what[4] == "already there"
    assert what[5] == "suppressed: erased or bounced before"
    assert what[7] == "already there"
    assert what[8] == "opted out: unsubscribed or bounced in the file"
    assert what[9] == "rejected: Language must be one of: nb, en."

    rows = subscribers(app)
    assert sorted(rows) == [
        "already@mail.example",
        "kari@mail.example",
        "ola@mail.example",
        "per@mail.example",
    ]
    ola, kari = rows["ola@mail.example"], rows["kari@mail.example"]
    assert (ola.name, ola.language, ola.topics) == ("Ola Nordmann", "nb", ["sport"])
    assert (kari.language, kari.topics) == ("en", ["kultur", "sport"])
    for reader in (ola, kari, rows["per@mail.example"]):
        assert reader.status is SubscriberStatus.CONFIRMED
        assert reader.confirmed_at is not None
        assert reader.consent_source is ConsentSource.IMPORT
        assert reader.consent_note == "Signup sheet, book fair 2026"
    assert rows["already@mail.example"].status is SubscriberStatus.UNSUBSCRIBED
    assert rows["already@mail.example"].language == "nb"


def test_an_import_is_pending_unless_confirmed_is_ticked(app: Flask, desk: FlaskClient) -> None:
    answer = upload(desk, "email,language\nreader@mail.example,en\n")
    assert answer.status_code == 200
    page = text_of(answer)
    assert "1 subscriber imported." in page
    assert "waiting for confirmation and were sent no email" in page
    assert "No consent note was given" not in page
    reader = subscribers(app)["reader@mail.example"]
    assert reader.status is SubscriberStatus.PENDING
    assert reader.confirmed_at is None
    assert reader.consent_note is None


def test_a_confirmed_import_without_a_note_gets_a_reminder(app: Flask, desk: FlaskClient) -> None:
    answer = upload(desk, "email\nreader@mail.example\n", confirmed="yes")
    assert "No consent note was given" in text_of(answer)
    assert subscribers(app)["reader@mail.example"].status is SubscriberStatus.CONFIRMED


def test_importing_the_same_file_again_adds_nobody_twice(app: Flask, desk: FlaskClient) -> None:
    content = "email\none@mail.example\ntwo@mail.example\n"
    assert "2 subscribers imported." in text_of(upload(desk, content))
    again = upload(desk, content)
    assert "0 subscribers imported." in text_of(again)
    assert [(line, what) for line, _, what in report_lines(again)] == [
        (2, "already there"),
        (3, "already there"),
    ]
    assert subscriber_count(app) == 2


def test_a_norwegian_report_says_why_in_norwegian(desk: FlaskClient) -> None:
    answer = upload(desk, "email,language\nkari@mail.example,sv\n", lang="nb")
    assert "avvist: Språket må være ett av disse: nb, en." in text_of(answer)


def test_report_lines_are_the_file_s_own_line_numbers(app: Flask, desk: FlaskClient) -> None:
    answer = upload(desk, "email\nleser@mail.example\n\nnot an address\n", lang="nb")
    assert answer.status_code == 200
    assert report_lines(answer)[0][0] == 4
    assert subscriber_count(app) == 1


def test_a_quoted_cell_with_a_line_break_is_one_reader(app: Flask, desk: FlaskClient) -> None:
    """The issue's example (issue 10, item 5), as Excel and Google Sheets write it."""
    answer = upload(desk, b'email,name\r\nkari@example.com,"Kari\nNordmann"\r\n')
    assert "1 subscriber imported." in text_of(answer)
    assert report_lines(answer) == []
    assert subscribers(app)["kari@example.com"].name == "Kari Nordmann"


def test_the_report_names_physical_lines_after_a_multi_line_cell(
    app: Flask, desk: FlaskClient
) -> None:
    answer = upload(desk, MULTI_LINE_THEN_BAD)
    assert "4 subscribers imported." in text_of(answer)
    assert [(line, email) for line, email, _ in report_lines(answer)] == [
        (6, "not-an-address"),
        (10, "four@example.no"),
    ]


@pytest.mark.parametrize("content", SPREADSHEET_FILES)
def test_a_file_a_spreadsheet_wrote_is_imported_as_it_meant(
    app: Flask, desk: FlaskClient, content: bytes
) -> None:
    answer = upload(desk, content)
    assert answer.status_code == 200
    assert "3 subscribers imported." in text_of(answer)
    assert report_lines(answer) == []
    rows = subscribers(app)
    assert {email: (row.name, row.language) for email, row in rows.items()} == SPREADSHEET_READERS


def test_a_file_larger_than_the_app_limit_is_imported(app: Flask, desk: FlaskClient) -> None:
    # Over 500 kB: Werkzeug keeps such an upload in a temporary file, not in memory.
    content = "email,name\n" + "".join(
        f"reader{n:05}@mail.example,{'Reader number ' + str(n):<40}\n" for n in range(9000)
    )
    assert len(content) > 512 * 1024
    answer = upload(desk, content)
    assert answer.status_code == 200
    assert "9,000 subscribers imported." in text_of(answer)  # grouped as English writes it
    assert subscriber_count(app) == 9000


def test_a_long_report_lists_the_first_lines_and_counts_the_rest(
    app: Flask, desk: FlaskClient
) -> None:
    content = "email\n" + "not-an-address\n" * 600 + "good@mail.example\n"
    answer = upload(desk, content)
    page = text_of(answer)
    assert "1 subscriber imported." in page
    assert "Rejected: 600" in page
    assert len(report_lines(answer)) == 500
    assert "100 more lines were not imported" in page
    assert subscriber_count(app) == 1


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        ("email\nkåre@mail.example\n".encode("latin-1"), 422, "The file is not UTF-8 (line 2)"),
        (
            "email\r\nåse@mail.example\r\n".encode("utf-16") + b"\x00\xd8",
            422,
            "The file starts as UTF-16 but is not (line 3)",
        ),
        (b"", 422, "The file is empty"),
        (b"name,address\nOla,ola@mail.example\n", 422, "one of them must be email"),
        (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xb5U", 422, "not UTF-8"),
    ],
    ids=["latin-1", "broken-utf-16", "empty", "no-email-column", "xlsx"],
)
def test_a_file_that_cannot_be_read_changes_nothing(
    app: Flask, desk: FlaskClient, content: bytes, status: int, message: str
) -> None:
    answer = upload(desk, content)
    assert answer.status_code == status
    assert message in text_of(answer)
    assert 'enctype="multipart/form-data"' in answer.text  # the form, to try again
    assert subscriber_count(app) == 0


def test_an_import_without_a_file_is_refused(app: Flask, desk: FlaskClient) -> None:
    token = csrf_token(desk.get(f"{IMPORT}?lang=en").text)
    for data in (
        {"csrf_token": token},
        {"csrf_token": token, "file": (io.BytesIO(b""), "")},  # the browser's empty part
    ):
        answer = desk.post(IMPORT, data=data, content_type="multipart/form-data")
        assert answer.status_code == 422
        assert "Choose a CSV file to import." in text_of(answer)
    urlencoded = desk.post(IMPORT, data={"csrf_token": token, "file": "email\nx@mail.example"})
    assert urlencoded.status_code == 422
    assert subscriber_count(app) == 0


def test_two_files_at_once_are_refused(app: Flask, desk: FlaskClient) -> None:
    token = csrf_token(desk.get(f"{IMPORT}?lang=en").text)
    data = {
        "csrf_token": token,
        "file": [
            (io.BytesIO(b"email\na@mail.example\n"), "a.csv"),
            (io.BytesIO(b"email\nb@mail.example\n"), "b.csv"),
        ],
    }
    answer = desk.post(IMPORT, data=data, content_type="multipart/form-data")
    assert answer.status_code == 422
    assert "Choose one file at a time." in text_of(answer)
    assert subscriber_count(app) == 0


def test_a_too_long_consent_note_is_refused(app: Flask, desk: FlaskClient) -> None:
    answer = upload(desk, "email\nreader@mail.example\n", consent_note="x" * 501)
    assert answer.status_code == 422
    assert "A consent note has at most 500 characters." in text_of(answer)
    assert subscriber_count(app) == 0


def test_a_file_over_the_upload_limit_gets_a_clear_413(app: Flask, desk: FlaskClient) -> None:
    content = b"email\n" + b"reader@mail.example\n" * (21 * 1024 * 1024 // 20)
    answer = upload(desk, content)
    assert answer.status_code == 413
    assert "The file is larger than 20 MB." in text_of(answer)
    assert "Nothing was imported." in text_of(answer)
    assert subscriber_count(app) == 0


def test_an_import_without_csrf_token_changes_nothing(app: Flask, desk: FlaskClient) -> None:
    for token in ("", "forged-token"):
        answer = upload(desk, "email\nreader@mail.example\n", token=token)
        assert answer.status_code == 400
        assert "Reload the page and try again" in text_of(answer)
    big = "email\n" + "reader@mail.example\n" * 5000  # over 64 KiB, under the upload limit
    assert upload(desk, big, token="").status_code == 400
    assert subscriber_count(app) == 0


# --- import in the background ---------------------------------------------------------------


def test_an_import_answers_at_once_and_its_page_gets_the_report(
    app: Flask, desk: FlaskClient
) -> None:
    answer = post_file(desk, "email\none@mail.example\nnot an address\n", confirmed="yes")
    job_id = job_id_of(answer)  # 303 to the job's page, whatever the worker has done yet
    assert len(job_id) >= 32  # unguessable
    page = wait_for_report(desk, job_id)
    assert page.headers["Cache-Control"] == "no-store"
    assert "1 subscriber imported." in text_of(page)
    assert "They are confirmed and receive the next release." in text_of(page)
    assert report_lines(page)[0][:2] == (3, "not an address")
    assert 'enctype="multipart/form-data"' in page.text  # import another file
    assert sorted(subscribers(app)) == ["one@mail.example"]
    client = redis_client(app)
    assert not client.exists(background_import.file_key(job_id))  # the upload is gone
    assert client.ttl(background_import.job_key(job_id)) > 0  # the report stays, for a while
    client.close()


def test_a_queued_import_says_so_and_reloads_until_a_worker_has_run_it(
    app: Flask, desk: FlaskClient
) -> None:
    job_id = new_job(app, "email\none@mail.example\ntwo@mail.example\n")
    desk.get(f"{IMPORT}?lang=en")
    waiting = desk.get(f"{IMPORT}/{job_id}")
    assert waiting.status_code == 200
    assert running(waiting)
    assert "Waiting for a worker to start the import." in text_of(waiting)
    assert 'enctype="multipart/form-data"' not in waiting.text  # no second file meanwhile
    assert subscriber_count(app) == 0

    assert import_subscribers(job_id) == "done"
    done = desk.get(f"{IMPORT}/{job_id}")
    assert not running(done)
    assert "2 subscribers imported." in text_of(done)
    assert "waiting for confirmation and were sent no email" in text_of(done)
    assert subscriber_count(app) == 2


@pytest.mark.parametrize("job_id", ["x" * 32, "short", "has.dots-but-long-enough-123"])
def test_an_unknown_import_is_a_404(desk: FlaskClient, job_id: str) -> None:
    answer = desk.get(f"{IMPORT}/{job_id}?lang=en")
    assert answer.status_code == 404
    assert "There is no such import." in text_of(answer)


def test_an_expired_import_is_a_404(app: Flask, desk: FlaskClient) -> None:
    job_id = job_id_of(post_file(desk, "email\none@mail.example\n"))
    wait_for_report(desk, job_id)
    redis_client(app).delete(background_import.job_key(job_id))  # as its TTL does after a day
    assert desk.get(f"{IMPORT}/{job_id}").status_code == 404


def test_running_a_finished_import_again_changes_nothing(app: Flask, desk: FlaskClient) -> None:
    content = "email\none@mail.example\nbad\ntwo@mail.example\n"
    job_id = job_id_of(post_file(desk, content))
    first = wait_for_report(desk, job_id)
    assert "2 subscribers imported." in text_of(first)
    assert import_subscribers(job_id) == "done"  # a redelivery of the task, acked late
    again = desk.get(f"{IMPORT}/{job_id}")
    assert text_of(again) == text_of(first)
    assert report_lines(again) == [(3, "bad", report_lines(first)[0][2])]
    assert subscriber_count(app) == 2


def test_an_import_cut_off_mid_file_resumes_where_it_stopped(app: Flask, desk: FlaskClient) -> None:
    content = (
        "email,language\n"
        "a@mail.example,nb\n"  # 2
        "not an address,nb\n"  # 3
        "b@mail.example,nb\n"  # 4
        "c@mail.example,sv\n"  # 5: rejected
        "d@mail.example,en\n"  # 6
        "a@mail.example,en\n"  # 7: twice in the file
        "e@mail.example,en\n"  # 8
    )
    job_id = new_job(app, content, confirmed=True)
    client = redis_client(app)
    with app.app_context():
        run = background_import.steps(client, job_id, chunk_size=2)
        job = next(run)  # the first chunk is committed ...
        run.close()  # ... and the worker dies
    assert (job.status, job.lines_read, job.report.imported) == ("running", 3, 1)
    assert sorted(subscribers(app)) == ["a@mail.example"]
    page = desk.get(f"{IMPORT}/{job_id}?lang=en")
    assert running(page)
    assert "3 lines read. Imported so far: 1" in text_of(page)

    assert import_subscribers(job_id) == "done"  # the task, delivered again
    report = desk.get(f"{IMPORT}/{job_id}")
    page_text = text_of(report)
    assert "4 subscribers imported." in page_text  # not "already there" for a
    assert "Already there, left as they were: 1" in page_text  # line 7 only
    assert "Rejected: 2" in page_text
    assert [(line, what.split(":")[0]) for line, _, what in report_lines(report)] == [
        (3, "rejected"),
        (5, "rejected"),
        (7, "already there"),
    ]
    assert sorted(subscribers(app)) == [f"{x}@mail.example" for x in "abde"]
    assert not client.exists(background_import.file_key(job_id))
    client.close()


# --- export ---------------------------------------------------------------------------------


def test_the_export_is_the_csv_the_cli_writes(
    app: Flask, desk: FlaskClient, tmp_path: Path
) -> None:
    add_subscribers(app, [f"reader{n}@mail.example" for n in range(1500)], topics=("sport",))
    upload(desk, "email,name,language\nola@mail.example,=cmd(),en\n", confirmed="yes")
    answer = desk.get(EXPORT)
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    assert answer.is_streamed
    disposition = answer.headers["Content-Disposition"]
    assert re.fullmatch(r'attachment; filename="subscribers-\d{4}-\d{2}-\d{2}\.csv"', disposition)
    cli_file = tmp_path / "cli.csv"
    result = app.test_cli_runner().invoke(args=["subscribers", "export", str(cli_file)])
    assert result.exit_code == 0, result.output
    assert answer.data == cli_file.read_bytes()

    rows = list(csv.DictReader(io.StringIO(answer.data.decode())))
    assert len(rows) == 1501
    assert rows[0]["email"] == "reader0@mail.example"
    assert rows[0]["topics"] == "sport"
    assert (rows[-1]["email"], rows[-1]["name"], rows[-1]["language"]) == (
        "ola@mail.example",
        "'=cmd()",  # no formula for a spreadsheet
        "en",
    )


def test_an_exported_file_imports_back(app: Flask, desk: FlaskClient) -> None:
    add_subscribers(app, ["a@mail.example", "b@mail.example"], language="en", topics=("sport",))
    add_subscribers(app, ["gone@mail.example"], status=SubscriberStatus.UNSUBSCRIBED)
    exported = desk.get(EXPORT).data
    with app.app_context(), get_database().session_scope() as session:
        for table in ("subscriber_topics", "subscribers"):
            session.execute(Subscriber.metadata.tables[table].delete())
    answer = upload(desk, exported)
    assert "2 subscribers imported." in text_of(answer)
    rows = subscribers(app)
    assert sorted(rows) == ["a@mail.example", "b@mail.example"]  # the unsubscribed one stays out
    assert rows["a@mail.example"].topics == ["sport"]
    assert rows["a@mail.example"].language == "en"


def test_an_address_a_spreadsheet_would_run_is_exported_quoted_and_imports_back(
    app: Flask, desk: FlaskClient
) -> None:
    add_subscribers(app, ["=1+2@mail.example", "-dash@mail.example"])
    exported = desk.get(EXPORT).data.decode()
    assert "\n'=1+2@mail.example," in exported and "\n'-dash@mail.example," in exported
    with app.app_context(), get_database().session_scope() as session:
        for table in ("subscriber_topics", "subscribers"):
            session.execute(Subscriber.metadata.tables[table].delete())
    assert "2 subscribers imported." in text_of(upload(desk, exported.encode()))
    assert sorted(subscribers(app)) == ["-dash@mail.example", "=1+2@mail.example"]


def test_an_empty_export_has_its_header(desk: FlaskClient) -> None:
    assert desk.get(EXPORT).data == (
        b"email,name,status,language,topics,frequency,created_at,confirmed_at,unsubscribed_at,"
        b"consent_source\r\n"
    )


# --- erase ----------------------------------------------------------------------------------


def erase_page_for(desk: FlaskClient, app: Flask, email: str, query: str = "") -> TestResponse:
    listing = desk.get(f"{LIST}?lang=en{query}")
    uid = subscribers(app)[email].uid
    match = re.search(rf'href="(/admin/subscribers/{uid}/erase[^"]*)"', listing.text)
    assert match, f"no erase link for {email}"
    return desk.get(unescape(match.group(1)))


def erase(desk: FlaskClient, app: Flask, email: str) -> TestResponse:
    page = erase_page_for(desk, app, email)
    uid = subscribers(app)[email].uid
    return desk.post(
        f"{LIST}/{uid}/erase",
        data={"csrf_token": csrf_token(page.text), "confirm": "yes", "next": LIST},
    )


def suppressed(app: Flask, email: str) -> bool:
    with app.app_context(), get_database().session_scope() as session:
        digest = address_hash(email)
        return (
            session.scalar(select(Suppression).where(Suppression.email_hash == digest)) is not None
        )


def test_erase_asks_first_then_removes_the_row_and_keeps_a_suppression(
    app: Flask, desk: FlaskClient
) -> None:
    add_subscribers(app, ["keep@mail.example"])
    add_subscribers(app, ["leave@mail.example"], topics=("sport",))
    page = erase_page_for(desk, app, "leave@mail.example", query="&topic=sport")
    assert page.status_code == 200
    assert "Yes, erase leave@mail.example and all data about them." in text_of(page)
    assert 'type="checkbox" name="confirm" value="yes" required' in page.text
    uid = subscribers(app)["leave@mail.example"].uid
    token = csrf_token(page.text)
    back = re.search(r'name="next" value="([^"]+)"', page.text)
    assert back and unescape(back.group(1)) == f"{LIST}?lang=en&topic=sport"

    unticked = desk.post(f"{LIST}/{uid}/erase", data={"csrf_token": token})
    assert unticked.status_code == 422
    assert "Tick the box to confirm" in text_of(unticked)
    no_token = desk.post(f"{LIST}/{uid}/erase", data={"confirm": "yes"})
    assert no_token.status_code == 400
    assert "leave@mail.example" in subscribers(app)
    assert not suppressed(app, "leave@mail.example")

    answer = desk.post(
        f"{LIST}/{uid}/erase",
        data={"csrf_token": token, "confirm": "yes", "next": unescape(back.group(1))},
    )
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"{LIST}?lang=en&topic=sport"
    listing = desk.get(answer.headers["Location"])
    assert "The subscriber is erased." in text_of(listing)
    assert listed(listing) == []
    assert sorted(subscribers(app)) == ["keep@mail.example"]
    assert suppressed(app, "leave@mail.example")
    # The suppression keeps an import from adding the address again.
    again = upload(desk, "email\nleave@mail.example\n")
    assert report_lines(again) == [
        (2, "leave@mail.example", "suppressed: erased or bounced before")
    ]
    # Twice: the subscriber is gone, and the page says so.
    gone = desk.post(f"{LIST}/{uid}/erase", data={"csrf_token": token, "confirm": "yes"})
    assert gone.status_code == 404


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example", "/admin/releases/new", "/admin/sub"]
)
def test_after_erasing_the_way_back_is_only_to_the_list(
    app: Flask, desk: FlaskClient, target: str
) -> None:
    add_subscribers(app, ["leave@mail.example"])
    page = erase_page_for(desk, app, "leave@mail.example")
    uid = subscribers(app)["leave@mail.example"].uid
    answer = desk.post(
        f"{LIST}/{uid}/erase",
        data={"csrf_token": csrf_token(page.text), "confirm": "yes", "next": target},
    )
    assert answer.status_code == 303
    assert answer.headers["Location"] == LIST


@pytest.mark.parametrize("uid", ["0" * 32, "not-a-uid", "A" * 32])
def test_erasing_someone_unknown_is_a_404(app: Flask, desk: FlaskClient, uid: str) -> None:
    add_subscribers(app, ["reader@mail.example"])
    token = csrf_token(desk.get(LIST).text)
    assert desk.get(f"{LIST}/{uid}/erase").status_code == 404
    answer = desk.post(f"{LIST}/{uid}/erase", data={"csrf_token": token, "confirm": "yes"})
    assert answer.status_code == 404
    assert subscriber_count(app) == 1
