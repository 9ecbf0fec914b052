"""Separate sub-keys derived from the master secret, so one purpose never reuses another's key."""

from __future__ import annotations

from enum import StrEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class KeyPurpose(StrEnum):
    """What a derived key is for; the value is the HKDF info label."""

    PSEUDONYM = "rimay/pseudonym/v1"
    SESSION = "rimay/session/v1"
    CSRF = "rimay/csrf/v1"
    TOTP = "rimay/totp/v1"
    THROTTLE = "rimay/throttle/v1"
    MEDIA = "rimay/media/v1"


def derive_key(master: bytes, purpose: KeyPurpose, length: int = 32) -> bytes:
    """Derive a sub-key with HKDF-SHA256."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose.value.encode()).derive(
        master
    )
