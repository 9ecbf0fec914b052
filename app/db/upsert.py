"""INSERT ... ON CONFLICT DO NOTHING for both supported databases."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import Base


async def insert_ignoring_conflicts(
    db: AsyncSession, model: type[Base], values: dict[str, Any], conflict_columns: list[str]
) -> None:
    """Insert a row unless one with the same unique columns exists (two webhooks may race)."""
    dialect = db.get_bind().dialect.name
    builder = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = builder(model).values(**values).on_conflict_do_nothing(index_elements=conflict_columns)
    await db.execute(statement)
