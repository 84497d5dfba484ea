"""SQLAlchemy models. Importing this package registers every table on ``Base.metadata``."""

from service.models.bounce_report import (
    BounceReport,
    IncomingReport,
    ReportDoor,
    ReportKind,
    ReportOutcome,
)
from service.models.consent_record import (
    ConsentAct,
    ConsentChannel,
    ConsentRecord,
    ConsentText,
)
from service.models.idempotency_key import IdempotencyKey
from service.models.publisher import ApiToken, DeskSession, Publisher
from service.models.release import Delivery, DeliveryStatus, Release, ReleaseKind, ReleaseStatus
from service.models.subscriber import (
    ConsentSource,
    Frequency,
    OwedNotice,
    Subscriber,
    SubscriberStatus,
    SubscriberTopic,
)
from service.models.subscription_event import SubscriptionEvent, SubscriptionEventKind
from service.models.suppression import (
    Suppression,
    SuppressionLift,
    SuppressionReason,
    address_hash,
)
from service.models.webhook_endpoint import WebhookEndpoint, WebhookEvent, WebhookEventStatus

__all__ = [
    "ApiToken",
    "BounceReport",
    "ConsentAct",
    "ConsentChannel",
    "ConsentRecord",
    "ConsentSource",
    "ConsentText",
    "Delivery",
    "DeliveryStatus",
    "DeskSession",
    "Frequency",
    "IdempotencyKey",
    "IncomingReport",
    "OwedNotice",
    "Publisher",
    "Release",
    "ReleaseKind",
    "ReleaseStatus",
    "ReportDoor",
    "ReportKind",
    "ReportOutcome",
    "Subscriber",
    "SubscriberStatus",
    "SubscriberTopic",
    "SubscriptionEvent",
    "SubscriptionEventKind",
    "Suppression",
    "SuppressionLift",
    "SuppressionReason",
    "WebhookEndpoint",
    "WebhookEvent",
    "WebhookEventStatus",
    "address_hash",
]
