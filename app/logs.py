"""Logging set-up: one readable format, and phone numbers masked on every handler."""

from __future__ import annotations

import logging

from app.privacy.masking import install_masking

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Give the root logger a handler if nobody did, then mask phone numbers everywhere."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO; a redirected recording URL is a short-lived credential.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
    install_masking()
