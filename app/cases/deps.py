"""Dependency aliases for the two-way line on a request's unit of work."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.cases.line import CaseLine, media_url_for
from app.cases.service import CaseService
from app.deps import FlowsDep, SessionDep, SettingsDep
from app.recordings.service import RecordingService
from app.throttle.service import ThrottleService


async def _cases(request: Request, db: SessionDep, settings: SettingsDep, flows: FlowsDep) -> CaseService:
    cipher = request.app.state.contact_cipher
    return CaseService(db, settings, cipher, flows[settings.default_flow])


async def _line(request: Request, db: SessionDep, settings: SettingsDep, cases: CasesDep) -> CaseLine:
    throttle = ThrottleService(db, request.app.state.throttle_keys)
    media_url = media_url_for(request.app.state.media_signer, settings.public_base_url)
    return CaseLine(db, cases, RecordingService(db, settings), throttle, media_url)


CasesDep = Annotated[CaseService, Depends(_cases)]
"""Cases on the request's unit of work (the route commits)."""
CaseLineDep = Annotated[CaseLine, Depends(_line)]
"""The two-way line's host for a conversation on the request's unit of work."""
