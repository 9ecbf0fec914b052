"""`rimay export floip`: the package it writes, and the surveys it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app as cli
from app.settings import get_settings
from tests.floip_spec import check_descriptor, check_rows
from tests.floip_support import BASE, Partner, Stored, environment, export, partner, stored
from tests.outbound import NEEDLES

__all__ = ["environment", "partner", "stored"]  # fixtures shared from floip_support


async def test_export_writes_the_package(partner: Partner, stored: Stored, environment: Path) -> None:
    """datapackage.json points at the rows file, and the rows are those the API serves."""
    descriptor, rows = await export(environment)
    check_descriptor(descriptor)
    check_rows(descriptor, rows)
    assert descriptor["id"] == stored.package
    path = descriptor["resources"][0]["path"]
    assert path == "rimay-encuesta-percepcion-responses.json"
    assert rows == await partner.rows(f"{BASE}/{stored.package}/responses")
    api = (await partner.get(f"{BASE}/{stored.package}")).json()["data"]["attributes"]
    assert descriptor["resources"][0]["schema"] == api["resources"][0]["schema"]
    assert (descriptor["created"], descriptor["modified"]) == (api["created"], api["modified"])
    dump = (environment / "datapackage.json").read_text() + (environment / path).read_text()
    assert not [needle for needle in (*NEEDLES, stored.caller.pseudonym) if needle in dump]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "no flow 'nope'"),
        (["encuesta"], "has several surveys, choose one: percepcion, salud"),
        (["encuesta", "--survey", "nope"], "has no survey 'nope'"),
    ],
)
def test_export_refuses_unknown_surveys(environment: Path, args: list[str], message: str) -> None:
    """Exit 1 with a message that names what exists."""
    flow, *options = args
    try:
        result = CliRunner().invoke(cli, ["export", "floip", flow, str(environment), *options])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert message in result.output
    assert not environment.exists()
