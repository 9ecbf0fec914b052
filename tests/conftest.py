"""Shared fixtures: migrated SQLite and PostgreSQL databases, the app, and a signed Twilio phone."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import respx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.audio.library import AudioLibrary
from app.db.engine import make_sync_engine
from app.db.migrate import upgrade
from app.flows.loader import load_flows
from app.flows.model import FlowDefinition
from app.main import create_app
from app.settings import Settings
from app.simulator import Call, TwilioSigner
from tests.outbound import Clock, Sessions, outbound_settings, sessions_for
from tests.pg import PostgresServer, find_postgres, start_postgres

AUTH_TOKEN = "test-auth-token-0123456789abcdef"
PUBLIC_BASE_URL = "https://hotline.example.org"
CALLER = "+51987654321"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer | None]:
    """A PostgreSQL server: RIMAY_TEST_POSTGRES_URL, or a throwaway cluster from the installed binaries."""
    url = os.environ.get("RIMAY_TEST_POSTGRES_URL")
    if url:
        yield PostgresServer(admin_url=url, process_dir=None)
        return
    binaries = find_postgres()
    if binaries is None:
        yield None
        return
    server = start_postgres(binaries, tmp_path_factory.mktemp("pg"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresServer | None) -> str | None:
    """A database migrated once; each test copies it with CREATE DATABASE ... TEMPLATE."""
    if postgres_server is None:
        return None
    name = f"rimay_template_{uuid.uuid4().hex[:8]}"
    postgres_server.create_database(name)
    upgrade(postgres_server.url_for(name))
    return name


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    upgrade(f"sqlite:///{path}")  # disposes its engine: the WAL is checkpointed into the file
    return path


def _require_postgres() -> None:
    if os.environ.get("RIMAY_REQUIRE_POSTGRES") == "1":
        pytest.fail("PostgreSQL is required (RIMAY_REQUIRE_POSTGRES=1) but no server could be started")
    pytest.skip("no PostgreSQL: set RIMAY_TEST_POSTGRES_URL or install the postgresql package")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_server: PostgresServer | None,
    postgres_template: str | None,
) -> Iterator[str]:
    """A fresh, migrated database per test, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "rimay.sqlite3"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    if postgres_server is None or postgres_template is None:
        _require_postgres()
        return
    name = f"rimay_test_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(name, template=postgres_template)
    try:
        yield postgres_server.url_for(name)
    finally:
        postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def audio_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose generated audio covers every shipped prompt (built once with espeak-ng)."""
    from app.audio.build import build_audio
    from app.audio.library import AudioLibrary
    from app.audio.synth import EspeakSynthesizer

    data_dir = tmp_path_factory.mktemp("data")
    if shutil.which("espeak-ng") and shutil.which("lame"):
        library = AudioLibrary(ROOT / "audio", data_dir / "audio")
        report = build_audio(load_flows(ROOT / "voice_flows").values(), library, EspeakSynthesizer())
        assert report.ok, report.summary()
    return data_dir


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    """An empty folder for recorded audio."""
    return tmp_path / "audio"


@pytest.fixture
def generated(tmp_path: Path) -> Path:
    """An empty folder for generated audio."""
    return tmp_path / "var" / "audio"


@pytest.fixture
def library(recorded: Path, generated: Path) -> AudioLibrary:
    """An audio library over those folders that rescans only when told to."""
    return AudioLibrary(recorded, generated, check_interval=3600)


@pytest.fixture
def settings(database_url: str, audio_data_dir: Path) -> Settings:
    """Settings for a test: a fresh database, fixed secrets, the shipped flows and audio."""
    return Settings(
        data_dir=audio_data_dir,
        database_url=database_url,
        public_base_url=PUBLIC_BASE_URL,
        secret_key="test-secret-key-" + "x" * 32,
        contact_key="test-contact-key-" + "y" * 32,
        twilio_auth_token=AUTH_TOKEN,
        flows_dir=ROOT / "voice_flows",
        audio_dir=ROOT / "audio",
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The real application."""
    application = create_app(settings)
    yield application
    await application.state.engine.dispose()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in process, at its public base URL."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_BASE_URL) as http:
        yield http


@pytest.fixture
def flows() -> dict[str, FlowDefinition]:
    """The shipped flows."""
    return load_flows(ROOT / "voice_flows")


@pytest.fixture
def signer() -> TwilioSigner:
    """Signs like Twilio, with the test auth token."""
    return TwilioSigner(AUTH_TOKEN, PUBLIC_BASE_URL)


@pytest.fixture
def phone(client: httpx.AsyncClient, signer: TwilioSigner, flows: dict[str, FlowDefinition]) -> Call:
    """A simulated call from CALLER."""
    return Call(client=client, signer=signer, flows=flows, caller=CALLER)


@pytest.fixture
def outbound(settings: Settings) -> Settings:
    """Settings that can send (a Twilio account and the hotline's number); modules may override it."""
    return outbound_settings(settings)


@pytest.fixture
async def sessions(outbound: Settings) -> AsyncIterator[Sessions]:
    """Sessions on the test database, on an engine of their own (as the worker has)."""
    async with sessions_for(outbound.sqlalchemy_url) as made:
        yield made


@pytest.fixture
def clock() -> Clock:
    """Time under the test's control."""
    return Clock()


@pytest.fixture
def twilio() -> Iterator[respx.MockRouter]:
    """Twilio's REST API, mocked; any other outbound request fails the test."""
    with respx.mock(assert_all_called=False) as router:
        yield router


def count_rows(database_url: str, table: str) -> int:
    """How many rows a table holds, read through a separate connection."""
    engine = make_sync_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())  # noqa: S608
    finally:
        engine.dispose()


def database_name(database_url: str) -> str:
    """The database (or file) name of a URL."""
    return make_url(database_url).database or ""
