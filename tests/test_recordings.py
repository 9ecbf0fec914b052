"""Recordings: allow-listed registration, then download, private storage and deletion at Twilio."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import stat
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import respx
from sqlalchemy import select

from app.outbox.admin import run_worker
from app.outbox.twilio_http import client_factory
from app.recordings.errors import RecordingRefused
from app.recordings.fetcher import RecordingFetcher
from app.recordings.models import Recording
from app.recordings.service import RecordingService
from app.settings import Settings
from tests.conftest import count_rows
from tests.outbound import ACCOUNT_SID, API, Clock, Sessions, outbound_settings, sessions_for

AUDIO = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb" * 64


def new_sid() -> str:
    """A fresh RecordingSid."""
    return "RE" + uuid.uuid4().hex


def url_for(sid: str, account: str = ACCOUNT_SID) -> str:
    """The RecordingUrl Twilio sends for a recording."""
    return f"https://api.twilio.com/2010-04-01/Accounts/{account}/Recordings/{sid}"


def mp3(status: int = 200) -> httpx.Response:
    """Twilio's media answer."""
    if status != 200:
        return httpx.Response(status, json={"code": 20500, "message": "oops", "status": status})
    return httpx.Response(200, content=AUDIO, headers={"Content-Type": "audio/mpeg"})


def deleted(status: int = 204) -> httpx.Response:
    """Twilio's answer to the DELETE."""
    if status == 204:
        return httpx.Response(204)
    return httpx.Response(status, json={"code": 20000 + status, "message": "no", "status": status})


@pytest.fixture
def outbound(settings: Settings, tmp_path: Path) -> Settings:
    """Settings that can fetch, with a data dir of the test's own and few attempts."""
    return outbound_settings(settings, data_dir=tmp_path / "data", outbox_max_attempts=3)


@pytest.fixture
async def fetcher(sessions: Sessions, outbound: Settings, clock: Clock) -> AsyncIterator[RecordingFetcher]:
    """A fetcher with a fixed clock and seeded jitter."""
    made = RecordingFetcher(sessions, outbound, client_factory, clock=clock, rng=random.Random(7))
    yield made
    await made.aclose()


def routes(twilio: respx.MockRouter, sid: str) -> tuple[respx.Route, respx.Route]:
    """The media GET and the DELETE of one recording."""
    return twilio.get(f"{API}/Recordings/{sid}.mp3"), twilio.delete(f"{API}/Recordings/{sid}.json")


async def register(sessions: Sessions, outbound: Settings, clock: Clock, sid: str) -> Recording:
    """A pending recording, due on the test's clock."""
    async with sessions() as db, db.begin():
        recording = await RecordingService(db, outbound).register(None, sid, url_for(sid), 12)
    clock.advance(seconds=1)
    return recording


async def row(sessions: Sessions, sid: str) -> Recording:
    """The stored row, read afresh."""
    async with sessions() as db:
        return (await db.scalars(select(Recording).where(Recording.provider_sid == sid))).one()


async def test_register_stores_a_pending_row_and_redelivery_returns_it(
    sessions: Sessions, outbound: Settings, clock: Clock
) -> None:
    """The row waits for the fetcher; a second callback for the same sid changes nothing."""
    sid = new_sid()
    first = await register(sessions, outbound, clock, sid)
    again = await register(sessions, outbound, clock, sid)
    assert (again.id, again.public_id) == (first.id, first.public_id)
    assert len(first.public_id) == 32
    stored = await row(sessions, sid)
    assert (stored.status, stored.attempts, stored.duration_seconds) == ("pending", 0, 12)
    assert stored.source_url == url_for(sid)
    assert count_rows(outbound.sqlalchemy_url, "recordings") == 1
    async with sessions() as db:
        path = RecordingService(db, outbound).path_for(stored)
    assert path == outbound.data_dir / "recordings" / f"{stored.public_id}.mp3"


SID = new_sid()


@pytest.mark.parametrize(
    ("sid", "url"),
    [
        (SID, url_for(SID).replace("https://", "http://")),
        (SID, url_for(SID).replace("api.twilio.com", "evil.example.org")),
        (SID, url_for(SID, account="AC" + "2" * 32)),
        (SID, url_for(SID).replace("https://", "https://x:y@")),
        (SID, url_for(SID) + "?x=1"),
        (SID, url_for(new_sid())),
        ("CA" + SID[2:], url_for("CA" + SID[2:])),
    ],
    ids=["http", "other-host", "other-account", "userinfo", "query", "other-sid", "not-a-recording-sid"],
)
async def test_refused_urls_raise_and_store_nothing(
    sessions: Sessions, outbound: Settings, sid: str, url: str
) -> None:
    """Only Twilio's own URL for this account's recording: the fetcher sends credentials there."""
    with pytest.raises(RecordingRefused) as refused:
        async with sessions() as db, db.begin():
            await RecordingService(db, outbound).register(None, sid, url, 3)
    assert refused.value.status_code == 400
    assert "x:y" not in str(refused.value)
    assert count_rows(outbound.sqlalchemy_url, "recordings") == 0


