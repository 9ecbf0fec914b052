"""Partner API keys: issue, check, revoke; the Bearer dependency; `rimay apikey`; only hashes stored."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from app.apikeys.deps import API_KEY_RESPONSES, ResultsReader, add_api_key_error_handler, require_scope
from app.apikeys.errors import ApiKeyNotFound, InsufficientScope, InvalidApiKey, InvalidKeyName, UnknownScope
from app.apikeys.models import ApiKey
from app.apikeys.service import KEY_PATTERN, ApiKeyService
from app.cli import app as cli
from app.db.engine import make_sync_engine
from app.settings import get_settings
from tests.outbound import Clock, Sessions, sessions_for


@pytest.fixture
async def maker(database_url: str) -> AsyncIterator[Sessions]:
    """Sessions on the test database."""
    async with sessions_for(database_url) as made:
        yield made


async def create(maker: Sessions, *scopes: str, clock: Clock | None = None) -> tuple[ApiKey, str]:
    """A committed key for a test partner."""
    async with maker() as db:
        service = ApiKeyService(db) if clock is None else ApiKeyService(db, clock=clock)
        created = await service.create("Test agency", scopes or ("results:read",))
        await db.commit()
        return created


async def authenticate(maker: Sessions, token: str, scope: str = "results:read", **kw: Clock) -> ApiKey:
    """Check a token in a unit of work of its own, as the dependency does."""
    async with maker() as db:
        api_key = await ApiKeyService(db, **kw).authenticate(token, scope)
        await db.commit()
        return api_key


async def revoke(maker: Sessions, reference: str | int) -> ApiKey:
    """Revoke and commit."""
    async with maker() as db:
        api_key = await ApiKeyService(db).revoke(reference)
        await db.commit()
        return api_key


def stored_text(database_url: str) -> str:
    """Every value of every api_keys row, as text (plus the SQLite file and its WAL, byte for byte)."""
    engine = make_sync_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT * FROM api_keys")).all()
    finally:
        engine.dispose()
    dump = repr([tuple(row) for row in rows])
    path = make_url(database_url).database or ""
    for file in (Path(path), Path(path + "-wal")) if database_url.startswith("sqlite") else ():
        dump += file.read_bytes().decode("latin-1") if file.exists() else ""
    return dump


async def test_a_new_key_works_and_only_its_hash_is_stored(maker: Sessions, database_url: str) -> None:
    """The plaintext is returned once; the table holds a SHA-256 and no part of the secret."""
    first, key = await create(maker, "results:read", "stats:read", "results:read")
    second, other = await create(maker)
    assert KEY_PATTERN.fullmatch(key)
    assert key.startswith(f"rimay_{first.prefix}_")
    assert len(first.prefix) == 8
    assert key != other
    assert first.prefix != second.prefix
    assert first.scopes == ["results:read", "stats:read"]
    assert first.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert (await authenticate(maker, key)).id == first.id
    secret = key.removeprefix(f"rimay_{first.prefix}_")
    dump = stored_text(database_url)
    assert first.prefix in dump
    # Strip the known prefix: the secret itself may contain "_", so splitting on it could leave a stub.
    other_secret = other.removeprefix(f"rimay_{second.prefix}_")
    for plaintext in (key, secret, other, other_secret[:20], secret[:20]):
        assert plaintext not in dump


async def test_scope_and_revocation_are_checked(maker: Sessions) -> None:
    """Right scope passes, a missing one is 403, a revoked key is 401; revoking twice is fine."""
    api_key, key = await create(maker, "stats:read")
    assert (await authenticate(maker, key, "stats:read")).prefix == api_key.prefix
    with pytest.raises(InsufficientScope) as refused:
        await authenticate(maker, key, "results:read")
    assert (refused.value.status_code, refused.value.code) == (403, "insufficient_scope")
    revoked = await revoke(maker, api_key.prefix)
    assert revoked.revoked_at is not None
    assert (await revoke(maker, str(api_key.id))).revoked_at == revoked.revoked_at
    assert (await revoke(maker, key)).revoked_at == revoked.revoked_at  # a leaked key, pasted whole
    with pytest.raises(InvalidApiKey) as invalid:
        await authenticate(maker, key, "stats:read")
    assert (invalid.value.status_code, invalid.value.code) == (401, "invalid_api_key")
    for unknown in ("zzzzzzzz", "999999", "9" * 30, "a\x00b", ""):
        with pytest.raises(ApiKeyNotFound):
            await revoke(maker, unknown)


async def test_unknown_and_malformed_tokens_are_refused(maker: Sessions) -> None:
    """Nothing a client sends makes authentication fail with anything but InvalidApiKey."""
    api_key, key = await create(maker)
    wrong_secret = f"rimay_{api_key.prefix}_" + "A" * 43
    tokens = [
        "",
        "Bearer",
        "Basic xyz",
        f"Bearer {key}",
        wrong_secret,
        key + "x",
        key[:-1],
        " " + key,
        key.upper(),
        "rimay_",
        "rimay_abcdefgh_" + "b" * 43,
        "rimay_ñañañaña_" + "c" * 43,
        "rimay_\x00" + "d" * 50,
        "x" * 10_000,
        key + "y" * 10_000,
    ]
    for token in tokens:
        with pytest.raises(InvalidApiKey):
            await authenticate(maker, token)
    assert (await authenticate(maker, key)).id == api_key.id


async def test_last_use_is_written_at_most_once_a_minute(maker: Sessions, clock: Clock) -> None:
    """A busy partner does not cost a database write per request."""
    api_key, key = await create(maker, clock=clock)
    assert api_key.last_used_at is None
    first = (await authenticate(maker, key, clock=clock)).last_used_at
    assert first == clock.now
    clock.advance(seconds=59)
    assert (await authenticate(maker, key, clock=clock)).last_used_at == first
    clock.advance(seconds=2)
    assert (await authenticate(maker, key, clock=clock)).last_used_at == clock.now


async def test_create_refuses_bad_scopes_and_names(maker: Sessions) -> None:
    """An unknown scope names the known ones; a key needs a scope and a name of at most 100 chars."""
    async with maker() as db:
        service = ApiKeyService(db)
        with pytest.raises(UnknownScope, match=r"results:write.*known scopes: results:read, stats:read"):
            await service.create("Agency", ["results:read", "results:write"])
        with pytest.raises(UnknownScope, match="no scope"):
            await service.create("Agency", [])
        for name in ("", "   ", "x" * 101):
            with pytest.raises(InvalidKeyName):
                await service.create(name, ["stats:read"])
        assert await service.list() == []
    with pytest.raises(ValueError, match="unknown scope"):
        require_scope("results:write")


def probe_app(maker: Sessions, *, handler: bool = True) -> FastAPI:
    """A tiny partner API with one guarded route."""
    api = FastAPI()
    api.state.sessionmaker = maker
    if handler:
        add_api_key_error_handler(api)

    @api.get("/probe", responses=API_KEY_RESPONSES)
    async def probe(api_key: ResultsReader) -> dict[str, str]:
        return {"prefix": api_key.prefix}

    return api


@pytest.fixture
async def probe(maker: Sessions) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the tiny partner API."""
    transport = httpx.ASGITransport(app=probe_app(maker))
    async with httpx.AsyncClient(transport=transport, base_url="http://partner.test") as client:
        yield client


