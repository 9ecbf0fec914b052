"""Short-lived signed URLs for voice answers: Twilio fetches them to play to the caller, nobody lists them."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from urllib.parse import urlencode

from app.privacy.keys import KeyPurpose, derive_key

URL_LIFETIME = 3600
"""Long enough for Twilio to fetch the file during the call (and a redelivered step)."""


class MediaSigner:
    """Signs and checks ``/media/answers/<id>.mp3?expires=...&signature=...``."""

    def __init__(self, master: bytes, *, clock: Callable[[], float] = time.time) -> None:
        self._key = derive_key(master, KeyPurpose.MEDIA)
        self.clock = clock

    def url(self, base_url: str, audio_id: str) -> str:
        """An absolute URL that works for ``URL_LIFETIME`` seconds."""
        expires = int(self.clock()) + URL_LIFETIME
        query = urlencode({"expires": expires, "signature": self._sign(audio_id, expires)})
        return f"{base_url}/media/answers/{audio_id}.mp3?{query}"

    def valid(self, audio_id: str, expires: int, signature: str) -> bool:
        """True for an unexpired URL this service signed."""
        if expires < self.clock():
            return False
        return hmac.compare_digest(self._sign(audio_id, expires), signature)

    def _sign(self, audio_id: str, expires: int) -> str:
        message = f"{audio_id}\x00{expires}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "MediaSigner(<key hidden>)"
