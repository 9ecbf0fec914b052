"""Every query about API keys."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.apikeys.models import ApiKey


class ApiKeyRepository:
    """API keys by hash, prefix or id."""

    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def by_hash(self, key_hash: str) -> ApiKey | None:
        """The key whose SHA-256 this is."""
        return await self.db.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))

    async def by_prefix(self, prefix: str) -> ApiKey | None:
        """The key with this public prefix."""
        return await self.db.scalar(select(ApiKey).where(ApiKey.prefix == prefix))

    async def by_id(self, key_id: int) -> ApiKey | None:
        """The key with this id."""
        return await self.db.get(ApiKey, key_id)

    async def all(self) -> list[ApiKey]:
        """Every key, oldest first."""
        return list(await self.db.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))
