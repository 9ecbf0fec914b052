"""Typed API key errors; ``code`` is stable for partners and ``str(error)`` is a short human text."""

from __future__ import annotations

from app.errors import RimayError


class InvalidApiKey(RimayError):
    """The request carries no API key, a malformed one, an unknown one or a revoked one."""

    status_code = 401
    code = "invalid_api_key"


class InsufficientScope(RimayError):
    """The key is valid but was not granted the scope this endpoint needs."""

    status_code = 403
    code = "insufficient_scope"

    def __init__(self, scope: str) -> None:
        super().__init__(f"this API key lacks the scope {scope!r}")
        self.scope = scope


class UnknownScope(RimayError):
    """A key was asked for with a scope this version does not know, or with none."""

    code = "unknown_scope"


class InvalidKeyName(RimayError):
    """A key's name (who it is for) is empty or too long."""

    code = "invalid_key_name"


class ApiKeyNotFound(RimayError):
    """No key has this prefix or id."""

    status_code = 404
    code = "api_key_not_found"
