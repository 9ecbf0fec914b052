"""Dependency aliases for routes that remember or forget contacts."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.contacts.crypto import ContactCipher
from app.contacts.service import ContactService
from app.deps import SessionDep


async def _contacts(request: Request, db: SessionDep) -> ContactService:
    cipher: ContactCipher = request.app.state.contact_cipher
    return ContactService(db, cipher)


ContactsDep = Annotated[ContactService, Depends(_contacts)]
"""Contacts on the request's unit of work (the route commits)."""
