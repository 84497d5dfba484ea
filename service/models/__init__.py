"""SQLAlchemy models. Importing this package registers every table on ``Base.metadata``."""

from service.models.subscriber import ConsentSource, Subscriber, SubscriberStatus, SubscriberTopic
from service.models.suppression import Suppression, SuppressionReason, address_hash

__all__ = [
    "ConsentSource",
    "Subscriber",
    "SubscriberStatus",
    "SubscriberTopic",
    "Suppression",
    "SuppressionReason",
    "address_hash",
]
