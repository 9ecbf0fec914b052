"""Every model, imported in one place so Alembic and tests see the whole schema."""

from app.apikeys.models import ApiKey
from app.broadcasts.models import Broadcast, Subscription
from app.callers.models import Caller
from app.contacts.models import Contact
from app.db.base import Base
from app.outbox.models import OutboxMessage
from app.recordings.models import Recording
from app.sessions.models import CallSession, Interaction, WebhookDelivery
from app.sms.models import InboundMessage
from app.survey.models import Answer, ConsentCount, SurveyRun

__all__ = [
    "Answer",
    "ApiKey",
    "Base",
    "Broadcast",
    "CallSession",
    "Caller",
    "ConsentCount",
    "Contact",
    "InboundMessage",
    "Interaction",
    "OutboxMessage",
    "Recording",
    "Subscription",
    "SurveyRun",
    "WebhookDelivery",
]
