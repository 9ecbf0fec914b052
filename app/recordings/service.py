"""Register recordings Twilio announces (allow-listed URLs only) and find their files."""

from __future__ import annotations

import logging
import re
import secrets
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.upsert import insert_ignoring_conflicts
from app.recordings.errors import RecordingRefused
from app.recordings.models import Recording, RecordingStatus
from app.recordings.repository import RecordingRepository
from app.settings import Settings

log = logging.getLogger(__name__)
RECORDING_SID = re.compile(r"RE[0-9a-fA-F]{32}")
API_VERSION = "2010-04-01"


class RecordingRegistrar(Protocol):
    """Takes a caller's recording for the worker to fetch from Twilio (and delete there)."""

    async def register(
        self, session_id: str | None, recording_sid: str, recording_url: str, duration: int | None
    ) -> Recording:
        """Store the recording's reference; idempotent per recording sid."""


async def take_recording(
    registrar: RecordingRegistrar, session_id: str, sid: str, url: str, duration: int
) -> Recording | None:
    """Register a recording; one whose URL is refused is logged and never fetched (None)."""
    try:
        return await registrar.register(session_id, sid, url, duration)
    except RecordingRefused as error:
        # Not Twilio's URL for this account: never fetched (credentials would go there).
        log.warning("session %s: recording not taken: %s", session_id, error)
        return None


class RecordingService:
    """Recordings as the channels see them; only flushes, the caller commits."""

    def __init__(self, db: AsyncSession, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def register(
        self, session_id: str | None, recording_sid: str, recording_url: str, duration: int | None
    ) -> Recording:
        """A pending recording for the fetcher; a redelivered callback returns the row already stored."""
        if not RECORDING_SID.fullmatch(recording_sid):
            raise RecordingRefused("recording refused: the RecordingSid is malformed")
        self.check_url(recording_sid, recording_url)
        if duration is not None and duration < 0:
            raise RecordingRefused("recording refused: negative duration")
        values = {
            "public_id": secrets.token_hex(16),
            "session_id": session_id,
            "provider_sid": recording_sid,
            "source_url": recording_url,
            "duration_seconds": duration,
            "status": RecordingStatus.PENDING,
            "attempts": 0,
            "created_at": utcnow(),
        }
        # Two deliveries of one callback may race: the unique sid lets exactly one insert win.
        await insert_ignoring_conflicts(self.db, Recording, values, ["provider_sid"])
        recording = await RecordingRepository(self.db).by_sid(recording_sid)
        if recording is None:  # pragma: no cover - the insert or the earlier row must be there
            raise RuntimeError("recording vanished after insert")
        return recording

    def check_url(self, recording_sid: str, recording_url: str) -> None:
        """Only Twilio's own URL for this recording in this account: the worker sends credentials there."""
        account = self.settings.twilio_account_sid
        if not account:
            raise RecordingRefused("recording refused: TWILIO_ACCOUNT_SID is not configured")
        try:
            parts = urlsplit(recording_url)
            port = parts.port
        except ValueError as error:
            raise RecordingRefused("recording refused: the URL is malformed") from error
        expected = f"/{API_VERSION}/Accounts/{account}/Recordings/{recording_sid}"
        problems = {
            "not https": parts.scheme != "https",
            "credentials in the URL": "@" in parts.netloc,
            "host not allowed": (parts.hostname or "") not in self.allowed_hosts,
            "port not allowed": port not in (None, 443),
            "path is not this account's recording": parts.path != expected,
            "query or fragment": bool(parts.query or parts.fragment),
        }
        refused = [problem for problem, found in problems.items() if found]
        if refused:
            raise RecordingRefused(f"recording refused: {', '.join(refused)}")

    @property
    def allowed_hosts(self) -> frozenset[str]:
        """The configured hosts, compared without case (urlsplit lowers the URL's host)."""
        return frozenset(host.lower() for host in self.settings.recording_hosts)

    def path_for(self, recording: Recording) -> Path:
        """Where the recording's file lives (or will) under the data directory."""
        return recording_path(self.settings, recording.public_id)


def recording_path(settings: Settings, public_id: str) -> Path:
    """The file for a public id; the id is random hex, so it cannot escape the folder."""
    return settings.data_dir / "recordings" / f"{public_id}.mp3"
