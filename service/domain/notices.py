"""The emails a reader gets about their own subscription (not releases)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from service.domain import subscriptions
from service.domain.emails import EmailRenderer, compose
from service.domain.tokens import CONFIRM_TTL, TokenSigner
from service.models import Subscriber


@dataclass(frozen=True)
class SiteIdentity:
    base_url: str
    mail_from: str
    site_name: str
    list_id: str


@dataclass(frozen=True)
class NoticeContext:
    renderer: EmailRenderer
    signer: TokenSigner
    site: SiteIdentity


def unsubscribe_headers(site: SiteIdentity, unsubscribe_url: str) -> dict[str, str]:
    """RFC 2369 / RFC 8058 headers: one click in the mail client ends the subscription."""
    return {
        "List-Id": f"{site.site_name} <{site.list_id}>",
        "List-Unsubscribe": f"<{unsubscribe_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def _notice(
    ctx: NoticeContext,
    subscriber: Subscriber,
    template: str,
    *,
    now: datetime,
    headers: dict[str, str] | None = None,
    **links: Any,
) -> EmailMessage:
    rendered = ctx.renderer.render(
        f"subscriber/{template}", subscriber.language, site_name=ctx.site.site_name, **links
    )
    return compose(
        rendered,
        sender=ctx.site.mail_from,
        recipient=subscriber.email,
        date=now,
        headers={"Auto-Submitted": "auto-generated", **(headers or {})},
    )


def confirmation_email(
    ctx: NoticeContext, subscriber: Subscriber, *, now: datetime
) -> EmailMessage:
    token = subscriptions.confirm_token(ctx.signer, subscriber)
    return _notice(
        ctx,
        subscriber,
        "confirm",
        now=now,
        confirm_url=f"{ctx.site.base_url}/confirm/{token}",
        valid_days=CONFIRM_TTL.days,
    )


def already_subscribed_email(
    ctx: NoticeContext, subscriber: Subscriber, *, now: datetime
) -> EmailMessage:
    token = subscriptions.preferences_token(ctx.signer, subscriber)
    return _notice(
        ctx,
        subscriber,
        "already_subscribed",
        now=now,
        preferences_url=f"{ctx.site.base_url}/preferences/{token}",
    )


def welcome_email(ctx: NoticeContext, subscriber: Subscriber, *, now: datetime) -> EmailMessage:
    base = ctx.site.base_url
    unsubscribe_url = (
        f"{base}/unsubscribe/{subscriptions.unsubscribe_token(ctx.signer, subscriber)}"
    )
    preferences_url = (
        f"{base}/preferences/{subscriptions.preferences_token(ctx.signer, subscriber)}"
    )
    return _notice(
        ctx,
        subscriber,
        "welcome",
        now=now,
        headers=unsubscribe_headers(ctx.site, unsubscribe_url),
        unsubscribe_url=unsubscribe_url,
        preferences_url=preferences_url,
        press_room_url=f"{base}/",
    )