async def test_fetch_stores_a_private_file_then_deletes_at_twilio(
    twilio: respx.MockRouter, fetcher: RecordingFetcher, sessions: Sessions, outbound: Settings, clock: Clock
) -> None:
    """The bytes land as 0600 in a 0700 folder, Twilio's copy is deleted once, the row is `stored`."""
    sid = new_sid()
    media, delete = routes(twilio, sid)
    # Twilio redirects media to its storage host; the account's credentials must not follow.
    storage = "https://media.storage.example/signed/abc"
    media.mock(return_value=httpx.Response(302, headers={"Location": storage}))
    moved = twilio.get(storage).mock(return_value=mp3())
    delete.mock(return_value=deleted())
    recording = await register(sessions, outbound, clock, sid)
    assert await fetcher.run_once() == 1
    assert await fetcher.run_once() == 0
    path = outbound.data_dir / "recordings" / f"{recording.public_id}.mp3"
    assert path.read_bytes() == AUDIO
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    assert (media.call_count, delete.call_count) == (1, 1)
    assert media.calls.last.request.headers["Authorization"].startswith("Basic ")
    assert "Authorization" not in moved.calls.last.request.headers
    stored = await row(sessions, sid)
    assert (stored.status, stored.attempts, stored.last_error) == ("stored", 1, None)
    assert (stored.size_bytes, stored.media_type) == (len(AUDIO), "audio/mpeg")
    assert stored.stored_at == stored.remote_deleted_at == clock.now


async def test_server_error_on_download_is_retried(
    twilio: respx.MockRouter, fetcher: RecordingFetcher, sessions: Sessions, outbound: Settings, clock: Clock
) -> None:
    """A 500 leaves the row pending with a jittered retry; the next attempt stores it."""
    sid = new_sid()
    media, delete = routes(twilio, sid)
    media.mock(side_effect=[mp3(500), mp3()])
    delete.mock(return_value=deleted())
    await register(sessions, outbound, clock, sid)
    assert await fetcher.run_once() == 1
    waiting = await row(sessions, sid)
    assert (waiting.status, waiting.attempts, waiting.last_error) == ("pending", 1, "download HTTP 500")
    assert waiting.next_attempt_at is not None
    assert waiting.next_attempt_at <= clock.now + timedelta(seconds=30)
    assert delete.call_count == 0
    clock.now = waiting.next_attempt_at
    assert await fetcher.run_once() == 1
    stored = await row(sessions, sid)
    assert (stored.status, stored.attempts, media.call_count, delete.call_count) == ("stored", 2, 2, 1)


async def test_throttled_delete_keeps_the_file_and_only_deletes_next_time(
    twilio: respx.MockRouter, fetcher: RecordingFetcher, sessions: Sessions, outbound: Settings, clock: Clock
) -> None:
    """A 429 on the DELETE after a good download: the file stays, the retry does not download again."""
    sid = new_sid()
    media, delete = routes(twilio, sid)
    media.mock(return_value=mp3())
    delete.mock(side_effect=[deleted(429), deleted()])
    recording = await register(sessions, outbound, clock, sid)
    assert await fetcher.run_once() == 1
    path = outbound.data_dir / "recordings" / f"{recording.public_id}.mp3"
    assert path.read_bytes() == AUDIO
    waiting = await row(sessions, sid)
    assert (waiting.status, waiting.remote_deleted_at) == ("pending", None)
    assert waiting.stored_at is not None
    assert waiting.next_attempt_at is not None
    clock.now = waiting.next_attempt_at
    assert await fetcher.run_once() == 1
    assert (media.call_count, delete.call_count) == (1, 2)
    assert (await row(sessions, sid)).status == "stored"
    assert path.read_bytes() == AUDIO


async def test_not_found_on_delete_counts_as_deleted(
    twilio: respx.MockRouter, fetcher: RecordingFetcher, sessions: Sessions, outbound: Settings, clock: Clock
) -> None:
    """Someone (an earlier attempt, an operator) deleted it already: that is what we wanted."""
    sid = new_sid()
    media, delete = routes(twilio, sid)
    media.mock(return_value=mp3())
    delete.mock(return_value=deleted(404))
    await register(sessions, outbound, clock, sid)
    assert await fetcher.run_once() == 1
    assert (await row(sessions, sid)).status == "stored"


