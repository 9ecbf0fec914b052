"""The example compose.yaml: every Rimay process shares the same settings, and runs commands that exist."""

from __future__ import annotations

from typing import Any

import yaml
from typer.main import get_command

from app.cli import app
from tests.conftest import ROOT

SHARED = {
    "RIMAY_ENV",
    "RIMAY_PUBLIC_BASE_URL",
    "RIMAY_DATABASE_URL",
    "RIMAY_SECRET_KEY",
    "RIMAY_CONTACT_KEY",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "RIMAY_TWILIO_NUMBER",
}


def compose() -> dict[str, Any]:
    """The parsed file, anchors resolved."""
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def test_every_rimay_process_shares_secrets_database_and_data() -> None:
    """App, worker and migration see one database, one set of secrets and one data volume."""
    services = compose()["services"]
    rimay = {name: services[name] for name in ("app", "worker", "migrate")}
    environments = [service["environment"] for service in rimay.values()]
    assert all(environment == environments[0] for environment in environments)
    assert set(environments[0]) >= SHARED
    assert environments[0]["RIMAY_ENV"] == "production"
    assert environments[0]["RIMAY_PUBLIC_BASE_URL"].startswith("https://")
    assert environments[0]["RIMAY_DATABASE_URL"].startswith("postgresql://")
    assert all(service["volumes"] == ["rimay-data:/data"] for service in rimay.values())
    for value in environments[0].values():
        assert not str(value).startswith(("AC", "+")), "secrets and numbers come from .env, never the file"


def test_the_commands_exist_and_only_the_proxy_is_public() -> None:
    """`rimay migrate` and `rimay worker` are real commands; the app is reached only through TLS."""
    services = compose()["services"]
    commands = set(get_command(app).commands)  # type: ignore[attr-defined]
    for name in ("migrate", "worker"):
        program, command = services[name]["command"]
        assert program == "rimay"
        assert command in commands
    assert "ports" not in services["app"]
    assert services["proxy"]["ports"] == ["80:80", "443:443"]
    assert "respond /metrics 404" in compose()["configs"]["caddyfile"]["content"]
