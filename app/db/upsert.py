"""INSERT ... ON CONFLICT DO NOTHING for both supported databases."""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import Base, table_of


@cache
def ignoring_conflicts(model: type[Base], conflict_columns: tuple[str, ...], postgres: bool) -> Insert:
    """The statement, built once per table: building one costs more than running it on every webhook."""
    builder = postgresql.insert if postgres else sqlite.insert
    return builder(table_of(model)).on_conflict_do_nothing(index_elements=list(conflict_columns))


async def insert_ignoring_conflicts(
    db: AsyncSession, model: type[Base], values: dict[str, Any], conflict_columns: list[str]
) -> None:
    """Insert a row unless one with the same unique columns exists (two webhooks may race)."""
    postgres = db.get_bind().dialect.name == "postgresql"
    statement = ignoring_conflicts(model, tuple(conflict_columns), postgres)
    # On the unit of work's connection, past the ORM's bulk-insert path. Like every statement here it does
    # not flush pending objects first (the sessions are made with autoflush=False).
    connection = await db.connection()
    await connection.execute(statement, values)
