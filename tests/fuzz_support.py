"""What the fuzz tests share: the real app on its own loop, its error log, and the plaintext number check."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import func, select

from app.db.engine import make_sync_engine
from app.db.models import Answer, Base, Interaction
from app.main import create_app
from app.settings import Settings
from app.simulator import Screen, TwilioSigner, parse_twiml
from tests.conftest import AUTH_TOKEN, PUBLIC_BASE_URL

T = TypeVar("T")
CALLERS = ("+51964123987", "+51964555000")
"""A small pool, so callers come back: remembered languages, unfinished surveys, unheard answers."""


def needles(numbers: tuple[str, ...]) -> list[bytes]:
    """The ways a phone number could appear in plaintext (E.164, digits, national, URL-encoded)."""
    found = []
    for number in numbers:
        found += [number, number[1:], number[3:], "%2B" + number[1:]]
    return [needle.encode() for needle in found]


def plaintext_numbers(paths: list[Path], numbers: tuple[str, ...]) -> list[str]:
    """Which files hold one of the numbers in plaintext."""
    return [path.name for path in paths for needle in needles(numbers) if needle in path.read_bytes()]


class ErrorLog(logging.Handler):
    """Keeps the app's ERROR records: a webhook that failed was answered with an apology, which is a bug."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class Harness:
    """The real app on one database, driven from synchronous hypothesis rules on an event loop of its own."""

    def __init__(self, settings: Settings) -> None:
        self.errors = ErrorLog()
        logging.getLogger("app").addHandler(self.errors)
        self.runner = asyncio.Runner()
        self.app = create_app(settings)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=PUBLIC_BASE_URL)
        self.signer = TwilioSigner(AUTH_TOKEN, PUBLIC_BASE_URL)
        self.flows = self.app.state.flows
        self.db = make_sync_engine(settings.sqlalchemy_url)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run one request (or other coroutine) to completion on the harness's loop."""
        return self.runner.run(coroutine)

    def reset(self) -> None:
        """Empty every table, so each hypothesis example starts from a new hotline and replays exactly."""
        self.errors.messages.clear()
        with self.db.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())

    def counts(self) -> dict[str, int]:
        """Rows per table: a redelivery must not change any of them."""
        with self.db.connect() as connection:
            return {
                table.name: int(connection.execute(select(func.count()).select_from(table)).scalar_one())
                for table in Base.metadata.sorted_tables
            }

    def entered(self) -> set[str]:
        """Every node a session entered."""
        with self.db.connect() as connection:
            query = select(Interaction.node).where(Interaction.event == "entered").distinct()
            return set(connection.scalars(query))

    def doubled_answers(self) -> list[tuple[Any, ...]]:
        """(run, question, count) for every question answered more than once in one survey run."""
        query = (
            select(Answer.run_id, Answer.question_id, func.count())
            .group_by(Answer.run_id, Answer.question_id)
            .having(func.count() > 1)
        )
        with self.db.connect() as connection:
            return [tuple(row) for row in connection.execute(query)]

    def close(self) -> None:
        """Close the client, the app's engine, the loop and the checking engine."""
        self.run(self.client.aclose())
        self.run(self.app.state.engine.dispose())
        self.runner.close()
        self.db.dispose()
        logging.getLogger("app").removeHandler(self.errors)


def twiml_screen(response: httpx.Response, harness: Harness) -> Screen:
    """A webhook's answer must be a 2xx with TwiML that parses; the screen it shows."""
    assert 200 <= response.status_code < 300, f"{response.status_code}: {response.text[:300]}"
    assert response.headers["content-type"].startswith("application/xml")
    return parse_twiml(response.text, harness.flows)


@pytest.fixture
def harness(settings: Settings) -> Iterator[Harness]:
    """The app over the test's database, on a loop of its own (hypothesis rules are synchronous)."""
    made = Harness(settings)
    try:
        yield made
    finally:
        made.close()
