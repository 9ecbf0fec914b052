"""Typed recording errors; ``str(error)`` never quotes the refused URL (it came from outside)."""

from __future__ import annotations

from app.errors import RimayError


class RecordingRefused(RimayError):
    """A recording callback names a sid or URL outside the allow-list; nothing was stored."""

    status_code = 400
    code = "recording_refused"
