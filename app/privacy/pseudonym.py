"""Callers are known by HMAC-SHA256(pseudonym key, E.164 number); a plain hash could be reversed."""

from __future__ import annotations

import hashlib
import hmac
import re

from app.privacy.keys import KeyPurpose, derive_key

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_KEYPAD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "22233344455566677778889999")
WITHHELD = frozenset(
    "+" + word.translate(_KEYPAD)
    for word in ("ANONYMOUS", "RESTRICTED", "UNKNOWN", "BLOCKED", "UNAVAILABLE", "PRIVATE")
)
"""Twilio spells a withheld caller id on the keypad (ANONYMOUS -> +266696687); it is nobody's number."""


def normalize_e164(raw: str | None) -> str | None:
    """Return the E.164 number, or None for withheld, SIP or client identities."""
    if raw is None:
        return None
    candidate = re.sub(r"[\s().-]", "", raw.strip())
    if candidate in WITHHELD or not _E164.match(candidate):
        return None
    return candidate


class Pseudonymizer:
    """Turns phone numbers into stable pseudonyms that cannot be reversed without the key."""

    def __init__(self, master_secret: bytes) -> None:
        self._key = derive_key(master_secret, KeyPurpose.PSEUDONYM)

    def pseudonym(self, e164: str) -> str:
        """The caller's pseudonym (64 hex characters)."""
        return hmac.new(self._key, e164.encode(), hashlib.sha256).hexdigest()
