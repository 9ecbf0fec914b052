"""Dependency aliases with names that explain themselves.

Every dependency is ``async def``: a plain ``def`` would be run in a worker thread on each request,
a hop that costs more than reading ``app.state``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.audio.library import AudioLibrary
from app.flows.model import FlowDefinition
from app.privacy.pseudonym import Pseudonymizer
from app.settings import Settings


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _db(request: Request) -> AsyncIterator[AsyncSession]:
    """One unit of work per request: rolled back unless the route committed it."""
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
        finally:
            await session.rollback()


async def _flows(request: Request) -> dict[str, FlowDefinition]:
    flows: dict[str, FlowDefinition] = request.app.state.flows
    return flows


async def _audio(request: Request) -> AudioLibrary:
    audio: AudioLibrary = request.app.state.audio
    return audio


async def _pseudonyms(request: Request) -> Pseudonymizer:
    pseudonyms: Pseudonymizer = request.app.state.pseudonyms
    return pseudonyms


SettingsDep = Annotated[Settings, Depends(_settings)]
SessionDep = Annotated[AsyncSession, Depends(_db)]
FlowsDep = Annotated[dict[str, FlowDefinition], Depends(_flows)]
AudioDep = Annotated[AudioLibrary, Depends(_audio)]
PseudonymsDep = Annotated[Pseudonymizer, Depends(_pseudonyms)]
