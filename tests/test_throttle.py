"""The throttle service: record, count within a window, prune; only keyed hashes are stored."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import text

from app.db.engine import make_sync_engine
from app.staff.login import MAX_DELAY_SECONDS, delay_for
from app.throttle.service import ThrottleKeys, ThrottleService
from tests.outbound import Clock, Sessions, sessions_for

MASTER = b"test-master-secret-" + b"t" * 32


@pytest.fixture
async def maker(database_url: str) -> AsyncIterator[Sessions]:
    """Sessions on the test database."""
    async with sessions_for(database_url) as made:
        yield made


def stored(database_url: str) -> list[tuple[str, str]]:
    """Every (bucket, key) row."""
    engine = make_sync_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT bucket, key FROM throttle_events ORDER BY id"))
            return [(str(row[0]), str(row[1])) for row in rows]
    finally:
        engine.dispose()


async def test_counts_per_bucket_and_value_within_the_window(maker: Sessions, database_url: str) -> None:
    """Attempts count for their own bucket and value, only while inside the window."""
    clock, window = Clock(), timedelta(minutes=15)
    async with maker() as db:
        throttle = ThrottleService(db, ThrottleKeys(MASTER), clock=clock)
        for _ in range(3):
            await throttle.record("login_ip", "192.0.2.7")
        await throttle.record("case_code", "192.0.2.7")
        assert await throttle.count("login_ip", "192.0.2.7", window) == 3
        assert await throttle.count("login_ip", "192.0.2.8", window) == 0
        assert await throttle.count("case_code", "192.0.2.7", window) == 1
        clock.advance(minutes=16)
        await throttle.record("login_ip", "192.0.2.7")
        assert await throttle.count("login_ip", "192.0.2.7", window) == 1
        await db.commit()
    rows = stored(database_url)
    assert len(rows) == 5
    assert "192.0.2.7" not in repr(rows)
    assert all(re.fullmatch(r"[0-9a-f]{64}", key) for _, key in rows)
    assert rows[0][1] != rows[3][1]  # the same value hashes differently in another bucket


async def test_prune_deletes_only_old_rows_of_its_bucket(maker: Sessions, database_url: str) -> None:
    """Rows older than the window go; newer rows and other buckets stay."""
    clock, window = Clock(), timedelta(minutes=15)
    async with maker() as db:
        throttle = ThrottleService(db, ThrottleKeys(MASTER), clock=clock)
        await throttle.record("login_ip", "a")
        await throttle.record("other", "a")
        clock.advance(minutes=20)
        await throttle.record("login_ip", "b")
        assert await throttle.prune("login_ip", window) == 1
        await db.commit()
    assert [bucket for bucket, _ in stored(database_url)] == ["other", "login_ip"]


def test_keys_depend_on_the_master_secret() -> None:
    """Another secret gives other keys, so a stolen table cannot be matched without the secret."""
    assert ThrottleKeys(MASTER)("b", "v") == ThrottleKeys(MASTER)("b", "v")
    assert ThrottleKeys(MASTER)("b", "v") != ThrottleKeys(b"other-master-" + b"o" * 32)("b", "v")
    assert "<key hidden>" in repr(ThrottleKeys(MASTER))


def test_login_delay_grows_and_is_bounded() -> None:
    """No failure, no wait; each failure waits longer, up to the bound."""
    assert delay_for(0) == 0
    assert delay_for(1) < delay_for(2) < delay_for(3)
    assert delay_for(1000) == MAX_DELAY_SECONDS
