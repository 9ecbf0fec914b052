"""FLOIP identifiers from the master secret: stable package ids, per-package contact ids, signed cursors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.floip.errors import InvalidCursor

# Our own HKDF info labels, apart from app.privacy.keys, so no FLOIP value reuses another purpose's key.
PACKAGE_LABEL: Final = b"rimay/floip/package/v1"
CONTACT_LABEL: Final = b"rimay/floip/contact/v1/"
CURSOR_LABEL: Final = b"rimay/floip/cursor/v1"
ROW_BYTES: Final = 8
MAC_BYTES: Final = 12
CURSOR_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{27}")
"""20 bytes (row id and MAC) in unpadded base64url."""
CONTACT_ID_LENGTH: Final = 32


def derive(master: bytes, info: bytes) -> bytes:
    """A 32-byte sub-key, derived with HKDF-SHA256 as `app.privacy.keys.derive_key` does."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


def _mac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


class ContactIds:
    """One package's contact ids: keyed per package, so two packages' contacts cannot be joined."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def contact_id(self, caller_id: int | None, run_public_id: str) -> str:
        """The caller's id in this package; a run without a caller (deleted, withheld) stands alone."""
        subject = f"caller:{caller_id}" if caller_id is not None else f"run:{run_public_id}"
        return _mac(self._key, subject).hex()[:CONTACT_ID_LENGTH]


class FloipKeys:
    """Everything FLOIP derives from the master secret."""

    def __init__(self, master: bytes) -> None:
        self._master = master
        self._package = derive(master, PACKAGE_LABEL)
        self._cursor = derive(master, CURSOR_LABEL)

    def package_id(self, flow_id: str, survey: str) -> str:
        """A version 4 UUID (as the spec requires) that stays the same for a survey of this deployment."""
        # Flow ids and survey names are [a-z0-9_], so "/" cannot make two pairs collide.
        digest = _mac(self._package, f"{flow_id}/{survey}")
        return str(uuid.UUID(bytes=digest[:16], version=4))

    def contacts(self, package_id: str) -> ContactIds:
        """The contact ids of one package."""
        return ContactIds(derive(self._master, CONTACT_LABEL + package_id.encode()))

    def cursor(self, package_id: str, row_id: int) -> str:
        """An opaque cursor for the rows after ``row_id``, valid only for this package."""
        payload = row_id.to_bytes(ROW_BYTES, "big")
        mac = _mac(self._cursor, f"{package_id}:{row_id}")[:MAC_BYTES]
        return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode()

    def read_cursor(self, package_id: str, cursor: str) -> int:
        """The row id a cursor stands for; raise `InvalidCursor` if it was not issued for this package."""
        if not CURSOR_PATTERN.fullmatch(cursor):
            raise InvalidCursor("page[afterCursor] is not a cursor from a links.next of this package")
        raw = base64.urlsafe_b64decode(cursor + "=")  # the pattern admits only 27 base64url characters
        row_id = int.from_bytes(raw[:ROW_BYTES], "big")
        # Comparing whole cursors also refuses the spare low bits of the last character being changed.
        if not hmac.compare_digest(cursor, self.cursor(package_id, row_id)):
            raise InvalidCursor("page[afterCursor] is not a cursor from a links.next of this package")
        return row_id