async def test_dependency_lets_a_good_key_in_and_notes_its_use(
    probe: httpx.AsyncClient, maker: Sessions
) -> None:
    """200 with the key's prefix, and `last_used_at` committed."""
    api_key, key = await create(maker)
    for scheme in ("Bearer", "bearer"):
        response = await probe.get("/probe", headers={"Authorization": f"{scheme} {key}"})
        assert response.status_code == 200, response.text
        assert response.json() == {"prefix": api_key.prefix}
    async with maker() as db:
        assert (await ApiKeyService(db).list())[0].last_used_at is not None


async def test_dependency_refuses_with_json_and_a_challenge(
    probe: httpx.AsyncClient, maker: Sessions
) -> None:
    """401 with `WWW-Authenticate: Bearer` for any bad key, 403 for a missing scope; never a 500."""
    api_key, key = await create(maker)
    _, stats_key = await create(maker, "stats:read")
    revoked, revoked_key = await create(maker)
    await revoke(maker, revoked.prefix)
    headers = [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic xyz"},
        {"Authorization": key},
        {"Authorization": f"Bearer rimay_{api_key.prefix}_{'A' * 43}"},
        {"Authorization": "Bearer " + "x" * 10_000},
        {"Authorization": f"Bearer {revoked_key}"},
    ]
    for header in headers:
        response = await probe.get("/probe", headers=header)
        assert response.status_code == 401, header
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["error"] == "invalid_api_key"
        assert response.json()["detail"]
    response = await probe.get("/probe", headers={"Authorization": f"Bearer {stats_key}"})
    assert response.status_code == 403
    assert response.json() == {"error": "insufficient_scope", "detail": response.json()["detail"]}
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


