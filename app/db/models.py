"""Every model, imported in one place so Alembic and tests see the whole schema."""

from app.broadcasts.models import Broadcast, Subscription
from app.callers.models import Caller
from app.contacts.models import Contact
from app.db.base import Base
from app.outbox.models import OutboxMessage
from app.sessions.models import CallSession, Interaction, WebhookDelivery
from app.sms.models import InboundMessage

__all__ = [
    "Base",
    "Broadcast",
    "CallSession",
    "Caller",
    "Contact",
    "InboundMessage",
    "Interaction",
    "OutboxMessage",
    "Subscription",
    "WebhookDelivery",
]
