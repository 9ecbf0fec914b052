"""Callers are known by HMAC-SHA256(pseudonym key, E.164 number); a plain hash could be reversed."""

from __future__ import annotations

import hashlib
import hmac
import re

from app.privacy.keys import KeyPurpose, derive_key

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def normalize_e164(raw: str | None) -> str | None:
    """Return the E.164 number, or None for withheld, SIP or client identities."""
    if raw is None:
        return None
    candidate = re.sub(r"[\s().-]", "", raw.strip())
    return candidate if _E164.match(candidate) else None


class Pseudonymizer:
    """Turns phone numbers into stable pseudonyms that cannot be reversed without the key."""

    def __init__(self, master_secret: bytes) -> None:
        self._key = derive_key(master_secret, KeyPurpose.PSEUDONYM)

    def pseudonym(self, e164: str) -> str:
        """The caller's pseudonym (64 hex characters)."""
        return hmac.new(self._key, e164.encode(), hashlib.sha256).hexdigest()
