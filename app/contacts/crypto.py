"""AES-256-GCM for reply contacts, with the caller id as associated data so a ciphertext cannot move."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.errors import RimayError

KEY_INFO = b"rimay/contact/v1"
KEY_BYTES = 32
NONCE_BYTES = 12


class ContactUnreadable(RimayError):
    """A stored contact does not decrypt: another key, another caller's row, or tampering."""

    status_code = 500
    code = "contact_unreadable"


def derive_contact_key(secret: bytes) -> bytes:
    """The AES-256 key for contacts, derived with HKDF-SHA256 from RIMAY_CONTACT_KEY."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=KEY_INFO).derive(secret)


class ContactCipher:
    """Encrypts and decrypts phone numbers; each encryption uses a fresh random nonce."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(
                f"a contact key is {KEY_BYTES} bytes (AES-256); derive it with derive_contact_key"
            )
        self._aead = AESGCM(key)

    @classmethod
    def from_secret(cls, secret: bytes) -> ContactCipher:
        """A cipher keyed from the contact secret (settings.contact_secret)."""
        return cls(derive_contact_key(secret))

    def encrypt(self, caller_id: int, e164: str) -> bytes:
        """Nonce plus ciphertext of the number, bound to this caller."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, e164.encode(), _associated(caller_id))

    def decrypt(self, caller_id: int, blob: bytes) -> str:
        """The number, or ContactUnreadable if the key, the caller or the bytes do not match."""
        nonce, sealed = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, sealed, _associated(caller_id)).decode()
        except (InvalidTag, ValueError) as error:
            # Say which caller's row, never anything about the bytes.
            raise ContactUnreadable(f"contact of caller {caller_id} cannot be decrypted") from error

    def __repr__(self) -> str:
        return "ContactCipher(<key hidden>)"


def _associated(caller_id: int) -> bytes:
    return f"rimay/contact/v1/caller/{caller_id}".encode()
