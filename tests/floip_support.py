"""What the FLOIP Flow Results tests share: a survey flow, its stored answers, a partner, the CLI export."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from typer.testing import CliRunner

from app.apikeys.service import ApiKeyService
from app.callers.models import Caller
from app.cli import app as cli
from app.floip.keys import FloipKeys
from app.flows.model import SKIPPED, FlowDefinition
from app.privacy.pseudonym import Pseudonymizer
from app.settings import Settings, get_settings
from app.survey.models import Answer, SurveyRun
from tests.outbound import NUMBER, Sessions

T = {"es": "texto", "qu": "rimay"}
SYSTEM = "invalid no_input goodbye error after_article after_last_article no_number"
SMS = "help opted_out opted_in more repeat next back main_menu change_language news_subscribed skip"
NODES = """
_text: &t {es: texto, qu: rimay}
_yes_no: &yes_no {"1": {name: si, label: *t}, "2": {name: "no", label: *t}, "3": {name: no_sabe, label: *t}}
main: {type: menu, prompt: *t, options: {"1": {next: consent, label: *t}}}
consent: {type: consent, prompt: *t, survey: percepcion, next: same, back: main}
same: {type: profile_check, prompt: *t, next: gender, same: agua}
gender: {type: question, question: genero, profile: gender, prompt: *t, choices: *yes_no, next: age}
age: {type: question, question: edad, profile: age_band, prompt: *t, next: agua,
      choices: {"1": {name: menor_18, label: *t, next: minor}, "2": {name: adulto, label: *t}}}
minor: {type: message, prompt: *t, ineligible_for: percepcion, next: health}
agua: {type: question, prompt: {es: "¿El agua cambió?", qu: "¿Yaku?"}, choices: *yes_no, next: children}
children: {type: question, question: hijos, prompt: {es: "¿Cuántos hijos?", qu: "¿Hayka?"},
           number: {min: 0, max: 30}, next: trust}
trust: {type: question, question: confianza, prompt: *t, choices: likert, next: comment}
comment: {type: question, question: comentario, prompt: *t, open: {}, next: thanks}
thanks: {type: message, prompt: *t, completes: percepcion, next: main}
health: {type: consent, prompt: *t, survey: salud, next: post, back: main}
post: {type: question, prompt: *t, choices: *yes_no, next: bye}
bye: {type: end, prompt: *t}
"""
FLOW = FlowDefinition.model_validate(
    {
        "id": "encuesta",
        "title": "Encuesta",
        "languages": ["es", "qu"],
        "start": "main",
        "main": "main",
        "system": dict.fromkeys(SYSTEM.split(), T),
        "sms": dict.fromkeys(SMS.split(), T),
        "scales": {"likert": {"1": {"name": "poco", "label": T}, "2": {"name": "mucho", "label": T}}},
        "nodes": {key: node for key, node in yaml.safe_load(NODES).items() if not key.startswith("_")},
    }
)
T0 = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
BASE = "/api/v1/flow-results/packages"
QUESTIONS = ["genero", "edad", "agua", "hijos", "confianza", "comentario"]


@dataclass
class Stored:
    """What the test put in the database."""

    caller: Caller
    run: SurveyRun
    spoken_run: SurveyRun
    minor_run: SurveyRun
    answers: list[Answer]
    """The answers of `percepcion` that partners may see, in row id order."""
    package: str
    other_package: str

    @property
    def packages(self) -> tuple[str, str]:
        """Both surveys' package ids."""
        return self.package, self.other_package


