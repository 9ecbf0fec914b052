"""FLOIP Flow Results: survey packages, their descriptor and rows, the JSON:API and `rimay export floip`."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
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
from app.floip.errors import InvalidCursor
from app.floip.keys import FloipKeys
from app.floip.responses import StoredAnswer, open_type
from app.floip.surveys import survey_questions
from app.flows.model import SKIPPED, FlowDefinition
from app.privacy.pseudonym import Pseudonymizer
from app.settings import Settings, get_settings
from app.survey.models import Answer, SurveyRun
from tests.floip_spec import check_descriptor, check_rows
from tests.outbound import NEEDLES, NUMBER, Sessions

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


async def test_rows_are_what_was_stored(partner: Partner, stored: Stored) -> None:
    """Order, ids, typed responses (a skip is null), metadata; contact ids are per package pseudonyms."""
    response = await partner.get(f"{BASE}/{stored.package}/responses")
    assert response.headers["content-type"] == "application/vnd.api+json"
    body = response.json()
    assert (body["data"]["type"], body["data"]["id"]) == ("responses", stored.package)
    assert body["links"]["next"] is None
    rows = body["data"]["attributes"]["responses"]
    contact, spoken_contact = rows[0][2], rows[-1][2]
    written = {"type": "text", "type_options": {}}
    audio = {"type": "audio", "type_options": {}}
    expected = [
        ("06:00", contact, stored.run, "agua", "si", {"channel": "voice", "language": "que"}),
        ("06:01", contact, stored.run, "hijos", 3, {"channel": "sms", "language": "spa"}),
        ("06:02", contact, stored.run, "confianza", None, {"channel": "voice", "language": None}),
        (
            "06:03",
            contact,
            stored.run,
            "comentario",
            "Me preocupa el agua",
            {"channel": "sms", "language": "spa", **written},
        ),
        # Spoken: a voice identifies a person, so the recording stays here and the response is null.
        (
            "06:04",
            spoken_contact,
            stored.spoken_run,
            "comentario",
            None,
            {"channel": "voice", "language": "que", **audio},
        ),
    ]
    assert rows == [
        [f"2026-11-25T{at}:00.000000+00:00", str(a.id), who, run.public_id, question, value, metadata]
        for a, (at, who, run, question, value, metadata) in zip(stored.answers, expected, strict=True)
    ]
    assert datetime.fromisoformat(rows[0][0]).utcoffset() == timedelta(0)
    assert contact not in {stored.caller.pseudonym, str(stored.caller.id), spoken_contact}
    assert re.fullmatch(r"[0-9a-f]{32}", contact)
    [[_, _, other_contact, *_]] = await partner.rows(f"{BASE}/{stored.other_package}/responses")
    assert other_contact != contact
    assert await partner.rows(f"{BASE}/{stored.package}/responses") == rows


@pytest.mark.parametrize(
    ("value", "channel", "expected"),
    [
        ("recording", "voice", "audio"),
        ("text", "sms", "text"),
        (SKIPPED, "voice", "audio"),
        (SKIPPED, "sms", "text"),
    ],
)
def test_an_open_row_says_what_the_caller_was_asked_for(value: str, channel: str, expected: str) -> None:
    """Spoken is audio, written is text; a skip takes its channel's type, as the spec wants one per row."""
    stored = StoredAnswer(1, T0, "comentario", value, channel, "es", None, "r" * 32)
    assert open_type(stored) == expected


async def test_an_under_18s_answers_never_reach_partners(
    partner: Partner, stored: Stored, environment: Path
) -> None:
    """A run closed as ineligible is in no row, no page, no export, and not in `created`."""
    descriptor = (await partner.get(f"{BASE}/{stored.package}")).json()["data"]["attributes"]
    assert descriptor["created"] == "2026-11-25T06:00:00.000000+00:00"
    rows = await partner.rows(f"{BASE}/{stored.package}/responses", **{"page[size]": "1000"})
    assert stored.minor_run.public_id not in {row[3] for row in rows}
    assert "menor_18" not in {row[5] for row in rows}
    assert len(rows) == len(stored.answers)
    _, exported = await export(environment)
    assert exported == rows


