"""Turn a claimed row and a decrypted number into one Twilio REST call; returns Twilio's sid."""

from __future__ import annotations

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


def status_callback(base: str, message_id: int) -> str:
    """The SMS status callback URL: the row id lets a report arriving before the sid find its row."""
    return f"{base}{SMS_STATUS_PATH}?outbox={message_id}"


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
                to=number, body=job.body, status_callback=status_callback(base, job.id), **sender
            )
            return str(message.sid)
        call = await self.client.calls.create_async(
            to=number,
            from_=self._caller_id(),
            url=base + VOICE_PATH,
            status_callback=base + VOICE_STATUS_PATH,
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
