"""Dependency aliases for the two-way line on a request's unit of work."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import State

from app.cases.line import CaseLine, media_url_for
from app.cases.service import CaseService
from app.deps import SessionDep
from app.recordings.service import RecordingService
from app.settings import Settings
from app.throttle.service import ThrottleService


def cases_for(state: State, db: AsyncSession) -> CaseService:
    """Cases of the default flow on a unit of work."""
    settings: Settings = state.settings
    return CaseService(db, settings, state.contact_cipher, state.flows[settings.default_flow])


def case_line_for(state: State, db: AsyncSession) -> CaseLine:
    """The two-way line's host for a conversation on a unit of work."""
    settings: Settings = state.settings
    throttle = ThrottleService(db, state.throttle_keys)
    media_url = media_url_for(state.media_signer, settings.public_base_url)
    return CaseLine(db, cases_for(state, db), RecordingService(db, settings), throttle, media_url)


async def _cases(request: Request, db: SessionDep) -> CaseService:
    return cases_for(request.app.state, db)


async def _line(request: Request, db: SessionDep) -> CaseLine:
    return case_line_for(request.app.state, db)


CasesDep = Annotated[CaseService, Depends(_cases)]
"""Cases on the request's unit of work (the route commits)."""
CaseLineDep = Annotated[CaseLine, Depends(_line)]
"""The two-way line's host for a conversation on the request's unit of work."""