@pytest.fixture
async def stored(sessions: Sessions, settings: Settings) -> Stored:
    """Runs of `percepcion` (a choice, a number, a skip, written and spoken comments, an under-18's run)."""
    keys = FloipKeys(settings.master_secret)
    async with sessions() as db:
        caller = Caller(pseudonym=Pseudonymizer(settings.master_secret).pseudonym(NUMBER))
        db.add(caller)
        await db.flush()
        run = SurveyRun(public_id="r1" * 16, caller_id=caller.id, flow_id="encuesta", survey="percepcion")
        other = SurveyRun(public_id="r2" * 16, caller_id=caller.id, flow_id="encuesta", survey="salud")
        spoken = SurveyRun(public_id="r3" * 16, caller_id=None, flow_id="encuesta", survey="percepcion")
        minor = SurveyRun(public_id="r4" * 16, flow_id="encuesta", survey="percepcion", status="ineligible")
        db.add_all([run, other, spoken, minor])
        await db.flush()
        # The under-18's answers come first, so a leak would also show in `created`.
        db.add_all(
            [
                answer(minor, "genero", "si", "voice", "es", T0 - timedelta(hours=1)),
                answer(minor, "edad", "menor_18", "voice", "es", T0 - timedelta(minutes=59)),
            ]
        )
        await db.flush()
        given = [
            (run, "agua", "si", "voice", "qu", None),
            (run, "hijos", "3", "sms", "es", None),
            (run, "confianza", SKIPPED, "voice", None, None),
            (run, "comentario", "text", "sms", "es", "Me preocupa el agua"),
            (spoken, "comentario", "recording", "voice", "qu", None),
        ]
        answers = [
            answer(r, q, v, channel, lang, T0 + timedelta(minutes=i), text)
            for i, (r, q, v, channel, lang, text) in enumerate(given)
        ]
        for item in answers:  # one at a time, so row ids follow the list
            db.add(item)
            await db.flush()
        db.add(answer(other, "post", "no", "sms", "es", T0 + timedelta(minutes=5)))
        await db.commit()
    packages = (keys.package_id("encuesta", "percepcion"), keys.package_id("encuesta", "salud"))
    return Stored(caller, run, spoken, minor, answers, *packages)


def answer(
    run: SurveyRun,
    question: str,
    value: str,
    channel: str,
    lang: str | None,
    at: datetime,
    text: str | None = None,
) -> Answer:
    """An answer of a run."""
    kind = "open" if question == "comentario" else "numeric" if question == "hijos" else "select_one"
    fields = {"question_id": question, "value": value, "channel": channel, "language": lang, "created_at": at}
    return Answer(run_id=run.id, flow_id=run.flow_id, kind=kind, text=text, **fields)


def edited(change: Callable[[dict[str, Any]], None]) -> FlowDefinition:
    """The test flow after an edit to its nodes."""
    data = FLOW.model_dump(exclude_none=True)
    change(data["nodes"])
    return FlowDefinition.model_validate(data)


@dataclass
class Partner:
    """A partner with a results key, reading the app that serves the test survey flow."""

    client: httpx.AsyncClient
    headers: dict[str, str]

    async def get(self, url: str, **params: str) -> httpx.Response:
        """GET with the partner's key."""
        return await self.client.get(url, params=params, headers=self.headers)

    async def rows(self, url: str, **params: str) -> list[list[Any]]:
        """The rows of one responses page."""
        response = await self.get(url, **params)
        assert response.status_code == 200, response.text
        rows: list[list[Any]] = response.json()["data"]["attributes"]["responses"]
        return rows


@pytest.fixture
async def partner(app: FastAPI, client: httpx.AsyncClient, sessions: Sessions) -> Partner:
    """The test survey flow among the app's flows, and a partner allowed to read results."""
    app.state.flows = {**app.state.flows, FLOW.id: FLOW}
    return Partner(client, await bearer(sessions, "results:read"))


async def bearer(sessions: Sessions, *scopes: str) -> dict[str, str]:
    """The header of a new key with these scopes."""
    async with sessions() as db:
        _, key = await ApiKeyService(db).create("Test partner", scopes)
        await db.commit()
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def environment(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI configured like the app under test, its flows being the test survey flow."""
    monkeypatch.setenv("RIMAY_DATABASE_URL", settings.sqlalchemy_url)
    monkeypatch.setenv("RIMAY_SECRET_KEY", settings.master_secret.decode())
    monkeypatch.setenv("RIMAY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr("app.floip.cli.load_flows", lambda _: {FLOW.id: FLOW})
    get_settings.cache_clear()
    return tmp_path / "out"


async def export(out: Path) -> tuple[dict[str, Any], list[list[Any]]]:
    """Run `rimay export floip encuesta OUT --survey percepcion`; the descriptor and rows it wrote."""
    args = ["export", "floip", "encuesta", str(out), "--survey", "percepcion"]
    try:  # in a thread: the command runs its own event loop, as it does from a shell
        result = await asyncio.to_thread(CliRunner().invoke, cli, args)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert str(out / "datapackage.json") in result.output
    descriptor: dict[str, Any] = json.loads((out / "datapackage.json").read_text())
    rows: list[list[Any]] = json.loads((out / descriptor["resources"][0]["path"]).read_text())
    return descriptor, rows
