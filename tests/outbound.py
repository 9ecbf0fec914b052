"""What tests of outbound messaging share: Twilio's test account, a movable clock, sessions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.base import utcnow
from app.db.engine import make_async_engine, make_sessionmaker
from app.settings import Settings

ACCOUNT_SID = "AC" + "1" * 32
HOTLINE = "+15005550006"
NUMBER = "+51964555123"
NEEDLES = (NUMBER, NUMBER[1:], NUMBER[3:], "%2B" + NUMBER[1:])
API = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}"
MESSAGES_URL = f"{API}/Messages.json"
CALLS_URL = f"{API}/Calls.json"
Sessions = async_sessionmaker[AsyncSession]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move time forward."""
        self.now += timedelta(**delta)


def outbound_settings(settings: Settings, **changes: object) -> Settings:
    """Test settings plus what sending needs: an account, a hotline number."""
    return settings.model_copy(
        update={"twilio_account_sid": ACCOUNT_SID, "twilio_number": HOTLINE, **changes}
    )


@asynccontextmanager
async def sessions_for(url: str) -> AsyncIterator[Sessions]:
    """A sessionmaker on its own engine, disposed afterwards."""
    engine = make_async_engine(url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()