async def test_gives_up_after_max_attempts_and_logs_only_the_row_id(
    twilio: respx.MockRouter,
    fetcher: RecordingFetcher,
    sessions: Sessions,
    outbound: Settings,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Three timeouts (RIMAY_OUTBOX_MAX_ATTEMPTS=3) and the row is `failed`, with an ERROR naming its id."""
    sid = new_sid()
    media, delete = routes(twilio, sid)
    media.mock(side_effect=httpx.ReadTimeout("timed out"))
    recording = await register(sessions, outbound, clock, sid)
    caplog.set_level(logging.INFO, logger="app.recordings")
    for _ in range(3):
        assert await fetcher.run_once() == 1
        clock.advance(hours=2)
    assert await fetcher.run_once() == 0
    failed = await row(sessions, sid)
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 3, "ReadTimeout downloading")
    assert (media.call_count, delete.call_count) == (3, 0)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        f"recording {recording.id}: failed after 3 attempt(s); not retried"
    ]
    mine = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("app.recordings"))
    assert "twilio.com" not in mine
    assert sid not in mine
    assert not (outbound.data_dir / "recordings" / f"{recording.public_id}.mp3").exists()


async def test_not_found_on_download_fails_at_once(
    twilio: respx.MockRouter, fetcher: RecordingFetcher, sessions: Sessions, outbound: Settings, clock: Clock
) -> None:
    """A recording Twilio does not have will not appear later: no retries."""
    sid = new_sid()
    media, _ = routes(twilio, sid)
    media.mock(return_value=mp3(404))
    await register(sessions, outbound, clock, sid)
    assert await fetcher.run_once() == 1
    failed = await row(sessions, sid)
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 1, "download HTTP 404")


async def test_two_fetchers_download_each_recording_once(
    twilio: respx.MockRouter, sessions: Sessions, outbound: Settings, clock: Clock
) -> None:
    """Concurrent fetchers on separate engines (SKIP LOCKED on PostgreSQL) never share a recording."""
    sids = [new_sid() for _ in range(6)]
    media = twilio.get(url__regex=rf"{API}/Recordings/RE[0-9a-f]{{32}}\.mp3").mock(return_value=mp3())
    delete = twilio.delete(url__regex=rf"{API}/Recordings/RE[0-9a-f]{{32}}\.json").mock(
        return_value=deleted()
    )
    for sid in sids:
        await register(sessions, outbound, clock, sid)

    async def drain(fetcher: RecordingFetcher) -> int:
        total = 0
        while claimed := await fetcher.run_once(batch=2):
            total += claimed
            await asyncio.sleep(0)
        return total

    async with (
        sessions_for(outbound.sqlalchemy_url) as first,
        sessions_for(outbound.sqlalchemy_url) as second,
    ):
        fetchers = [RecordingFetcher(made, outbound, client_factory, clock=clock) for made in (first, second)]
        try:
            totals = await asyncio.gather(*(drain(fetcher) for fetcher in fetchers))
        finally:
            for fetcher in fetchers:
                await fetcher.aclose()
    assert sum(totals) == 6
    fetched = sorted(call.request.url.path.rsplit("/", 1)[1] for call in media.calls)
    assert fetched == sorted(f"{sid}.mp3" for sid in sids)
    assert delete.call_count == 6
    assert {(await row(sessions, sid)).status for sid in sids} == {"stored"}


async def test_worker_once_fetches_pending_recordings(
    twilio: respx.MockRouter, sessions: Sessions, outbound: Settings, clock: Clock
) -> None:
    """`rimay worker --once` sends messages and fetches recordings in the same process."""
    sid = new_sid()
    media, delete = routes(twilio, sid)
    media.mock(return_value=mp3())
    delete.mock(return_value=deleted())
    async with sessions() as db, db.begin():
        recording = await RecordingService(db, outbound).register(None, sid, url_for(sid), None)
    await asyncio.sleep(0.01)  # the worker's clock is the real one: let the row become due
    assert await run_worker(outbound, once=True, poll=0.1) == 1
    assert (await row(sessions, sid)).status == "stored"
    assert (outbound.data_dir / "recordings" / f"{recording.public_id}.mp3").read_bytes() == AUDIO
    assert (media.call_count, delete.call_count) == (1, 1)


async def test_polling_worker_fetches_and_stops_both_loops_on_sigterm(
    twilio: respx.MockRouter, sessions: Sessions, outbound: Settings, clock: Clock
) -> None:
    """`rimay worker` polls recordings beside the outbox; SIGTERM ends both, run_worker returns 0."""
    sid = new_sid()
    media, delete = routes(twilio, sid)
    media.mock(return_value=mp3())
    delete.mock(return_value=deleted())
    async with sessions() as db, db.begin():
        await RecordingService(db, outbound).register(None, sid, url_for(sid), None)
    task = asyncio.create_task(run_worker(outbound, once=False, poll=0.05))
    for _ in range(300):
        if delete.call_count:
            break
        await asyncio.sleep(0.01)
    assert delete.call_count == 1
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(task, timeout=5) == 0
    assert (await row(sessions, sid)).status == "stored"
    assert media.call_count == 1
