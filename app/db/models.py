"""Every model, imported in one place so Alembic and tests see the whole schema."""

from app.apikeys.models import ApiKey
from app.audit.models import AuditEntry
from app.broadcasts.models import Broadcast, Subscription
from app.callers.models import Caller
from app.cases.models import Case, CaseAnswer, CaseMessage, CaseNote
from app.contacts.models import Contact
from app.db.base import Base
from app.floip.models import PublishedPackage, PublishedQuestion
from app.outbox.models import OutboxMessage
from app.recordings.models import Recording
from app.sessions.models import CallSession, Interaction, WebhookDelivery
from app.sms.models import InboundMessage
from app.staff.models import StaffSession, StaffUser
from app.stats.models import StatsCount, StatsMember
from app.survey.models import Answer, ConsentCount, SurveyRun
from app.throttle.models import ThrottleEvent

__all__ = [
    "Answer",
    "ApiKey",
    "AuditEntry",
    "Base",
    "Broadcast",
    "CallSession",
    "Caller",
    "Case",
    "CaseAnswer",
    "CaseMessage",
    "CaseNote",
    "ConsentCount",
    "Contact",
    "InboundMessage",
    "Interaction",
    "OutboxMessage",
    "PublishedPackage",
    "PublishedQuestion",
    "Recording",
    "StaffSession",
    "StaffUser",
    "StatsCount",
    "StatsMember",
    "Subscription",
    "SurveyRun",
    "ThrottleEvent",
    "WebhookDelivery",
]
