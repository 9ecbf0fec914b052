"""FLOIP Flow Results packages: survey questions, package ids, the descriptor, the list and new versions."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from app.floip.errors import InvalidCursor
from app.floip.keys import FloipKeys
from app.floip.surveys import survey_questions
from app.settings import Settings
from tests.floip_spec import check_descriptor, check_rows
from tests.floip_support import (
    BASE,
    FLOW,
    QUESTIONS,
    Partner,
    Stored,
    T,
    edited,
    environment,
    export,
    partner,
    stored,
)

__all__ = ["environment", "partner", "stored"]  # fixtures shared from floip_support


def test_questions_are_those_reachable_from_the_consent_in_order() -> None:
    """In the order callers meet them; menus, ineligibility and the other survey are not walked into."""
    assert list(survey_questions(FLOW, "percepcion")) == [*QUESTIONS]
    assert list(survey_questions(FLOW, "salud")) == ["post"]


def test_package_ids_are_stable_v4_uuids_and_cursors_are_signed() -> None:
    """The same survey always gets the same id; a cursor works only unchanged and for its package."""
    keys, other = FloipKeys(b"k" * 32), FloipKeys(b"j" * 32)
    package = keys.package_id("encuesta", "percepcion")
    assert package == keys.package_id("encuesta", "percepcion")
    assert uuid.UUID(package).version == 4
    assert package not in {keys.package_id("encuesta", "salud"), other.package_id("encuesta", "percepcion")}
    cursor = keys.cursor(package, 42)
    assert keys.read_cursor(package, cursor) == 42
    tampered = cursor[:5] + ("A" if cursor[5] != "A" else "B") + cursor[6:]
    for bad, owner in [(tampered, package), (cursor, keys.package_id("encuesta", "salud")), ("42", package)]:
        with pytest.raises(InvalidCursor):
            keys.read_cursor(owner, bad)


async def test_the_descriptor_follows_the_spec(partner: Partner, stored: Stored) -> None:
    """Required properties, a stable id, the API resource, and each question's type and options."""
    response = await partner.get(f"{BASE}/{stored.package}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.api+json"
    data = response.json()["data"]
    assert (data["type"], data["id"]) == ("packages", stored.package)
    descriptor = data["attributes"]
    check_descriptor(descriptor)
    assert descriptor["name"] == "rimay-encuesta-percepcion"
    # The original version: created at the first answer of an adult (not the under-18's), modified alike.
    assert descriptor["created"] == descriptor["modified"] == "2026-11-25T06:00:00.000000+00:00"
    [resource] = descriptor["resources"]
    assert resource["api-data-url"] == f"https://hotline.example.org{BASE}/{stored.package}/responses"
    assert resource["schema"]["language"] == "spa"
    questions = resource["schema"]["questions"]
    assert list(questions) == QUESTIONS
    assert {key: questions[key] for key in ("agua", "hijos", "confianza", "comentario")} == {
        "agua": {
            "type": "select_one",
            "label": "¿El agua cambió?",
            "type_options": {"choices": ["si", "no", "no_sabe"]},
        },
        "hijos": {"type": "numeric", "label": "¿Cuántos hijos?", "type_options": {"range": [0, 30]}},
        "confianza": {"type": "select_one", "label": "texto", "type_options": {"choices": ["poco", "mucho"]}},
        "comentario": {"type": "open", "label": "texto", "type_options": {}},
    }
    check_rows(descriptor, await partner.rows(f"{BASE}/{stored.package}/responses"))


async def test_the_list_shows_each_survey(partner: Partner, stored: Stored) -> None:
    """Each survey is a package with its name, title, created and modified."""
    body = (await partner.get(BASE)).json()
    listed = {item["id"]: item for item in body["data"]}
    assert body["links"]["self"] == f"https://hotline.example.org{BASE}"
    assert listed[stored.package]["type"] == "packages"
    assert listed[stored.package]["attributes"] == {
        "name": "rimay-encuesta-percepcion",
        "title": "Encuesta: percepcion",
        "created": "2026-11-25T06:00:00.000000+00:00",
        "modified": "2026-11-25T06:00:00.000000+00:00",
    }
    assert listed[stored.other_package]["attributes"]["name"] == "rimay-encuesta-salud"


async def test_a_question_removed_from_the_flow_stays_in_the_package(
    app: FastAPI, partner: Partner, stored: Stored, environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same package id, same schema (the spec forbids removing or changing a question), same rows."""
    before = (await partner.get(f"{BASE}/{stored.package}")).json()["data"]["attributes"]
    rows = await partner.rows(f"{BASE}/{stored.package}/responses")

    def drop_children(nodes: dict[str, Any]) -> None:
        del nodes["children"]
        nodes["agua"]["next"] = "trust"
        nodes["agua"]["prompt"]["es"] = "¿Cambió el agua del río?"  # a reworded label is not a new version

    flow = edited(drop_children)
    assert "hijos" not in survey_questions(flow, "percepcion")
    app.state.flows = {**app.state.flows, flow.id: flow}
    monkeypatch.setattr("app.floip.cli.load_flows", lambda _: {flow.id: flow})
    after = (await partner.get(f"{BASE}/{stored.package}")).json()["data"]["attributes"]
    assert after == before
    assert await partner.rows(f"{BASE}/{stored.package}/responses") == rows
    assert [row[5] for row in rows if row[4] == "hijos"] == [3]
    descriptor, exported = await export(environment)
    check_rows(descriptor, exported)
    assert descriptor["id"] == stored.package
    assert descriptor["resources"][0]["schema"]["questions"] == before["resources"][0]["schema"]["questions"]
    assert exported == rows


async def test_a_question_added_to_the_flow_is_a_new_version(
    app: FastAPI, partner: Partner, stored: Stored
) -> None:
    """Appended to the schema; `modified` moves on, `created` and the package id do not."""
    before = (await partner.get(f"{BASE}/{stored.package}")).json()["data"]["attributes"]

    def add_question(nodes: dict[str, Any]) -> None:
        nodes["trust"]["next"] = "dust"
        nodes["dust"] = {
            "type": "question",
            "question": "polvo",
            "prompt": T,
            "choices": "likert",
            "next": "comment",
        }

    flow = edited(add_question)
    app.state.flows = {**app.state.flows, flow.id: flow}
    started = datetime.now(UTC)
    response = await partner.get(f"{BASE}/{stored.package}")
    after = response.json()["data"]["attributes"]
    check_descriptor(after)
    assert (response.json()["data"]["id"], after["created"]) == (stored.package, before["created"])
    assert started <= datetime.fromisoformat(after["modified"]) <= datetime.now(UTC)
    questions = after["resources"][0]["schema"]["questions"]
    assert list(questions) == [*QUESTIONS, "polvo"]  # asked before comentario, published after it
    assert questions["polvo"]["type_options"] == {"choices": ["poco", "mucho"]}
    assert (await partner.get(f"{BASE}/{stored.package}")).json()["data"]["attributes"] == after


async def test_a_package_without_answers_keeps_its_timestamps(partner: Partner, settings: Settings) -> None:
    """created and modified are when the package was first read, the same on every later read."""
    package = FloipKeys(settings.master_secret).package_id("encuesta", "percepcion")
    started = datetime.now(UTC)
    first = (await partner.get(f"{BASE}/{package}")).json()["data"]["attributes"]
    check_descriptor(first)
    assert first["created"] == first["modified"]
    assert started <= datetime.fromisoformat(first["created"]) <= datetime.now(UTC)
    await asyncio.sleep(0.01)
    listed = {item["id"]: item["attributes"] for item in (await partner.get(BASE)).json()["data"]}
    assert (listed[package]["created"], listed[package]["modified"]) == (first["created"], first["modified"])
    assert (await partner.get(f"{BASE}/{package}")).json()["data"]["attributes"] == first
