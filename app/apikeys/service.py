"""Issue, list, revoke and check partner API keys; the service only flushes, the caller commits."""

from __future__ import annotations

import builtins
import hashlib
import hmac
import logging
import re
import secrets
import string
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from app.apikeys.errors import (
    ApiKeyNotFound,
    InsufficientScope,
    InvalidApiKey,
    InvalidKeyName,
    UnknownScope,
)
from app.apikeys.models import NAME_MAX_LENGTH, SCOPES, ApiKey
from app.apikeys.repository import ApiKeyRepository
from app.db.base import utcnow

log = logging.getLogger(__name__)

KEY_START: Final = "rimay_"
PREFIX_LENGTH: Final = 8
SECRET_BYTES: Final = 32
# Letters and digits only: the prefix reads well in listings, and the key splits at its first "_".
PREFIX_ALPHABET: Final = string.ascii_lowercase + string.digits
KEY_PATTERN: Final = re.compile(rf"{KEY_START}([a-z0-9]{{{PREFIX_LENGTH}}})_[A-Za-z0-9_-]{{43,200}}")
REFERENCE_PATTERN: Final = re.compile(r"[A-Za-z0-9]{1,16}")
TOUCH_INTERVAL: Final = timedelta(minutes=1)
"""`last_used_at` is written at most this often, so a busy partner does not cost a write per request."""

UNKNOWN_KEY: Final = "unknown or revoked API key"


def hash_key(key: str) -> str:
    """Hex SHA-256 of a whole key: what the database stores instead of the key."""
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key() -> tuple[str, str]:
    """A new key and its prefix: ``rimay_<8 letters or digits>_<43+ url-safe chars>``."""
    prefix = "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    return prefix, f"{KEY_START}{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"


class ApiKeyService:
    """API keys: plaintext exists only in the return value of `create`."""

    def __init__(self, db: AsyncSession, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock
        self.keys = ApiKeyRepository(db)

    async def create(self, name: str, scopes: Iterable[str]) -> tuple[ApiKey, str]:
        """Issue a key for a partner; the plaintext is returned once and never stored."""
        name = _check_name(name)
        granted = _check_scopes(scopes)
        prefix, key = generate_key()
        while await self.keys.by_prefix(prefix) is not None:  # one chance in 36**8 per existing key
            prefix, key = generate_key()
        api_key = ApiKey(
            name=name, prefix=prefix, key_hash=hash_key(key), scopes=granted, created_at=self.clock()
        )
        self.db.add(api_key)
        await self.db.flush()
        log.info("created API key %s (%s)", prefix, ", ".join(granted))
        return api_key, key

    async def list(self) -> builtins.list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        return await self.keys.all()

    async def revoke(self, prefix_or_id: str | int) -> ApiKey:
        """Revoke a key by prefix, id or the whole key; revoking it again changes nothing."""
        api_key = await self._find(prefix_or_id)
        if api_key.revoked_at is None:
            api_key.revoked_at = self.clock()
            await self.db.flush()
            log.info("revoked API key %s", api_key.prefix)
        return api_key

    async def authenticate(self, token: str, scope: str) -> ApiKey:
        """The live key this token is, if it has ``scope``; notes when it was last used."""
        match = KEY_PATTERN.fullmatch(token)
        if match is None:
            raise InvalidApiKey("malformed API key: expected rimay_<prefix>_<secret>")
        digest = hash_key(token)
        api_key = await self.keys.by_hash(digest)
        if api_key is None or not hmac.compare_digest(api_key.key_hash, digest):
            log.info("refused an unknown API key (prefix %s)", match.group(1))
            raise InvalidApiKey(UNKNOWN_KEY)
        if api_key.revoked:
            log.info("refused the revoked API key %s", api_key.prefix)
            raise InvalidApiKey(UNKNOWN_KEY)
        if scope not in api_key.scopes:
            log.info("API key %s lacks the scope %s", api_key.prefix, scope)
            raise InsufficientScope(scope)
        now = self.clock()
        if api_key.last_used_at is None or now - api_key.last_used_at >= TOUCH_INTERVAL:
            api_key.last_used_at = now
            await self.db.flush()
        return api_key

    async def _find(self, reference: str | int) -> ApiKey:
        text = str(reference).strip()
        match = KEY_PATTERN.fullmatch(text)
        candidate = match.group(1) if match else text
        found = None
        if REFERENCE_PATTERN.fullmatch(candidate):  # keeps odd input (NUL, huge ids) away from SQL
            found = await self.keys.by_prefix(candidate)
            if found is None and candidate.isdigit() and len(candidate) < 10:
                found = await self.keys.by_id(int(candidate))
        if found is None:
            raise ApiKeyNotFound(f"no API key with prefix or id {text[:40]!r}")
        return found


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > NAME_MAX_LENGTH:
        raise InvalidKeyName(f"give the key a name (who it is for) of 1 to {NAME_MAX_LENGTH} characters")
    return name


def _check_scopes(scopes: Iterable[str]) -> list[str]:
    granted = sorted(set(scopes))
    unknown = [scope for scope in granted if scope not in SCOPES]
    if unknown or not granted:
        problem = f"unknown scope {', '.join(unknown)}" if unknown else "no scope given"
        raise UnknownScope(f"{problem}; known scopes: {', '.join(SCOPES)}")
    return granted
