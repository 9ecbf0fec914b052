"""`/healthz` tells whether the database answers."""

from __future__ import annotations

from pathlib import Path

import httpx

from app.main import create_app
from app.settings import Settings
from tests.conftest import ROOT


async def test_healthz_ok(client: httpx.AsyncClient) -> None:
    """200 with the loaded flows when the database answers."""
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "flows": ["hotline"]}


async def test_healthz_reports_an_unreachable_database(tmp_path: Path) -> None:
    """503 with the reason, not a 500, when the database is down."""
    settings = Settings(
        data_dir=tmp_path,
        database_url="postgresql://nobody@127.0.0.1:9/none",
        flows_dir=ROOT / "voice_flows",
        audio_dir=ROOT / "audio",
    )
    app = create_app(settings)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            response = await http.get("/healthz")
    finally:
        await app.state.engine.dispose()
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"
