"""Typed case errors; ``code`` is stable and ``str(error)`` is a short human text."""

from __future__ import annotations

from app.errors import RimayError


class CaseNotFound(RimayError):
    """No case has this id or code."""

    status_code = 404
    code = "case_not_found"


class CaseChanged(RimayError):
    """Someone else changed the case since the page was loaded; reload before acting."""

    status_code = 409
    code = "case_changed"


class CaseClosed(RimayError):
    """A closed case cannot be answered or changed (a caller's follow-up reopens it)."""

    status_code = 409
    code = "case_closed"


class InvalidAnswer(RimayError):
    """An answer, note or voice file that cannot be accepted: empty, too long, not audio, too large."""

    status_code = 422
    code = "invalid_answer"
