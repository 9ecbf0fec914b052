"""argon2id password hashes, upgraded in place when the hashing parameters change."""

from __future__ import annotations

from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.staff.errors import WeakPassword

MIN_PASSWORD_LENGTH: Final = 12
MAX_PASSWORD_LENGTH: Final = 256


def check_strength(password: str) -> str:
    """The password if it is long enough, else WeakPassword saying the minimum."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")
    return password


class Passwords:
    """Hash and verify; `verify` also says when a stored hash should be replaced."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()  # argon2id with the library's current parameters
        # Verified against when the e-mail is unknown, so both cases cost the same time.
        self._dummy = self.hasher.hash("rimay-no-such-account")

    def hash(self, password: str) -> str:
        """A new argon2id hash."""
        return self.hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> tuple[bool, str | None]:
        """(matches, replacement hash if the stored one uses outdated parameters)."""
        try:
            self.hasher.verify(stored or self._dummy, password)
        except (VerificationError, InvalidHashError):
            return False, None
        if stored is None:
            return False, None
        return True, self.hash(password) if self.hasher.check_needs_rehash(stored) else None
