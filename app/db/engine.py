"""Database engines: SQLite (WAL, busy timeout, foreign keys) by default, PostgreSQL in production."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 5000
POSTGRES_CONNECT_ARGS: dict[str, Any] = {
    # Without these a dead or firewalled server holds a request for the OS's TCP timeouts (minutes).
    "connect_timeout": 3,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


def async_url(url: str) -> URL:
    """The URL with the async driver for the app (aiosqlite or psycopg)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if parsed.get_backend_name() in {"postgresql", "postgres"}:
        return parsed.set(drivername="postgresql+psycopg")
    raise ValueError(f"unsupported database {parsed.get_backend_name()!r}: use sqlite or postgresql")


def sync_url(url: str) -> URL:
    """The URL with the blocking driver for migrations and tools (sqlite3 or psycopg)."""
    parsed = async_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite")
    return parsed


def is_sqlite(url: str | URL) -> bool:
    """True for the embedded default."""
    return make_url(url).get_backend_name() == "sqlite"


def make_async_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An engine for the web app and the worker."""
    target = async_url(url)
    _ensure_sqlite_dir(target)
    engine = create_async_engine(target, **_with_timeouts(target, kwargs))
    if is_sqlite(target):
        _configure_sqlite(engine.sync_engine)
    return engine


def make_sync_engine(url: str, **kwargs: Any) -> Engine:
    """A blocking engine for migrations and command-line tools."""
    target = sync_url(url)
    _ensure_sqlite_dir(target)
    engine = create_engine(target, **_with_timeouts(target, kwargs))
    if is_sqlite(target):
        _configure_sqlite(engine)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit (we commit before rendering TwiML)."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def _with_timeouts(url: URL, kwargs: dict[str, Any]) -> dict[str, Any]:
    """PostgreSQL connections give up on a dead server in seconds; the URL's and caller's own settings win."""
    if is_sqlite(url):
        return kwargs
    defaults = {key: value for key, value in POSTGRES_CONNECT_ARGS.items() if key not in url.query}
    return {**kwargs, "connect_args": {**defaults, **kwargs.get("connect_args", {})}}


def _ensure_sqlite_dir(url: URL) -> None:
    if is_sqlite(url) and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # IMMEDIATE takes the write lock up front, so two webhooks wait on busy_timeout instead of
        # failing with "database is locked" when a read transaction later tries to write.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
