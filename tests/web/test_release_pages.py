"""The public archive: the press room's list, one release per page, and the Atom feed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from service.app_state import get_database
from service.db import utcnow
from service.domain import archive
from service.domain.content import render_markdown
from service.models import Release, ReleaseStatus
from service.sending.messages import Composer

ATOM = "{http://www.w3.org/2005/Atom}"
MAY_3 = datetime(2024, 5, 3, 12, 0, tzinfo=UTC)


def add_release(
    app: Flask,
    slug: str,
    *,
    title: str | None = None,
    summary: str = "",
    body: str = "",
    body_html: str | None = None,
    language: str = "nb",
    status: ReleaseStatus = ReleaseStatus.SENT,
    published_at: datetime | None = MAY_3,
    translations: dict[str, Any] | None = None,
) -> None:
    with app.app_context(), get_database().session_scope() as session:
        session.add(
            Release(
                slug=slug,
                title=title or f"Title of {slug}",
                summary=summary,
                body=body,
                body_html=render_markdown(body) if body_html is None else body_html,
                language=language,
                translations=translations or {},
                status=status,
                published_at=published_at,
            )
        )


def translation(title: str, summary: str = "", body: str = "") -> dict[str, str]:
    return {"title": title, "summary": summary, "body": body, "body_html": render_markdown(body)}


def titles_in(page: str) -> list[str]:
    return re.findall(r'<h3><a href="/releases/[^"]+">([^<]*)</a></h3>', page)


def html_lang(page: str) -> str:
    match = re.search(r'<html lang="([^"]+)"', page)
    assert match, "the page has no <html lang>"
    return match.group(1)


def article_lang(page: str) -> str:
    match = re.search(r'<article class="release" lang="([^"]+)"', page)
    assert match, "the page has no release article"
    return match.group(1)


def get_feed(client: FlaskClient, query: str = "") -> ET.Element:
    answer = client.get(f"/feed.atom{query}")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    return ET.fromstring(answer.data)


def entry_titles(feed: ET.Element) -> list[str | None]:
    return [entry.findtext(f"{ATOM}title") for entry in feed.findall(f"{ATOM}entry")]


def has_live_markup(html: str) -> bool:
    """Whether HTML holds a script element, a javascript: URL or an event handler attribute."""
    return bool(
        re.search(r"<script", html, re.I)
        or re.search(r"""(href|src)\s*=\s*["']?\s*javascript:""", html, re.I)
        or re.search(r"<[a-z][^>]*\son[a-z]+\s*=", html, re.I)
    )


# -- the press room ---------------------------------------------------------------------------


def test_front_page_lists_public_releases_newest_first(app: Flask, client: FlaskClient) -> None:
    add_release(app, "middle", title="Budget approved", published_at=MAY_3 - timedelta(days=1))
    add_release(app, "newest", title="New harbour", summary="Works start in June.")
    add_release(app, "oldest", title="Annual report", published_at=MAY_3 - timedelta(days=30))

    page = client.get("/").text

    assert titles_in(page) == ["New harbour", "Budget approved", "Annual report"]
    assert '<a href="/releases/newest">New harbour</a>' in page
    assert "Works start in June." in page
    assert "3. mai 2024" in page
    assert "No releases have been published yet." not in page
    assert "Ingen pressemeldinger" not in page
    assert 'name="email"' in page, "the subscribe form stays on the press room"
    assert "3 May 2024" in client.get("/?lang=en").text


def test_front_page_without_releases_says_so(client: FlaskClient) -> None:
    assert "No releases have been published yet." in client.get("/?lang=en").text


def test_front_page_shows_the_twenty_newest(app: Flask, client: FlaskClient) -> None:
    for number in range(25):
        add_release(app, f"r{number:02}", published_at=MAY_3 + timedelta(hours=number))

    titles = titles_in(client.get("/").text)

    assert titles == [f"Title of r{number:02}" for number in range(24, 4, -1)]


def test_pages_point_feed_readers_to_the_feed(client: FlaskClient) -> None:
    page = client.get("/?lang=en").text
    assert re.search(
        r'<link rel="alternate" type="application/atom\+xml" title="[^"]+"\s+'
        r'href="/feed.atom\?lang=en">',
        page,
    )


# -- only what has been published -------------------------------------------------------------

