"""The real service with its database down or hung: an apology and a hang-up within 2 s, then recovery."""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Literal

import httpx
import pytest

from app.simulator import TwilioSigner
from tests.conftest import AUTH_TOKEN
from tests.pg import PostgresServer
from tests.server import Service, running_service

LIMIT = 2.0
"""The issue's bound: Twilio hears an answer this soon even when the database does not."""
RECOVERY = 20.0
Mode = Literal["pass", "hang", "down"]


class FaultyLink:
    """A TCP proxy to the database that can pass traffic, swallow it (hang) or cut it (down)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode: Mode = "pass"
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def set(self, mode: Mode) -> None:
        """Switch mode; leaving "pass" or "hang" cuts every open connection, like a network reset."""
        with self._lock:
            previous, self.mode = self.mode, mode
            if mode == "down" or (previous == "hang" and mode == "pass"):
                for sock in self._sockets:
                    with suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
                self._sockets.clear()

    def close(self) -> None:
        """Stop listening and cut everything."""
        self.set("down")
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self.mode == "down":
                    client.close()
                    continue
                self._sockets.append(client)
                if self.mode == "hang":
                    continue  # accepted, never answered: what a frozen server looks like
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.append(upstream)
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                while self.mode == "hang":
                    time.sleep(0.02)  # hold the bytes: neither side hears anything
                if self.mode == "down":
                    break
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _hex() -> str:
    return uuid.uuid4().hex


class Twilio:
    """Signed webhooks to the running service, timed."""

    def __init__(self, service: Service) -> None:
        self.base_url = service.base_url
        self.signer = TwilioSigner(AUTH_TOKEN, service.base_url)
        self.http = httpx.Client(base_url=service.base_url, timeout=30)

    def post(self, path: str, params: dict[str, str]) -> tuple[httpx.Response, float]:
        """POST like Twilio and return the answer with how long it took."""
        started = time.monotonic()
        headers = self.signer.headers(self.signer.public(path), params)
        response = self.http.post(path, data=params, headers=headers)
        return response, time.monotonic() - started

    def new_call(self, call_sid: str | None = None) -> tuple[httpx.Response, float]:
        """A new inbound call."""
        params = {"CallSid": call_sid or f"CA{_hex()}", "From": "+51987654321", "To": "+51111111111"}
        return self.post("/twilio/voice", params)

    def step(self, path: str, call_sid: str | None = None) -> tuple[httpx.Response, float]:
        """A key press on a step of a call (by default some call the service may not know)."""
        params = {"CallSid": call_sid or f"CA{_hex()}", "From": "+51987654321", "Digits": "1"}
        return self.post(path, params)

    def health(self) -> tuple[httpx.Response, float]:
        """GET /healthz, timed."""
        started = time.monotonic()
        response = self.http.get("/healthz")
        return response, time.monotonic() - started


def _verbs(body: str) -> list[str]:
    return [verb.tag for verb in ET.fromstring(body)]  # noqa: S314 - our own server's TwiML


def _plays(body: str) -> list[str]:
    return [verb.text or "" for verb in ET.fromstring(body) if verb.tag == "Play"]  # noqa: S314


def assert_apology(response: httpx.Response, took: float, languages: list[str]) -> None:
    """The shipped apology in these languages, then <Hangup/>, within the limit."""
    assert took < LIMIT, f"answered after {took:.2f} s"
    assert response.status_code == 200
    assert _verbs(response.text) == ["Play"] * len(languages) + ["Hangup"]
    for url, language in zip(_plays(response.text), languages, strict=True):
        assert f"/audio/{language}/system/outage.mp3?v=" in url


def assert_outage(twilio: Twilio, step_path: str) -> None:
    """A new call, a step (in Quechua) and /healthz all answer fast with the outage."""
    response, took = twilio.new_call()
    assert_apology(response, took, ["es", "qu"])
    response, took = twilio.step(f"{step_path}?lang=qu")
    assert_apology(response, took, ["qu"])
    response, took = twilio.health()
    assert took < LIMIT, f"/healthz answered after {took:.2f} s"
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
    # Twilio can still fetch the audio it was told to play.
    audio = twilio.http.get(_plays(twilio.new_call()[0].text)[0].removeprefix(twilio.base_url))
    assert audio.status_code == 200
    assert audio.headers["content-type"] == "audio/mpeg"


def assert_recovers(twilio: Twilio, call_sid: str | None = None) -> str:
    """Within RECOVERY seconds, with no restart: /healthz is 200 and a new call gets the menu."""
    deadline = time.monotonic() + RECOVERY
    while twilio.health()[0].status_code != 200:
        assert time.monotonic() < deadline, "the service did not recover"
        time.sleep(0.2)
    response, _ = twilio.new_call(call_sid)
    assert response.status_code == 200
    root = ET.fromstring(response.text)  # noqa: S314
    gather = root.find("Gather")
    assert gather is not None, response.text
    action = gather.get("action") or ""
    assert action.startswith(f"{twilio.base_url}/twilio/voice/sessions/")
    assert "outage" not in response.text
    return action.removeprefix(twilio.base_url).split("?")[0]


@contextmanager
def _service_on(workdir: Path, database_url: str, audio_data_dir: Path) -> Iterator[Twilio]:
    # tests/server.py keeps RIMAY_DATABASE_URL out of the environment (a fresh SQLite per service); a
    # .env in the working directory is the documented way to configure it, and the migration reads it too.
    (workdir / ".env").write_text(f"RIMAY_DATABASE_URL={database_url}\n")
    with running_service(workdir, generated_audio=audio_data_dir / "audio", log_level="INFO") as service:
        twilio = Twilio(service)
        try:
            yield twilio
        finally:
            twilio.http.close()
            log = service.log_path.read_text(errors="replace")
            assert "987654321" not in log  # the caller's number, with or without +51


@pytest.fixture
def postgres(postgres_server: PostgresServer | None) -> Iterator[tuple[PostgresServer, str]]:
    """An empty database on the test PostgreSQL server."""
    if postgres_server is None:
        if os.environ.get("RIMAY_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL is required (RIMAY_REQUIRE_POSTGRES=1) but no server could be started")
        pytest.skip("no PostgreSQL: set RIMAY_TEST_POSTGRES_URL or install the postgresql package")
    name = f"rimay_outage_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(name)
    try:
        yield postgres_server, name
    finally:
        postgres_server.drop_database(name)


@pytest.mark.postgres
def test_postgres_down_then_hung_then_back(
    tmp_path: Path, postgres: tuple[PostgresServer, str], audio_data_dir: Path
) -> None:
    """Refused and frozen PostgreSQL each give the apology in < 2 s; service comes back by itself."""
    server, name = postgres
    target = server.url_for(name)
    port = int(target.rsplit("@127.0.0.1:", 1)[1].split("/", 1)[0])
    link = FaultyLink(port)
    try:
        url = target.replace(f"127.0.0.1:{port}/", f"127.0.0.1:{link.port}/")
        with _service_on(tmp_path, url, audio_data_dir) as twilio:
            call_sid = f"CA{_hex()}"
            step_path = assert_recovers(twilio, call_sid)
            for mode in ("down", "hang"):
                link.set(mode)
                assert_outage(twilio, step_path)
                link.set("pass")
                assert_recovers(twilio)
            # The call that began before both outages goes on normally: its key press is applied.
            response, _ = twilio.step(step_path, call_sid)
            assert response.status_code == 200
            assert f"{step_path[:-1]}2" in response.text
            assert "outage" not in response.text
            assert "/_error.mp3" not in response.text
    finally:
        link.close()


@contextmanager
def sqlite_locked(service: Service) -> Iterator[None]:
    """Another process holds the service's SQLite file locked (a hung database) until the block ends."""
    holder = sqlite3.connect(service.data_dir / "rimay.sqlite3", isolation_level=None, timeout=10)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_sqlite_locked_then_released(tmp_path: Path, audio_data_dir: Path) -> None:
    """A SQLite file another process holds locked is a hung database: apology in < 2 s, then recovery."""
    with running_service(tmp_path, generated_audio=audio_data_dir / "audio", log_level="INFO") as service:
        twilio = Twilio(service)
        try:
            step_path = assert_recovers(twilio)
            with sqlite_locked(service):
                response, took = twilio.new_call()
                assert_apology(response, took, ["es", "qu"])
                response, took = twilio.step(f"{step_path}?lang=es")
                assert_apology(response, took, ["es"])
                response, took = twilio.health()
                assert took < LIMIT, f"/healthz answered after {took:.2f} s"
                assert response.status_code == 503
            assert_recovers(twilio)
        finally:
            twilio.http.close()


