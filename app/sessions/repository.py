"""Every query about sessions, interactions and processed webhooks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import table_of
from app.sessions.models import CallSession, Interaction, WebhookDelivery

# On the Table, not the mapped class: the ORM's bulk path costs more than the insert (every step writes).
INSERT_INTERACTIONS = insert(table_of(Interaction))
INSERT_DELIVERY = insert(table_of(WebhookDelivery))
# Every webhook runs some of these: built once, with bound parameters, so SQLAlchemy neither rebuilds them
# nor recomputes their cache key on each request.
BY_PROVIDER_ID = select(CallSession).where(
    CallSession.channel == bindparam("channel"), CallSession.provider_id == bindparam("provider_id")
)
LOCK = select(CallSession).where(CallSession.id == bindparam("session_id")).with_for_update()
DELIVERY = select(WebhookDelivery.response).where(
    WebhookDelivery.session_id == bindparam("session_id"), WebhookDelivery.step == bindparam("step")
)
LATEST_ACTIVE = (
    select(CallSession)
    .where(
        CallSession.caller_id == bindparam("caller_id"),
        CallSession.channel == bindparam("channel"),
        CallSession.status == "active",
    )
    .order_by(CallSession.updated_at.desc())
    .limit(1)
    .with_for_update()
)


class SessionRepository:
    """Sessions with their interactions and stored webhook answers."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def by_provider_id(self, channel: str, provider_id: str) -> CallSession | None:
        """The session for a provider's call or conversation id."""
        return await self.db.scalar(BY_PROVIDER_ID, {"channel": channel, "provider_id": provider_id})

    async def lock(self, session_id: str) -> CallSession | None:
        """Load a session and lock its row so redeliveries of one step are handled one at a time."""
        return await self.db.scalar(LOCK, {"session_id": session_id})

    async def delivery(self, session_id: str, step: int) -> str | None:
        """The answer already given to a step, if any."""
        return await self.db.scalar(DELIVERY, {"session_id": session_id, "step": step})

    def add(self, session: CallSession) -> None:
        """Stage a new session."""
        self.db.add(session)

    async def add_interactions(self, rows: list[dict[str, Any]]) -> None:
        """Insert a step's interactions in one statement (they are never read back in the request)."""
        if rows:
            connection = await self.db.connection()
            await connection.execute(INSERT_INTERACTIONS, rows)

    async def latest_active(self, caller_id: int, channel: str) -> CallSession | None:
        """The caller's most recent active session on a channel, locked for this step."""
        return await self.db.scalar(LATEST_ACTIVE, {"caller_id": caller_id, "channel": channel})

    async def add_delivery(self, session_id: str, step: int, response: str) -> None:
        """Store the answer to a step now (one prebuilt insert, not a unit-of-work object); its primary key
        makes a second answer to the same step fail here with IntegrityError. The session row must exist:
        flush a new session first."""
        connection = await self.db.connection()
        await connection.execute(
            INSERT_DELIVERY, {"session_id": session_id, "step": step, "response": response}
        )
