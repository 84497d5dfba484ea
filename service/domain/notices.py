"""The emails a reader gets about their own subscription (not releases).

Each builder takes `message_id`: None gives the message an ID of its own; a retry of one
delivery passes the ID its first try had (mail_headers.new_msg_id with a key)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from service.domain import mail_headers, subscriptions
from service.domain.emails import EmailRenderer, OutgoingMail, compose
from service.domain.mail_site import MailSite
from service.domain.tokens import CONFIRM_TTL, TokenSigner
from service.models import Subscriber


@dataclass(frozen=True)
class NoticeContext:
    renderer: EmailRenderer
    signer: TokenSigner
    site: MailSite


def unsubscribe_headers(site: MailSite, unsubscribe_url: str) -> list[bytes]:
    """RFC 2919 List-Id and the RFC 2369 / RFC 8058 headers: one click in the mail client
    ends the subscription."""
    return [
        mail_headers.list_id("List-Id", site.site_name, site.list_id),
        mail_headers.uris("List-Unsubscribe", unsubscribe_url),
        mail_headers.structured("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ]


def _notice(
    ctx: NoticeContext,
    subscriber: Subscriber,
    template: str,
    *,
    now: datetime,
    message_id: str | None,
    headers: Sequence[bytes] = (),
    **links: Any,
) -> OutgoingMail:
    rendered = ctx.renderer.render(
        f"subscriber/{template}", subscriber.language, site_name=ctx.site.site_name, **links
    )
    mail = compose(
        rendered,
        sender=ctx.site.mail_from,
        recipient=subscriber.email,
        date=now,
        message_id=message_id,
        # RFC 3834 §5: an automatic reply must not answer this one.
        headers=[mail_headers.structured("Auto-Submitted", "auto-generated"), *headers],
    )
    return replace(mail, data=ctx.site.signed(mail.data))


def confirmation_email(
    ctx: NoticeContext, subscriber: Subscriber, *, now: datetime, message_id: str | None = None
) -> OutgoingMail:
    token = subscriptions.confirm_token(ctx.signer, subscriber)
    return _notice(
        ctx,
        subscriber,
        "confirm",
        now=now,
        message_id=message_id,
        confirm_url=f"{ctx.site.base_url}/confirm/{token}",
        valid_days=CONFIRM_TTL.days,
    )


def already_subscribed_email(
    ctx: NoticeContext, subscriber: Subscriber, *, now: datetime, message_id: str | None = None
) -> OutgoingMail:
    token = subscriptions.preferences_token(ctx.signer, subscriber)
    return _notice(
        ctx,
        subscriber,
        "already_subscribed",
        now=now,
        message_id=message_id,
        preferences_url=f"{ctx.site.base_url}/preferences/{token}",
    )


def welcome_email(
    ctx: NoticeContext, subscriber: Subscriber, *, now: datetime, message_id: str | None = None
) -> OutgoingMail:
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
        message_id=message_id,
        headers=unsubscribe_headers(ctx.site, unsubscribe_url),
        unsubscribe_url=unsubscribe_url,
        preferences_url=preferences_url,
        press_room_url=f"{base}/",
    )
