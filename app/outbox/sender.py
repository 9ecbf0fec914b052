"""Turn a claimed row and a decrypted number into one Twilio REST call; returns Twilio's sid."""

from __future__ import annotations

from typing import Any

from app.outbox.models import MessageKind
from app.outbox.repository import Job
from app.settings import ConfigurationError, Settings

SMS_STATUS_PATH = "/twilio/sms/status"
VOICE_PATH = "/twilio/voice"
VOICE_STATUS_PATH = "/twilio/voice/status"


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
                to=number, body=job.body, status_callback=base + SMS_STATUS_PATH, **sender
            )
            return str(message.sid)
        if not self.settings.twilio_number:
            raise ConfigurationError("call-backs need RIMAY_TWILIO_NUMBER (the hotline's number, E.164)")
        call = await self.client.calls.create_async(
            to=number,
            from_=self.settings.twilio_number,
            url=base + VOICE_PATH,
            status_callback=base + VOICE_STATUS_PATH,
        )
        return str(call.sid)
