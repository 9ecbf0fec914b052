"""Typed staff errors; ``str(error)`` is a short text fit for an operator or a login page."""

from __future__ import annotations

from app.errors import RimayError


class InvalidStaffInput(RimayError):
    """An e-mail, role or password that cannot be accepted (the message says why)."""

    code = "invalid_staff_input"


class WeakPassword(InvalidStaffInput):
    """The password is shorter than the minimum."""

    code = "weak_password"


class DuplicateEmail(InvalidStaffInput):
    """An account with this e-mail already exists."""

    code = "duplicate_email"


class StaffNotFound(RimayError):
    """No account has this e-mail or id."""

    status_code = 404
    code = "staff_not_found"


class LoginFailed(RimayError):
    """Wrong e-mail, wrong password, inactive account or wrong code: one message for all of them."""

    status_code = 401
    code = "login_failed"


class SessionExpired(RimayError):
    """The session cookie names no live session (unknown, idle too long, or past its lifetime)."""

    status_code = 401
    code = "session_expired"