async def test_dependency_without_the_handler_still_refuses(maker: Sessions) -> None:
    """An app that forgot the handler answers FastAPI's `{"detail": ...}`, still 401 and never 500."""
    transport = httpx.ASGITransport(app=probe_app(maker, handler=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://partner.test") as client:
        response = await client.get("/probe", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "detail" in response.json()


def test_openapi_shows_the_bearer_scheme(maker: Sessions) -> None:
    """`/docs` offers the Authorize button and documents the error bodies."""
    schema = probe_app(maker).openapi()
    assert schema["components"]["securitySchemes"]["PartnerApiKey"]["scheme"] == "bearer"
    operation = schema["paths"]["/probe"]["get"]
    assert operation["security"] == [{"PartnerApiKey": []}]
    assert {"401", "403"} <= set(operation["responses"])


@pytest.fixture
def environment(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An operator's shell: a fresh data dir and the test database."""
    monkeypatch.setenv("RIMAY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RIMAY_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


async def _check(database_url: str, token: str) -> ApiKey:
    async with sessions_for(database_url) as made:
        return await authenticate(made, token)


def test_cli_creates_lists_and_revokes(environment: str) -> None:
    """The key is printed once and works; listings show the prefix only; a revoked key fails."""
    runner = CliRunner()
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    result = runner.invoke(cli, ["apikey", "create", "--name", "ONG Agua", "--scope", "results:read"])
    assert result.exit_code == 0, result.output
    assert "will not be shown again" in result.output
    key = result.stdout.strip()
    api_key = asyncio.run(_check(environment, key))
    assert api_key.name == "ONG Agua"
    listing = runner.invoke(cli, ["apikey", "list"])
    assert listing.exit_code == 0
    assert f"{api_key.prefix}\tONG Agua\tresults:read\t" in listing.output
    assert key not in listing.output
    # The secret may itself hold "_", so it is what follows the known prefix.
    assert key.removeprefix(f"rimay_{api_key.prefix}_")[:12] not in listing.output
    assert api_key.key_hash not in listing.output
    revoked = runner.invoke(cli, ["apikey", "revoke", api_key.prefix])
    assert (revoked.exit_code, "revoked" in revoked.output) == (0, True), revoked.output
    with pytest.raises(InvalidApiKey):
        asyncio.run(_check(environment, key))
    assert "UTC" in runner.invoke(cli, ["apikey", "list"]).output.splitlines()[1].split("\t")[-1]


def test_cli_refuses_unknown_scopes_and_prefixes(environment: str) -> None:
    """Exit 1 with a message naming the known scopes; nothing is created."""
    runner = CliRunner()
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    result = runner.invoke(cli, ["apikey", "create", "--name", "X", "--scope", "admin"])
    assert result.exit_code == 1
    assert "known scopes: results:read, stats:read" in result.output
    assert runner.invoke(cli, ["apikey", "list"]).output.strip() == "no API keys"
    missing = runner.invoke(cli, ["apikey", "revoke", "nosuchkey"])
    assert missing.exit_code == 1
    assert "no API key" in missing.output


async def test_list_shows_every_key_oldest_first(maker: Sessions, clock: Clock) -> None:
    """`list` returns every key, revoked ones included, oldest first."""
    first, _ = await create(maker, clock=clock)
    clock.advance(minutes=5)
    second, _ = await create(maker, clock=clock)
    await revoke(maker, first.prefix)
    async with maker() as db:
        keys = await ApiKeyService(db).list()
    assert [k.prefix for k in keys] == [first.prefix, second.prefix]
    assert keys[0].revoked_at is not None
    assert keys[1].created_at - keys[0].created_at == timedelta(minutes=5)
