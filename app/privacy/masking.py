"""A log filter that masks anything shaped like a phone number, including in tracebacks."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

MASK = "[phone]"
_PATTERNS = (
    # +51 987 654 321, %2B51987654321 (URL-encoded), with or without separators.
    re.compile(r"(?:\+|%2[Bb])\d(?:[ \-.()]{0,2}\d){6,14}"),
    # Bare digit runs long enough to be a number, not inside ids, dates or times.
    re.compile(r"(?<![\w.:\-/])\d{8,15}(?![\w.:\-])"),
)
# What a caller writes or keys in: any run of seven or more digits, whatever separates them, may be a number.
_DIGIT_RUN = re.compile(r"(?:\+|%2[Bb]|\()?\d(?:[ \-.()/]{0,2}\d){6,}")
LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "rimay", "sqlalchemy", "alembic")


def mask_phone_numbers(text: str) -> str:
    """Replace every phone-number-shaped run in a text."""
    for pattern in _PATTERNS:
        text = pattern.sub(MASK, text)
    return text


def mask_caller_text(text: str) -> str:
    """Mask a caller's own words or key presses before they are stored: stricter than the log filter."""
    return _DIGIT_RUN.sub(MASK, mask_phone_numbers(text))


def _masked_args(args: Any) -> Any:
    """Arguments with every value rendered and masked, keeping their tuple or mapping shape."""
    if isinstance(args, dict):
        return {key: mask_phone_numbers(str(value)) for key, value in args.items()}
    if isinstance(args, tuple):
        return tuple(mask_phone_numbers(str(value)) for value in args)
    return args


def _mask(value: Any) -> Any:
    """Mask strings, leave other values alone."""
    return mask_phone_numbers(value) if isinstance(value, str) else value


class PhoneMaskingFilter(logging.Filter):
    """Masks the message, its arguments, the traceback and the stack of each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            # Uvicorn's access formatter unpacks these arguments, so they must stay a tuple.
            record.args = tuple(_mask(arg) for arg in record.args)
        else:
            try:
                # Arguments may be any object whose str() holds a number; mask the rendered message.
                record.msg = mask_phone_numbers(record.getMessage())
                record.args = None
            except (TypeError, ValueError):
                # A broken log call: leave logging to report it (it never raises), but masked.
                record.msg = mask_phone_numbers(str(record.msg))
                record.args = _masked_args(record.args)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_phone_numbers(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_phone_numbers(record.stack_info)
        return True


def install_masking(logger_names: Iterable[str] = LOGGERS) -> None:
    """Attach the filter to every handler of the given loggers (handler filters see propagated records)."""
    for name in logger_names:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, PhoneMaskingFilter) for f in handler.filters):
                handler.addFilter(PhoneMaskingFilter())