async def test_only_results_keys_are_let_in(partner: Partner, stored: Stored, sessions: Sessions) -> None:
    """401 without a key, 403 with a statistics key, 200 with a results key, on every route."""
    stats = await bearer(sessions, "stats:read")
    for url in (BASE, f"{BASE}/{stored.package}", f"{BASE}/{stored.package}/responses"):
        assert (await partner.client.get(url)).status_code == 401
        assert (await partner.client.get(url, headers=stats)).status_code == 403
        assert (await partner.get(url)).status_code == 200


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


async def test_pages_of_one_walk_every_row(partner: Partner, stored: Stored) -> None:
    """links.next leads through all rows once, then is null."""
    url: str | None = f"{BASE}/{stored.package}/responses?page%5Bsize%5D=1"
    seen: list[str] = []
    while url is not None and len(seen) <= len(stored.answers):
        body = (await partner.get(url)).json()
        seen += [row[1] for row in body["data"]["attributes"]["responses"]]
        url = body["links"]["next"]
    assert seen == [str(a.id) for a in stored.answers]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2026-11-25T06:00:00+00:00", None, ["hijos", "confianza", "comentario", "comentario"]),
        (None, "2026-11-25T01:01:00-05:00", ["agua", "hijos"]),
        ("2026-11-25T06:00:30Z", "2026-11-25T06:01:00Z", ["hijos"]),
    ],
)
async def test_timestamp_filters(
    partner: Partner, stored: Stored, start: str | None, end: str | None, expected: list[str]
) -> None:
    """Start is exclusive and end inclusive, as the spec says; offsets are honoured."""
    given = {"filter[start-timestamp]": start, "filter[end-timestamp]": end}
    params = {name: value for name, value in given.items() if value is not None}
    rows = await partner.rows(f"{BASE}/{stored.package}/responses", **params)
    assert [row[4] for row in rows] == expected


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"page[afterCursor]": "not-a-cursor"}, "invalid_cursor"),
        ({"page[afterCursor]": "A" * 27}, "invalid_cursor"),
        ({"page[size]": "0"}, "invalid_page_size"),
        ({"page[size]": "1001"}, "invalid_page_size"),
        ({"page[size]": "ten"}, "invalid_page_size"),
        ({"filter[start-timestamp]": "yesterday"}, "invalid_timestamp"),
        ({"filter[end-timestamp]": "2026-11-25T06:00:00"}, "invalid_timestamp"),
        ({"filter[end-timestamp]": "0001-01-01T00:00:00+14:00"}, "invalid_timestamp"),
        ({"page[beforeCursor]": "x"}, "unsupported_parameter"),
    ],
)
async def test_bad_parameters_are_400(
    partner: Partner, stored: Stored, params: dict[str, str], code: str
) -> None:
    """A stable error code, never a 500."""
    response = await partner.get(f"{BASE}/{stored.package}/responses", **params)
    assert (response.status_code, response.json()["error"]) == (400, code)


async def test_unknown_and_malformed_packages(partner: Partner) -> None:
    """404 for a UUID no survey has, 400 for something that is not a UUID."""
    for url in (f"{BASE}/{uuid.uuid4()}", f"{BASE}/{uuid.uuid4()}/responses"):
        response = await partner.get(url)
        assert (response.status_code, response.json()["error"]) == (404, "package_not_found")
    response = await partner.get(f"{BASE}/not-a-uuid/responses")
    assert (response.status_code, response.json()["error"]) == (400, "invalid_package_id")


async def test_no_phone_number_leaves(partner: Partner, stored: Stored) -> None:
    """Neither the number nor the caller's pseudonym is anywhere in the API output."""
    urls = [BASE, f"{BASE}/{stored.package}", *(f"{BASE}/{p}/responses" for p in stored.packages)]
    dump = "\n".join([(await partner.get(url)).text for url in urls])
    assert not [needle for needle in (*NEEDLES, stored.caller.pseudonym) if needle in dump]


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
