"""Typed business errors; one handler turns each into the right response (TwiML on Twilio routes)."""

from __future__ import annotations


class RimayError(Exception):
    """Base of every expected error; ``code`` is stable for API clients."""

    status_code = 400
    code = "error"


class InvalidWebhook(RimayError):
    """A webhook lacks a parameter Twilio always sends, or has a malformed one."""

    code = "invalid_webhook"


class SessionNotFound(RimayError):
    """An action URL names a session that does not exist or belongs to another call."""

    status_code = 404
    code = "session_not_found"


class CallNotFound(RimayError):
    """A status callback names a call this service never answered."""

    status_code = 404
    code = "call_not_found"
