"""Every model, imported in one place so Alembic and tests see the whole schema."""

from app.callers.models import Caller
from app.db.base import Base
from app.sessions.models import CallSession, Interaction, WebhookDelivery
from app.sms.models import InboundMessage

__all__ = ["Base", "CallSession", "Caller", "InboundMessage", "Interaction", "WebhookDelivery"]
