"""Dependency aliases for routes that remember or forget contacts."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import State

from app.contacts.crypto import ContactCipher
from app.contacts.service import ContactService
from app.deps import SessionDep


def contacts_for(state: State, db: AsyncSession) -> ContactService:
    """Contacts on a unit of work, with the app's cipher."""
    cipher: ContactCipher = state.contact_cipher
    return ContactService(db, cipher)


async def _contacts(request: Request, db: SessionDep) -> ContactService:
    return contacts_for(request.app.state, db)


ContactsDep = Annotated[ContactService, Depends(_contacts)]
"""Contacts on the request's unit of work (the route commits)."""
