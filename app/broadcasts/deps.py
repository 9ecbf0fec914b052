"""Dependency alias for the news service on a request's unit of work."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.broadcasts.service import BroadcastService
from app.contacts.deps import ContactsDep
from app.deps import SessionDep, SettingsDep
from app.outbox.service import Outbox


async def _news(db: SessionDep, settings: SettingsDep, contacts: ContactsDep) -> BroadcastService:
    return BroadcastService(db, contacts, Outbox(db, settings))


NewsDep = Annotated[BroadcastService, Depends(_news)]
"""News subscriptions and broadcasts; what it queues commits with the route's change."""
