"""The public archive on the web: one page per published release, and the Atom feed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from flask import Blueprint, Response, render_template
from flask_babel import get_locale

from service import locales
from service.app_state import session_scope, settings
from service.db import utcnow
from service.domain import archive
from service.domain.errors import N_, NotFound
from service.locales import LANGUAGES, PRIMARY_LANGUAGE
from service.models import Release
from service.web.l10n import gettext as _

bp = Blueprint("archive", __name__)

FEED_SIZE = 50
ATOM_CONTENT_TYPE = "application/atom+xml; charset=utf-8"


# Characters XML 1.0 forbids even when escaped: one of them would make the whole feed unreadable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def page_language() -> str:
    language = str(get_locale() or PRIMARY_LANGUAGE)
    return language if language in LANGUAGES else PRIMARY_LANGUAGE


@bp.app_context_processor
def archive_helpers() -> dict[str, object]:
    return {
        "release_version": lambda release: archive.readable_version(release, page_language()),
        "machine_time": _timestamp,
        # A language's name in the reader's language ("på engelsk", "in Norwegian").
        "language_name": lambda code: _(locales.name(code)),
        "endonym": locales.endonym,
    }


@bp.get("/releases/<slug>")
def release(slug: str) -> str:
    language = page_language()
    if "\x00" in slug:  # no slug holds one, and PostgreSQL's text cannot
        raise NotFound(N_("There is no published release at this address."))
    with session_scope() as session:
        found = archive.public_release(session, slug, now=utcnow())
        if found is None:
            raise NotFound(N_("There is no published release at this address."))
        version = archive.readable_version(found, language)
        other_languages = [
            code for code in found.languages if code != version.language and code in LANGUAGES
        ]
        return render_template(
            "public/release.html",
            release=found,
            version=version,
            other_languages=other_languages,
        )


@dataclass(frozen=True)
class FeedEntry:
    id: str
    url: str
    language: str
    title: str
    summary: str
    content: str
    published: str
    updated: str


@bp.get("/feed.atom")
def feed() -> Response:
    base = settings().public_base_url
    language = page_language()
    with session_scope() as session:
        releases = archive.public_releases(session, now=utcnow(), limit=FEED_SIZE)
        entries = [_entry(base, release, language) for release in releases]
    newest = releases[0].published_at if releases else None
    self_url = f"{base}/feed.atom?lang={language}"
    body = render_template(
        "public/feed.xml",
        feed_id=self_url,
        self_url=self_url,
        home_url=f"{base}/?lang={language}",
        base_url=f"{base}/",
        language=language,
        title=_xml_text(settings().site_name),
        updated=_timestamp(newest or utcnow()),
        entries=entries,
    )
    return Response(body, content_type=ATOM_CONTENT_TYPE)


def _entry(base: str, release: Release, language: str) -> FeedEntry:
    version = archive.readable_version(release, language)
    published = _timestamp(release.published_at or release.created_at)
    return FeedEntry(
        id=_entry_id(base, release),
        url=f"{base}/releases/{quote(release.slug, safe='')}",
        language=version.language,
        title=_xml_text(version.title),
        summary=_xml_text(version.summary),
        content=_xml_text(version.body_html),
        published=published,
        # The row's updated_at also moves while the release is being sent, so it would tell
        # feed readers the text changed when it did not: publication time is the honest value.
        updated=published,
    )


def _entry_id(base: str, release: Release) -> str:
    """A tag: URI (RFC 4151) from the row's id, so that the entry keeps its identity when its
    title or slug is edited."""
    host = urlsplit(base).hostname or "localhost"
    return f"tag:{host},{release.created_at:%Y-%m-%d}:release:{release.id}"


def _timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC to the second: what Atom and HTML's <time datetime> both accept."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("", text)
