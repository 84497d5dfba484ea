"""SQLAlchemy models. Importing this package registers every table on ``Base.metadata``."""

from service.models.idempotency_key import IdempotencyKey
from service.models.publisher import ApiToken, DeskSession, Publisher
from service.models.release import Delivery, DeliveryStatus, Release, ReleaseStatus
from service.models.subscriber import (
    ConsentSource,
    OwedNotice,
    Subscriber,
    SubscriberStatus,
    SubscriberTopic,
)
from service.models.subscription_event import SubscriptionEvent, SubscriptionEventKind
from service.models.suppression import Suppression, SuppressionReason, address_hash

__all__ = [
    "ApiToken",
    "ConsentSource",
    "Delivery",
    "DeliveryStatus",
    "DeskSession",
    "IdempotencyKey",
    "OwedNotice",
    "Publisher",
    "Release",
    "ReleaseStatus",
    "Subscriber",
    "SubscriberStatus",
    "SubscriberTopic",
    "SubscriptionEvent",
    "SubscriptionEventKind",
    "Suppression",
    "SuppressionReason",
    "address_hash",
]
