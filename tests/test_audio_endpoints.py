"""The audio route: right headers, conditional requests, and a JSON 404 for anything else."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.audio.endpoints import etag_matches, router
from app.audio.library import AudioLibrary

VOICE = b"ID3 a recorded welcome"
DRAFT = b"\xff\xf3 a generated draft"


@pytest.fixture
def library(tmp_path: Path) -> AudioLibrary:
    recorded, generated = tmp_path / "audio", tmp_path / "var" / "audio"
    (recorded / "es" / "hotline").mkdir(parents=True)
    (recorded / "es" / "hotline" / "welcome.mp3").write_bytes(VOICE)
    (recorded / "es" / "hotline" / ".hidden.mp3").write_bytes(b"secret")
    (generated / "qu" / "hotline").mkdir(parents=True)
    (generated / "qu" / "hotline" / "_goodbye.wav").write_bytes(DRAFT)
    return AudioLibrary(recorded, generated)


@pytest.fixture
async def client(library: AudioLibrary) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.state.audio = library
    app.include_router(router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


def url_of(library: AudioLibrary, language: str, key: str) -> str:
    found = library.lookup(language, "hotline", key)
    assert found is not None
    return found.url_path


async def test_serves_a_versioned_url_as_immutable(client: httpx.AsyncClient, library: AudioLibrary) -> None:
    response = await client.get(url_of(library, "es", "welcome"))

    assert response.status_code == 200
    assert response.content == VOICE
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.headers["etag"] == f'"{hashlib.sha256(VOICE).hexdigest()}"'
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


@pytest.mark.parametrize("query", ["", "?v=0123456789ab"])
async def test_an_unversioned_or_outdated_url_is_cached_briefly(
    client: httpx.AsyncClient, query: str
) -> None:
    response = await client.get(f"/audio/qu/hotline/_goodbye.wav{query}")

    assert response.status_code == 200
    assert response.content == DRAFT
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["cache-control"] == "public, max-age=300"


async def test_head_sends_headers_only(client: httpx.AsyncClient, library: AudioLibrary) -> None:
    response = await client.head(url_of(library, "es", "welcome"))

    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(VOICE))
    assert response.headers["content-type"] == "audio/mpeg"
    assert response.headers["etag"].startswith('"')


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_a_matching_if_none_match_gets_304(
    client: httpx.AsyncClient, library: AudioLibrary, method: str
) -> None:
    url = url_of(library, "es", "welcome")
    etag = (await client.get(url)).headers["etag"]

    response = await client.request(method, url, headers={"If-None-Match": f'"other", W/{etag}'})

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_a_stale_if_none_match_gets_the_file(client: httpx.AsyncClient) -> None:
    response = await client.get("/audio/es/hotline/welcome.mp3", headers={"If-None-Match": '"old"'})

    assert response.status_code == 200
    assert response.content == VOICE


@pytest.mark.parametrize(
    "path",
    [
        "/audio/es/hotline/nothing.mp3",
        "/audio/qu/hotline/welcome.mp3",
        "/audio/es/other/welcome.mp3",
        "/audio/es/hotline/welcome.wav",
        "/audio/es/hotline/welcome.ogg",
        "/audio/es/hotline/welcome",
        "/audio/es/hotline/.hidden.mp3",
        "/audio/es/hotline/..%2F..%2F..%2Fetc%2Fpasswd",
        "/audio/es/hotline/%2E%2E%2Fwelcome.mp3",
        "/audio/es/hotline/sub/welcome.mp3",
        "/audio/es/..%2Fes/welcome.mp3",
        "/audio/ES/hotline/welcome.mp3",
        "/audio/es/hotline/welcome.mp3%00.txt",
    ],
)
async def test_unknown_or_unsafe_paths_get_a_json_404(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)

    assert response.status_code == 404
    assert response.json() == {"error": "audio_not_found"}


async def test_a_file_changed_on_disk_is_served_under_its_new_etag(
    client: httpx.AsyncClient, library: AudioLibrary
) -> None:
    found = library.lookup("es", "hotline", "welcome")
    assert found is not None
    found.path.write_bytes(b"ID3 a better take")

    response = await client.get(found.url_path)

    assert response.content == b"ID3 a better take"
    assert response.headers["etag"] == f'"{hashlib.sha256(b"ID3 a better take").hexdigest()}"'
    # The old version in the URL no longer names these bytes, so they must not be cached forever.
    assert response.headers["cache-control"] == "public, max-age=300"


async def test_a_missing_library_is_a_wiring_error() -> None:
    app = FastAPI()
    app.include_router(router)
    transport = httpx.ASGITransport(app=app)

    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with pytest.raises(TypeError, match=r"app\.state\.audio"):
            await client.get("/audio/es/hotline/welcome.mp3")


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, False), ("", False), ('"abc"', True), ('W/"abc"', True), ('"x", "abc"', True), ("*", True)],
)
def test_etag_matches(header: str | None, expected: bool) -> None:
    assert etag_matches(header, '"abc"') is expected
