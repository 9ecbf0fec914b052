"""Migrations on SQLite and PostgreSQL, SQLite pragmas, and the models matching the migrations."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from app.db.engine import async_url, make_async_engine, make_sync_engine, sync_url
from app.db.migrate import pending, upgrade
from app.db.models import Base


def test_migrations_reach_head_and_match_the_models(database_url: str) -> None:
    """The migrated schema is exactly what the models describe, on both databases."""
    assert not pending(database_url)
    engine = make_sync_engine(database_url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            tables = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert diff == []
    assert {"callers", "sessions", "interactions", "webhook_deliveries"} <= tables


def test_downgrade_and_upgrade_again(database_url: str) -> None:
    """Every migration can be reverted and re-applied."""
    from alembic import command

    from app.db.migrate import alembic_config

    command.downgrade(alembic_config(database_url), "base")
    assert pending(database_url)
    upgrade(database_url)
    assert not pending(database_url)


def test_fresh_sqlite_file_is_created_in_a_new_directory(tmp_path: Path) -> None:
    """`rimay migrate` works on a fresh machine where the data dir does not exist yet."""
    url = f"sqlite:///{tmp_path / 'new' / 'dir' / 'rimay.sqlite3'}"
    assert pending(url)
    upgrade(url)
    assert not pending(url)


async def test_sqlite_runs_in_wal_mode_with_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    """Concurrent requests are safe on the embedded default."""
    engine = make_async_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    try:
        async with engine.connect() as connection:
            journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar_one()
            busy = (await connection.execute(text("PRAGMA busy_timeout"))).scalar_one()
            foreign = (await connection.execute(text("PRAGMA foreign_keys"))).scalar_one()
    finally:
        await engine.dispose()
    assert (journal, busy, foreign) == ("wal", 5000, 1)


def test_database_urls_get_the_right_drivers() -> None:
    """Plain URLs from operators are mapped to the async and sync drivers."""
    assert async_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    assert sync_url("sqlite+aiosqlite:///x.db").drivername == "sqlite"
    assert async_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert async_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert sync_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    with pytest.raises(ValueError, match="unsupported database"):
        async_url("mysql://u@h/db")
