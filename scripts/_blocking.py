"""An AsyncSession look-alike over a blocking Session, for filling a benchmark's database quickly."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session


class BlockingSession:
    """What SessionStats and CaseStats use of an AsyncSession, over a blocking Session.

    The rollup code and its statements are the real ones; only aiosqlite's thread hop per statement is
    skipped, which would make the 1M fill take most of an hour (the fill is not what is measured).
    """

    def __init__(self, session: Session) -> None:
        self.sync_session = session

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        """Run a statement."""
        return self.sync_session.execute(statement, parameters)

    async def scalar(self, statement: Any) -> Any:
        """Run a statement for one value."""
        return self.sync_session.scalar(statement)

    def get_bind(self) -> Any:
        """The engine (the rollups pick the upsert dialect from it)."""
        return self.sync_session.get_bind()

    async def get(self, entity: Any, ident: Any) -> Any:
        """A row by primary key (from the identity map when loaded)."""
        return self.sync_session.get(entity, ident)

    async def flush(self) -> None:
        """Flush pending ORM changes."""
        self.sync_session.flush()

    async def connection(self) -> BlockingConnection:
        """The transaction's connection (the rollups run some statements on it directly)."""
        return BlockingConnection(self.sync_session.connection())


class BlockingConnection:
    """What the rollups use of an AsyncConnection, over a blocking Connection."""

    def __init__(self, connection: Connection) -> None:
        self.sync_connection = connection
        self.dialect = connection.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        """Run a statement."""
        return self.sync_connection.execute(statement, parameters)
