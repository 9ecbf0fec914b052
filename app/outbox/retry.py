"""Which send errors are worth another try, and when: exponential backoff with full jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta

from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.response import Response

from app.outbox.twilio_http import TwilioTransportError
from app.settings import ConfigurationError


@dataclass(frozen=True)
class SendFailure:
    """A failed send: retry it later, or give up now; ``reason`` is short and holds no number.

    ``ambiguous``: Twilio may have taken the request despite the failure (see `classify`).
    """

    retryable: bool
    reason: str
    ambiguous: bool = False


def classify(error: Exception) -> SendFailure | None:
    """429, 5xx and transport errors are retryable; other 4xx are final; None for anything unexpected.

    A 5xx counts as ambiguous: Twilio's 500 may come after the message was stored, and a 502/504 from
    its edge means the API behind it may have acted; only a 4xx (429 included) says nothing was done.
    """
    if isinstance(error, TwilioTransportError):
        return SendFailure(True, str(error), error.ambiguous)
    if isinstance(error, ConfigurationError):
        return SendFailure(False, str(error))
    if isinstance(error, TwilioRestException | TwilioServiceException):
        status = int(error.status)
        detail = getattr(error, "msg", None) or getattr(error, "detail", None) or getattr(error, "title", "")
        reason = f"HTTP {status} code {error.code}: {detail}"
        return SendFailure(status == 429 or status >= 500, reason, status >= 500)
    if type(error) is TwilioException and len(error.args) == 2 and isinstance(error.args[1], Response):
        # A list's page that did not come (the SDK keeps the response, whose text may quote a number).
        status = int(error.args[1].status_code)
        return SendFailure(status == 429 or status >= 500, f"HTTP {status}: {error.args[0]}", status >= 500)
    return None


@dataclass(frozen=True)
class Backoff:
    """Full jitter (a random wait up to base x 2^(attempt-1), capped) spreads retries of a busy burst."""

    base: float = 30.0
    cap: float = 3600.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> timedelta:
        """How long to wait after the given (1-based) failed attempt."""
        ceiling = min(self.cap, self.base * 2 ** max(attempt - 1, 0))
        return timedelta(seconds=self.rng.uniform(0, ceiling))