FUTURE = timedelta(hours=1)
# slug -> (status, published_at; FUTURE means an hour from now)
HIDDEN: dict[str, tuple[ReleaseStatus, datetime | timedelta | None]] = {
    "a-draft": (ReleaseStatus.DRAFT, MAY_3),
    "a-scheduled": (ReleaseStatus.SCHEDULED, MAY_3),
    "a-cancelled": (ReleaseStatus.CANCELLED, MAY_3),
    "a-future": (ReleaseStatus.SENT, FUTURE),
    "an-undated": (ReleaseStatus.PUBLISHED, None),
}
SHOWN = {
    "now-sending": ReleaseStatus.SENDING,
    "now-paused": ReleaseStatus.PAUSED,
    "now-sent": ReleaseStatus.SENT,
    "archive-only": ReleaseStatus.PUBLISHED,
}


def test_unpublished_releases_are_never_shown(app: Flask, client: FlaskClient) -> None:
    for slug, (status, when) in HIDDEN.items():
        published_at = utcnow() + when if isinstance(when, timedelta) else when
        add_release(app, slug, status=status, published_at=published_at)
    for slug, status in SHOWN.items():
        add_release(app, slug, status=status)

    page = client.get("/").text
    feed_text = client.get("/feed.atom").text
    for slug in HIDDEN:
        assert f"Title of {slug}" not in page
        assert f"Title of {slug}" not in feed_text
        assert slug not in feed_text
        assert client.get(f"/releases/{slug}").status_code == 404
    for slug in SHOWN:
        assert f"Title of {slug}" in page
        assert f"Title of {slug}" in feed_text
        assert client.get(f"/releases/{slug}").status_code == 200


def test_unknown_or_unpublished_slug_is_a_friendly_404(app: Flask, client: FlaskClient) -> None:
    add_release(app, "a-draft", status=ReleaseStatus.DRAFT)

    unknown = client.get("/releases/no-such-release")
    draft = client.get("/releases/a-draft")

    assert unknown.status_code == draft.status_code == 404
    assert unknown.headers["Content-Type"].startswith("text/html")
    assert "Fant ikke siden" in unknown.text
    assert '<a href="/">' in unknown.text, "a way back to the press room"
    assert "Traceback" not in unknown.text
    assert draft.text == unknown.text, "a draft is as absent as a slug that never existed"
    english = client.get("/releases/no-such-release?lang=en")
    assert "There is no published release at this address." in english.text


# -- language versions ------------------------------------------------------------------------


def test_release_page_shows_the_version_in_the_page_language(
    app: Flask, client: FlaskClient
) -> None:
    add_release(
        app,
        "harbour",
        title="Ny havn",
        summary="Arbeidet starter i juni.",
        body="Havna blir **større**.",
        translations={"en": translation("New harbour", "Works start in June.", "Much *bigger*.")},
    )

    norwegian = client.get("/releases/harbour").text
    assert html_lang(norwegian) == article_lang(norwegian) == "nb"
    assert "<h1>Ny havn</h1>" in norwegian
    assert "Havna blir <strong>større</strong>." in norwegian
    assert "New harbour" not in norwegian
    assert "3. mai 2024" in norwegian
    assert re.search(r'<a href="/releases/harbour\?lang=en" hreflang="en" lang="en">', norwegian)

    english = client.get("/releases/harbour?lang=en").text
    assert html_lang(english) == article_lang(english) == "en"
    assert "<h1>New harbour</h1>" in english
    assert "Works start in June." in english
    assert "Much <em>bigger</em>." in english
    assert "Ny havn" not in english
    assert "3 May 2024" in english
    assert re.search(r'<a href="/releases/harbour\?lang=nb" hreflang="nb" lang="nb">', english)
    assert "not available in" not in english


def test_release_without_the_page_language_falls_back_to_its_primary_version(
    app: Flask, client: FlaskClient
) -> None:
    add_release(app, "only-nb", title="Bare på norsk", body="Norsk tekst.")
    add_release(app, "only-en", title="English only", body="English text.", language="en")

    page = client.get("/releases/only-nb?lang=en").text
    assert html_lang(page) == "en", "the page around the release stays in the reader's language"
    assert article_lang(page) == "nb", "the release text is marked as Norwegian"
    assert "<h1>Bare på norsk</h1>" in page
    assert "This release is not available in English, so it is shown in Norwegian." in page
    assert "hreflang" not in page.split("<article")[0].split("</header>")[1], "no other version"

    page = client.get("/releases/only-en?lang=nb").text
    assert (html_lang(page), article_lang(page)) == ("nb", "en")
    assert "<h1>English only</h1>" in page
    assert "finnes ikke på norsk" in page

    front = client.get("/?lang=en").text
    assert re.search(r'<li class="release-item" lang="nb">\s*<h3><a[^>]*>Bare på norsk<', front)
    assert re.search(r'<li class="release-item" lang="en">\s*<h3><a[^>]*>English only<', front)


