"""The providers by the name in their webhook's URL (CONTRACT §9)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from service.domain.verp import VerpAddresses
from service.domain.webhooks import generic, mailgun, postmark, sendgrid, ses
from service.domain.webhooks.common import Post, Posted, WebhookSetup

Reader = Callable[[Post, WebhookSetup, VerpAddresses | None, datetime], Posted]

PROVIDERS: dict[str, Reader] = {
    "ses": ses.read,
    "postmark": postmark.read,
    "mailgun": mailgun.read,
    "sendgrid": sendgrid.read,
    "generic": generic.read,
}
