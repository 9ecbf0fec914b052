"""Turn a claimed row and a decrypted number into one Twilio REST call; returns Twilio's sid."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from app.outbox.models import MessageKind
from app.outbox.repository import Job
from app.settings import ConfigurationError, Settings

SMS_STATUS_PATH = "/twilio/sms/status"
VOICE_PATH = "/twilio/voice"
VOICE_STATUS_PATH = "/twilio/voice/status"
LOOKUP_PAGE = 20
"""How many of the number's newest messages or calls a lookup reads: one page, one request."""
CLOCK_SKEW = timedelta(seconds=60)
"""Twilio's clock (second precision) may trail ours; a lookup reaches back this far before the attempt."""


OUTBOX_ID = re.compile(r"^[1-9]\d{0,17}$")


def naming_row(url: str, message_id: int) -> str:
    """A webhook URL Twilio is given for a row (``?outbox=ID``, signed with the rest of the URL): the row id
    lets a report or a call-back's webhook that arrives before the worker recorded the sid find its row."""
    return f"{url}?outbox={message_id}"


def named_row(values: list[str]) -> int | None:
    """The row a webhook's URL names (its ``outbox`` query values): None when it names none.

    Raises ValueError for a malformed or repeated id (only a forged or mangled URL has one).
    """
    if not values:
        return None
    if len(values) != 1 or OUTBOX_ID.match(values[0]) is None:
        raise ValueError("malformed outbox id")
    return int(values[0])


def _same_text(sent: str | None, body: str | None) -> bool:
    """Twilio may reflow whitespace, and trial accounts prefix a notice; the row's text must end it."""
    if not sent or not body:
        return False
    return " ".join(sent.split()).endswith(" ".join(body.split()))


def _since(record: Any, floor: datetime) -> bool:
    created = getattr(record, "date_created", None)
    outbound = str(getattr(record, "direction", "") or "").startswith("outbound")
    return outbound and isinstance(created, datetime) and created >= floor


class TwilioSender:
    """Sends SMS from the hotline's number (or Messaging Service) and places call-backs from its number."""

    def __init__(self, client: Any, settings: Settings) -> None:
        if not settings.twilio_number and not settings.twilio_messaging_service_sid:
            raise ConfigurationError(
                "sending needs a sender: set RIMAY_TWILIO_NUMBER (the hotline's number, E.164) "
                "or RIMAY_TWILIO_MESSAGING_SERVICE_SID"
            )
        self.client = client
        self.settings = settings

    async def send(self, job: Job, number: str) -> str:
        """Hand the message or call to Twilio; raises the SDK's error or TwilioTransportError."""
        base = self.settings.public_base_url
        if job.kind == MessageKind.SMS:
            sender: dict[str, str] = {}
            if self.settings.twilio_number:
                sender["from_"] = self.settings.twilio_number
            if self.settings.twilio_messaging_service_sid:
                sender["messaging_service_sid"] = self.settings.twilio_messaging_service_sid
            message = await self.client.messages.create_async(
                to=number, body=job.body, status_callback=naming_row(base + SMS_STATUS_PATH, job.id), **sender
            )
            return str(message.sid)
        call = await self.client.calls.create_async(
            to=number,
            from_=self._caller_id(),
            # Both name the row: if the worker never hears Twilio's answer, the call's own webhooks record it.
            url=naming_row(base + VOICE_PATH, job.id),
            status_callback=naming_row(base + VOICE_STATUS_PATH, job.id),
        )
        return str(call.sid)

    async def find(self, job: Job, number: str, since: datetime) -> list[str]:
        """Sids of outbound messages (same text) or calls to ``number`` made since ``since``, oldest first.

        Twilio takes no idempotency key, so this is how an attempt whose answer was lost is settled:
        one page of the number's newest records, matched here. Raises like `send` if Twilio fails.
        """
        floor = since - CLOCK_SKEW
        if job.kind == MessageKind.SMS:
            sender = {"from_": self.settings.twilio_number} if self.settings.twilio_number else {}
            records = await self.client.messages.list_async(
                to=number, limit=LOOKUP_PAGE, page_size=LOOKUP_PAGE, **sender
            )
            found = [r for r in records if _since(r, floor) and _same_text(r.body, job.body)]
        else:
            records = await self.client.calls.list_async(
                to=number, from_=self._caller_id(), limit=LOOKUP_PAGE, page_size=LOOKUP_PAGE
            )
            found = [r for r in records if _since(r, floor)]
        return [str(r.sid) for r in sorted(found, key=lambda r: r.date_created)]

    def _caller_id(self) -> str:
        if not self.settings.twilio_number:
            raise ConfigurationError("call-backs need RIMAY_TWILIO_NUMBER (the hotline's number, E.164)")
        return self.settings.twilio_number