def test_front_page_and_feed_follow_the_reader_language(app: Flask, client: FlaskClient) -> None:
    add_release(app, "both", title="Ny havn", translations={"en": translation("New harbour")})

    assert titles_in(client.get("/").text) == ["Ny havn"]
    assert entry_titles(get_feed(client)) == ["Ny havn"]
    assert titles_in(client.get("/?lang=en").text) == ["New harbour"]
    feed = get_feed(client, "?lang=en")
    assert entry_titles(feed) == ["New harbour"]
    assert feed.find(f"{ATOM}entry").get("{http://www.w3.org/XML/1998/namespace}lang") == "en"  # type: ignore[union-attr]


# -- hostile content --------------------------------------------------------------------------

HOSTILE_TITLE = """Fish & Chips <b>"bold"</b> 'quoted' </title><script>alert(0)</script>"""
HOSTILE_BODY = (
    "<script>alert(1)</script>\n\n"
    "[click me](javascript:alert(2))\n\n"
    '<img src="x" onerror="alert(3)">\n\n'
    "Plain **text** stays."
)


def test_hostile_text_never_reaches_page_or_feed_unescaped(app: Flask, client: FlaskClient) -> None:
    add_release(app, "hostile", title=HOSTILE_TITLE, summary="A < B & C > D", body=HOSTILE_BODY)

    for page in (client.get("/").text, client.get("/releases/hostile").text):
        assert "Fish &amp; Chips &lt;b&gt;&#34;bold&#34;&lt;/b&gt; &#39;quoted&#39;" in page
        assert "A &lt; B &amp; C &gt; D" in page
        assert "<b>" not in page
        assert not has_live_markup(page)
    assert "<strong>text</strong>" in client.get("/releases/hostile").text

    raw = client.get("/feed.atom").text
    assert "<b>" not in raw
    assert "<script" not in raw
    feed = ET.fromstring(raw)
    (entry,) = feed.findall(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}title") == HOSTILE_TITLE
    assert entry.findtext(f"{ATOM}summary") == "A < B & C > D"
    content = entry.find(f"{ATOM}content")
    assert content is not None and content.get("type") == "html"
    assert content.text and "<strong>text</strong>" in content.text
    assert not has_live_markup(content.text)


def test_unsanitized_stored_html_is_cleaned_on_the_way_out(app: Flask, client: FlaskClient) -> None:
    """A row written by some other path than render_markdown still cannot carry a script."""
    raw_html = (
        '<p>Fine.</p><script>alert(1)</script><a href="javascript:alert(2)">x</a>'
        '<img src="/logo.png" onerror="alert(3)"><p onclick="alert(4)">click</p>'
    )
    add_release(
        app,
        "raw",
        body_html=raw_html,
        translations={"en": {"title": "Raw", "summary": "", "body_html": raw_html}},
    )

    for url in ("/releases/raw", "/releases/raw?lang=en"):
        page = client.get(url).text
        assert "<p>Fine.</p>" in page
        assert not has_live_markup(page)
    for query in ("", "?lang=en"):
        content = get_feed(client, query).findtext(f"{ATOM}entry/{ATOM}content")
        assert content and "<p>Fine.</p>" in content
        assert not has_live_markup(content)


def test_characters_xml_cannot_hold_do_not_break_the_feed(app: Flask, client: FlaskClient) -> None:
    add_release(app, "control", title="Bell\x07 and\x0b more", summary="\x1bescape")

    assert entry_titles(get_feed(client)) == ["Bell and more"]


# -- the feed ---------------------------------------------------------------------------------