def test_a_surge_during_an_outage_is_answered_within_the_limit(tmp_path: Path, audio_data_dir: Path) -> None:
    """Eight calls at once on a worker with one slot while the database is locked: without admission
    control each would wait for the one before it to reach the deadline (8 x 1.5 s); the first finds the
    database down and the others are answered at once. Once unlocked, the next call gets the menu."""
    env = {"RIMAY_WEBHOOK_CONCURRENCY": "1", "RIMAY_WEBHOOK_QUEUE_SECONDS": "10"}
    with running_service(
        tmp_path, generated_audio=audio_data_dir / "audio", log_level="INFO", env=env
    ) as service:
        twilio = Twilio(service)
        try:
            assert_recovers(twilio)
            with sqlite_locked(service), ThreadPoolExecutor(max_workers=8) as pool:
                answers = list(pool.map(lambda _: _one_call(service), range(8)))
            for response, took in answers:
                assert_apology(response, took, ["es", "qu"])
            assert_recovers(twilio)
            metrics = twilio.http.get("/metrics").text
            assert 'rimay_webhooks_turned_away_total{reason="database"}' in metrics
        finally:
            twilio.http.close()


def _one_call(service: Service) -> tuple[httpx.Response, float]:
    """A new call from a client of its own (as Twilio's many fetchers are)."""
    twilio = Twilio(service)
    try:
        return twilio.new_call()
    finally:
        twilio.http.close()
