"""TOTP second factor: seeds encrypted with AES-256-GCM, codes checked with one step of drift."""

from __future__ import annotations

import os
from datetime import datetime
from typing import Final

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.privacy.keys import KeyPurpose, derive_key

ISSUER: Final = "Rimay"
NONCE_BYTES: Final = 12
STEP_SECONDS: Final = 30


class TotpCipher:
    """Seals TOTP seeds bound to their user id, so a sealed seed cannot be moved to another account."""

    def __init__(self, master: bytes) -> None:
        self._aead = AESGCM(derive_key(master, KeyPurpose.TOTP))

    def seal(self, user_id: int, seed: str) -> bytes:
        """Nonce plus ciphertext of the seed."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, seed.encode(), _associated(user_id))

    def open(self, user_id: int, blob: bytes) -> str | None:
        """The seed, or None if the key, the user or the bytes do not match."""
        try:
            return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _associated(user_id)).decode()
        except (InvalidTag, ValueError):
            return None

    def __repr__(self) -> str:
        return "TotpCipher(<key hidden>)"


def new_seed() -> str:
    """A random base32 seed (160 bits)."""
    return pyotp.random_base32(32)


def provisioning_uri(seed: str, email: str) -> str:
    """The otpauth:// URI an authenticator app accepts."""
    return pyotp.TOTP(seed).provisioning_uri(name=email, issuer_name=ISSUER)


def matching_step(seed: str, code: str, at: datetime) -> int | None:
    """The time step whose code this is (now, or one step either side), else None."""
    code = code.strip().replace(" ", "")
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(seed)
    now = int(at.timestamp()) // STEP_SECONDS
    for step in (now, now - 1, now + 1):
        if pyotp.utils.strings_equal(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def _associated(user_id: int) -> bytes:
    return f"rimay/totp/v1/staff/{user_id}".encode()
