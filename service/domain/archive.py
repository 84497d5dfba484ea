"""The public archive: which releases a reader may see, newest first, and in which language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import nh3
from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from service.domain.content import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    ALLOWED_URL_SCHEMES,
    render_markdown,
)
from service.domain.releases import PUBLIC_STATES
from service.models import Release, ReleaseKind


def _is_public(now: datetime) -> ColumnElement[bool]:
    """Published (PUBLIC_STATES), at or before `now`, and under no embargo at `now`: draft,
    scheduled and cancelled releases are never shown, whatever their dates say; nor are
    digest runs. (Publishing is refused during an embargo; the check here holds for rows
    written by any other path, and for a backdated published_at.)"""
    return and_(
        Release.kind == ReleaseKind.RELEASE,
        Release.status.in_(PUBLIC_STATES),
        Release.published_at.is_not(None),
        Release.published_at <= now,
        or_(Release.embargo_until.is_(None), Release.embargo_until <= now),
    )


def public_releases(
    session: Session,
    *,
    now: datetime,
    limit: int,
    before: tuple[datetime, int] | None = None,
) -> list[Release]:
    """Public releases, newest first. `before` is the (published_at, id) of the last release
    of the previous page: the page starts right after it (keyset pagination)."""
    if limit < 1:
        return []
    query = select(Release).where(_is_public(now))
    if before is not None:
        published_at, release_id = before
        query = query.where(
            or_(
                Release.published_at < published_at,
                and_(Release.published_at == published_at, Release.id < release_id),
            )
        )
    query = query.order_by(Release.published_at.desc(), Release.id.desc()).limit(limit)
    return list(session.scalars(query))


def public_release(session: Session, slug: str, *, now: datetime) -> Release | None:
    """The release at this slug if a reader may see it, else None."""
    return session.scalar(select(Release).where(Release.slug == slug, _is_public(now)))


@dataclass(frozen=True)
class ReleaseVersion:
    """The text of a release as one reader sees it."""

    language: str
    title: str
    summary: str
    body_html: str
    # True when the reader's language has no version and the primary one stands in for it.
    is_fallback: bool


def readable_version(release: Release, language: str) -> ReleaseVersion:
    """The version in `language` when the release has one, else its primary version."""
    found: dict[str, Any] | None = release.version(language)
    shown = language
    if not found:
        found, shown = release.version(release.language) or {}, release.language
    body_html = found.get("body_html")
    if body_html is None:
        body_html = render_markdown(str(found.get("body") or ""))
    return ReleaseVersion(
        language=shown,
        title=str(found.get("title") or release.title),
        summary=str(found.get("summary") or ""),
        body_html=_sanitized(str(body_html)),
        is_fallback=shown != language,
    )


def _sanitized(html: str) -> str:
    """Bodies are sanitized when written; cleaning them again on the way out means a row
    written by any other path (an import, a hand-made fix) still cannot carry a script."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer",
    )
