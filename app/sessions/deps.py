"""The conversation service of a webhook, built in one dependency.

Built from ``app.state`` by plain functions rather than a tree of FastAPI dependencies: each
dependency FastAPI solves costs more than building the object, and every webhook needs all of them.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import State

from app.broadcasts.deps import news_for
from app.broadcasts.service import BroadcastService
from app.cases.deps import case_line_for
from app.recordings.service import RecordingService
from app.sessions.service import ConversationService
from app.settings import Settings
from app.stats.rollup import SessionStats


def conversations_for(
    state: State, db: AsyncSession, *, recordings: bool, news: BroadcastService | None = None
) -> ConversationService:
    """Sessions, with news, the two-way line and the statistics, on a unit of work.

    ``recordings``: whether spoken answers may arrive (voice), so a recording store is needed.
    ``news``: the route's own news service, if it has one already (else one is built).
    """
    settings: Settings = state.settings
    stats = SessionStats(db, ZoneInfo(settings.stats_time_zone))
    return ConversationService(
        db,
        state.flows,
        state.pseudonyms,
        news or news_for(state, db),
        RecordingService(db, settings) if recordings else None,
        case_line_for(state, db),
        stats,
    )