def test_feed_is_atom_with_every_public_release_newest_first(
    app: Flask, client: FlaskClient
) -> None:
    add_release(app, "older", title="Older", published_at=MAY_3 - timedelta(days=2))
    add_release(app, "newer", title="Newer", summary="Short.", body="The *body*.")
    add_release(app, "draft", title="Draft", status=ReleaseStatus.DRAFT)

    feed = get_feed(client)

    assert feed.tag == f"{ATOM}feed"
    assert feed.findtext(f"{ATOM}id")
    assert feed.findtext(f"{ATOM}title") == "Pressemeldinger fra Pressroom"
    assert feed.findtext(f"{ATOM}author/{ATOM}name") == "Pressroom"
    assert datetime.fromisoformat(feed.findtext(f"{ATOM}updated") or "") == MAY_3
    links = {link.get("rel"): link.get("href") for link in feed.findall(f"{ATOM}link")}
    assert links == {
        "self": "http://press.example/feed.atom?lang=nb",
        "alternate": "http://press.example/?lang=nb",
    }
    entries = feed.findall(f"{ATOM}entry")
    assert entry_titles(feed) == ["Newer", "Older"]
    newer = entries[0]
    assert newer.findtext(f"{ATOM}id", "").startswith("tag:press.example,")
    assert len({entry.findtext(f"{ATOM}id") for entry in entries}) == 2
    assert datetime.fromisoformat(newer.findtext(f"{ATOM}published") or "") == MAY_3
    assert datetime.fromisoformat(newer.findtext(f"{ATOM}updated") or "") == MAY_3
    link = newer.find(f"{ATOM}link")
    assert link is not None
    assert link.get("href") == "http://press.example/releases/newer"
    assert link.get("rel") == "alternate"
    assert newer.findtext(f"{ATOM}summary") == "Short."
    content = newer.find(f"{ATOM}content")
    assert content is not None and content.get("type") == "html"
    assert content.text == "<p>The <em>body</em>.</p>\n"


def test_empty_feed_is_still_valid_atom(client: FlaskClient) -> None:
    feed = get_feed(client)
    assert feed.tag == f"{ATOM}feed"
    assert feed.findall(f"{ATOM}entry") == []
    assert datetime.fromisoformat(feed.findtext(f"{ATOM}updated") or "").tzinfo is not None


def test_feed_holds_the_fifty_newest(app: Flask, client: FlaskClient) -> None:
    for number in range(55):
        add_release(app, f"r{number:02}", published_at=MAY_3 + timedelta(minutes=number))

    titles = entry_titles(get_feed(client))

    assert titles == [f"Title of r{number:02}" for number in range(54, 4, -1)]


# -- the query behind them --------------------------------------------------------------------


def test_keyset_pages_cover_every_public_release_once(session: Session) -> None:
    same_time = MAY_3
    for number in range(7):
        session.add(
            Release(
                slug=f"k{number}",
                title=f"k{number}",
                language="nb",
                status=ReleaseStatus.SENT,
                # Three share one instant: the id breaks the tie.
                published_at=(
                    same_time if number in (2, 3, 4) else MAY_3 + timedelta(days=number - 4)
                ),
            )
        )
    session.add(Release(slug="hidden", title="hidden", language="nb", published_at=MAY_3))
    session.flush()

    seen: list[str] = []
    before = None
    while True:
        page = archive.public_releases(session, now=utcnow(), limit=3, before=before)
        if not page:
            break
        seen += [release.slug for release in page]
        assert page[-1].published_at is not None
        before = (page[-1].published_at, page[-1].id)

    assert seen == ["k6", "k5", "k4", "k3", "k2", "k1", "k0"]
    assert archive.public_release(session, "k3", now=utcnow()) is not None
    assert archive.public_release(session, "hidden", now=utcnow()) is None
    assert archive.public_release(session, "k6", now=MAY_3) is None, "not yet published then"


def test_a_release_is_dated_the_same_day_on_its_page_and_in_its_email(
    app: Flask, client: FlaskClient
) -> None:
    """Published at 23:30 UTC on 2 May, 01:30 on 3 May in Oslo (TIMEZONE): both say 3 May, both
    as the language's CLDR locale writes a date (en_GB: "3 May 2024", not "May 3, 2024")."""
    late = datetime(2024, 5, 2, 23, 30, tzinfo=UTC)
    add_release(app, "late", translations={"en": translation("Late")}, published_at=late)
    with app.app_context(), get_database().session_scope() as session:
        release = session.query(Release).filter_by(slug="late").one()
        composer = Composer.from_extensions(app.extensions)
        emails = {
            language: composer.release_message(release, language, now=late)
            .for_recipient("r@mail.example", "uid")
            .decode()
            for language in ("nb", "en")
        }
    assert "3 May 2024" in client.get("/releases/late?lang=en").text
    assert "3 May 2024" in emails["en"]
    assert "3. mai 2024" in client.get("/releases/late?lang=nb").text
    assert "3. mai 2024" in emails["nb"]
