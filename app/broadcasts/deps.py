"""Dependency alias for the news service on a request's unit of work."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import State

from app.broadcasts.service import BroadcastService
from app.contacts.deps import contacts_for
from app.deps import SessionDep
from app.outbox.service import Outbox


def news_for(state: State, db: AsyncSession) -> BroadcastService:
    """News subscriptions and broadcasts on a unit of work."""
    return BroadcastService(db, contacts_for(state, db), Outbox(db, state.settings))


async def _news(request: Request, db: SessionDep) -> BroadcastService:
    return news_for(request.app.state, db)


NewsDep = Annotated[BroadcastService, Depends(_news)]
"""News subscriptions and broadcasts; what it queues commits with the route's change."""
