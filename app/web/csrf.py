"""CSRF tokens: an HMAC of the session id for signed-in forms, a signed double-submit cookie for login."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

from app.privacy.keys import KeyPurpose, derive_key

FIELD: Final = "csrf_token"
LOGIN_COOKIE: Final = "rimay_login_csrf"


class CsrfTokens:
    """Makes and checks tokens with a sub-key of the master secret."""

    def __init__(self, master: bytes) -> None:
        self._key = derive_key(master, KeyPurpose.CSRF)

    def for_session(self, session_id: str) -> str:
        """The token every form of this session carries."""
        return self._mac(f"session:{session_id}")

    def session_token_ok(self, session_id: str, token: str | None) -> bool:
        """True if ``token`` is this session's token."""
        return bool(token) and hmac.compare_digest(self.for_session(session_id), str(token))

    def new_login_token(self) -> str:
        """A random value with its signature: set as a cookie and repeated in the login form."""
        nonce = secrets.token_urlsafe(24)
        return f"{nonce}.{self._mac(f'login:{nonce}')}"

    def login_token_ok(self, cookie: str | None, field: str | None) -> bool:
        """True if the form repeats the cookie and the cookie was signed by us."""
        if not cookie or not field or not hmac.compare_digest(cookie, field):
            return False
        nonce, _, signature = cookie.partition(".")
        return bool(nonce) and hmac.compare_digest(self._mac(f"login:{nonce}"), signature)

    def _mac(self, message: str) -> str:
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "CsrfTokens(<key hidden>)"
