"""Provider webhooks: bounce and complaint events posted by a mail provider, each checked by
the provider's own signature scheme and turned into the policy's reports
(domain.bounce_policy.Report).

One module per provider reads a post: `read(post, setup, verp, now) -> Posted`, raising `Refused`
for a post the provider did not sign (or signed long ago), `Unreadable` for a body that is
not what the provider sends, and `NotSetUp` when the operator set no key for it.
"""

from __future__ import annotations

from service.domain.webhooks.common import (
    NotSetUp,
    Post,
    Posted,
    Refused,
    Replayed,
    Unreadable,
    WebhookSetup,
)
from service.domain.webhooks.providers import PROVIDERS

__all__ = [
    "PROVIDERS",
    "NotSetUp",
    "Post",
    "Posted",
    "Refused",
    "Replayed",
    "Unreadable",
    "WebhookSetup",
]
