"""The perception survey by voice and SMS: consent, profile, answers, resuming, restarting, under-18s."""

from __future__ import annotations

import asyncio
from typing import TypeVar

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.apikeys.service import ApiKeyService
from app.db.base import Base
from app.db.engine import make_sync_engine
from app.flows.model import FlowDefinition
from app.recordings.models import Recording
from app.sessions.models import CallSession, Interaction
from app.settings import Settings
from app.simulator import Call, Screen, TextPhone, TwilioSigner, parse_twiml
from app.sms.models import InboundMessage
from app.sms.segments import fits
from app.survey.models import Answer, ConsentCount, SurveyRun
from tests.conftest import CALLER
from tests.outbound import ACCOUNT_SID, Sessions

PROFILE = ["1", "3", "2"]  # mujer, 30-44, the second community
LIKERT = ["5", "4", "*", "3", "2", "1", "5"]
SPOKEN = "#"  # the simulator answers a <Record> with 7 s of speech, ended with #
EXPECTED = [
    ("genero", "mujer"),
    ("edad", "30_44"),
    ("comunidad", "morococha"),
    ("agua", "mucho"),
    ("aire", "bastante"),
    ("empleo", "skipped"),
    ("salud", "algo"),
    ("confianza_empresa", "poco"),
    ("confianza_estado", "nada"),
    ("informacion", "mucho"),
]
SPOKEN_ANSWER = ("comentario", "recording")


async def walk(phone: Call, keys: list[str]) -> list[Screen]:
    """Answer each screen with the next key; hang up when the script ends."""
    script = iter(keys)
    return [screen async for screen in phone.screens(lambda _: next(script, None))]


M = TypeVar("M", bound=Base)


def rows(database_url: str, model: type[M]) -> list[M]:
    """Every row of a table, through a separate connection."""
    engine = make_sync_engine(database_url)
    try:
        with engine.connect() as connection:
            return [model(**row._mapping) for row in connection.execute(select(model.__table__))]
    finally:
        engine.dispose()


def answers(database_url: str) -> list[tuple[str, str]]:
    """(question, value) of every stored answer, in order."""
    return [(a.question_id, a.value) for a in sorted(rows(database_url, Answer), key=lambda a: a.id)]


def runs(database_url: str) -> list[SurveyRun]:
    """Every survey run, oldest first."""
    return sorted(rows(database_url, SurveyRun), key=lambda r: r.id)


@pytest.fixture(autouse=True)
def twilio_account(app: FastAPI, outbound: Settings) -> None:
    """The app knows its Twilio account, so recordings from it are accepted."""
    app.state.settings = outbound


def _call(client: httpx.AsyncClient, signer: TwilioSigner, flows: dict[str, FlowDefinition]) -> Call:
    return Call(client=client, signer=signer, flows=flows, caller=CALLER, account_sid=ACCOUNT_SID)


@pytest.mark.parametrize(("key", "language"), [("1", "es"), ("2", "qu")])
async def test_a_caller_completes_the_survey_by_voice(
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    database_url: str,
    key: str,
    language: str,
) -> None:
    """Consent, profile, seven questions and a spoken comment: each answer stored once by name."""
    hotline = flows["hotline"]
    screens = await walk(_call(client, signer, flows), [key, "2", "1", *PROFILE, *LIKERT, SPOKEN])
    assert screens[2].prompts[0].text == hotline.nodes["survey_consent"].prompt[language]
    assert screens[-2].record_action is not None, "the open question records the caller's voice"
    assert screens[-1].prompts[0].text == hotline.nodes["survey_thanks"].prompt[language]
    assert answers(database_url) == [*EXPECTED, SPOKEN_ANSWER]
    [recording] = rows(database_url, Recording)
    assert recording.status == "pending", "the worker fetches it from Twilio, then deletes it there"
    [spoken] = [a for a in rows(database_url, Answer) if a.question_id == "comentario"]
    assert spoken.recording_id == recording.id
    [run] = runs(database_url)
    assert (run.status, run.gender, run.age_band, run.community) == (
        "completed",
        "mujer",
        "30_44",
        "morococha",
    )
    [count] = rows(database_url, ConsentCount)
    assert (count.accepted, count.declined) == (1, 0)
    later = [i for i in rows(database_url, Interaction) if i.node == "q_water"]
    assert later
    assert all(i.gender == "mujer" for i in later)


@pytest.mark.parametrize(("key", "language"), [("1", "es"), ("2", "qu")])
async def test_the_same_survey_by_sms(
    client: httpx.AsyncClient, signer: TwilioSigner, database_url: str, key: str, language: str
) -> None:
    """Numbered choices by text; answers land in the same results, with the channel recorded."""
    phone = TextPhone(client=client, signer=signer, sender=CALLER)
    for body in ["hola", key, "2", "1", *PROFILE, *LIKERT, "Yakuqa qhillichasqam. Waqyaway 987654321"]:
        await phone.text(body)
    assert answers(database_url) == [*EXPECTED, ("comentario", "text")]
    stored = rows(database_url, Answer)
    [written] = [a for a in stored if a.question_id == "comentario"]
    assert written.text == "Yakuqa qhillichasqam. Waqyaway [phone]", "numbers in free text are masked"
    assert {(a.channel, a.language) for a in stored} == {("sms", language)}
    assert runs(database_url)[0].status == "completed"


async def test_declining_is_counted_never_stored_for_the_person(
    client: httpx.AsyncClient, signer: TwilioSigner, flows: dict[str, FlowDefinition], database_url: str
) -> None:
    """Any key but 1 goes back to the menu: a count goes up, nothing links it to the caller."""
    screens = await walk(_call(client, signer, flows), ["1", "2", "7"])
    assert screens[-1].prompts[0].text == flows["hotline"].nodes["main"].prompt["es"]
    [count] = rows(database_url, ConsentCount)
    assert (count.accepted, count.declined) == (0, 1)
    assert runs(database_url) == []
    assert not [i for i in rows(database_url, Interaction) if i.node == "survey_consent"]


async def test_hanging_up_mid_survey_resumes_without_asking_again(
    client: httpx.AsyncClient, signer: TwilioSigner, flows: dict[str, FlowDefinition], database_url: str
) -> None:
    """Hang up after each question; each new call offers to continue at the next unanswered one."""
    hotline = flows["hotline"]
    await walk(_call(client, signer, flows), ["1", "2", "1", PROFILE[0]])
    keys = [*PROFILE[1:], *LIKERT, "*"]
    for number, key in enumerate(keys):
        # The offer after the greeting, or (every other call) main-menu key 2 and the survey's own offer.
        via_menu = number % 2 == 1
        screens = await walk(_call(client, signer, flows), ["9", "2", "1", key] if via_menu else ["1", key])
        assert screens[0].prompts[-1].text == hotline.nodes["survey_offer"].prompt["es"]
        if via_menu:
            assert screens[2].prompts[0].text == hotline.nodes["survey"].prompt["es"]
    assert answers(database_url) == [*EXPECTED, ("comentario", "skipped")]
    assert [run.status for run in runs(database_url)] == ["completed"]


async def test_starting_again_closes_the_unfinished_run(
    client: httpx.AsyncClient, signer: TwilioSigner, flows: dict[str, FlowDefinition], database_url: str
) -> None:
    """2 at the survey's own resume offer: the old run is kept as restarted and a new one begins."""
    await walk(_call(client, signer, flows), ["1", "2", "1", "1", "3"])
    # Any key but 1 at the offer after the greeting leads to the main menu, where 2 is the survey.
    screens = await walk(_call(client, signer, flows), ["2", "2", "2", "1"])
    assert screens[1].prompts[0].text == flows["hotline"].nodes["main"].prompt["es"]
    assert screens[3].prompts[0].text == flows["hotline"].nodes["survey_consent"].prompt["es"]
    assert [run.status for run in runs(database_url)] == ["restarted", "open"]


async def test_under_18_is_thanked_and_not_surveyed(
    client: httpx.AsyncClient, signer: TwilioSigner, flows: dict[str, FlowDefinition], database_url: str
) -> None:
    """The under-18 answer ends the run as ineligible; no perception question is asked."""
    screens = await walk(_call(client, signer, flows), ["1", "2", "1", "2", "1"])
    assert screens[-1].prompts[0].text == flows["hotline"].nodes["survey_minor"].prompt["es"]
    assert answers(database_url) == [("genero", "hombre"), ("edad", "menor_18")]
    assert runs(database_url)[0].status == "ineligible"


async def test_the_same_person_reuses_their_profile(
    client: httpx.AsyncClient, signer: TwilioSigner, flows: dict[str, FlowDefinition], database_url: str
) -> None:
    """A returning phone is asked if it is the same person; yes skips the profile and reuses it."""
    hotline = flows["hotline"]
    await walk(_call(client, signer, flows), ["1", "2", "1", *PROFILE, *LIKERT, "*"])
    screens = await walk(_call(client, signer, flows), ["2", "1", "1", "3"])
    assert screens[2].prompts[0].text == hotline.nodes["survey_same_person"].prompt["es"]
    assert screens[3].prompts[0].text == hotline.nodes["q_water"].prompt["es"]
    second = runs(database_url)[1]
    assert (second.gender, second.age_band, second.community) == ("mujer", "30_44", "morococha")
    mine = [(a.question_id, a.value) for a in rows(database_url, Answer) if a.run_id == second.id]
    assert sorted(mine) == sorted(
        [("genero", "mujer"), ("edad", "30_44"), ("comunidad", "morococha"), ("agua", "algo")]
    )


async def test_another_person_on_the_same_phone_gives_their_own_profile(
    client: httpx.AsyncClient, signer: TwilioSigner, flows: dict[str, FlowDefinition], database_url: str
) -> None:
    """2 at the check: the profile questions are asked again, for this session."""
    await walk(_call(client, signer, flows), ["1", "2", "1", *PROFILE, *LIKERT, "*"])
    screens = await walk(_call(client, signer, flows), ["2", "1", "2", "2"])
    assert screens[3].prompts[0].text == flows["hotline"].nodes["q_gender"].prompt["es"]
    sessions = sorted(rows(database_url, CallSession), key=lambda s: s.started_at)
    assert sessions[-1].gender == "hombre"


async def test_concurrent_deliveries_of_an_answer_store_it_once(phone: Call, database_url: str) -> None:
    """Five simultaneous deliveries of one answer: one stored answer, one reply."""
    first = await phone.post("/twilio/voice", {})
    step = parse_twiml(first.text, phone.flows).gather_action
    assert step is not None
    for key in ["1", "2", "1"]:
        answer = await phone.post(step, {"Digits": key})
        step = parse_twiml(answer.text, phone.flows).gather_action
        assert step is not None
    replies = await asyncio.gather(*(phone.post(step, {"Digits": "1"}) for _ in range(5)))
    assert len({reply.text for reply in replies}) == 1
    assert answers(database_url) == [("genero", "mujer")]


@pytest.mark.parametrize("bad", ["8", "#", "", "12", "ñ"])
async def test_keys_outside_the_choices_reask(
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    database_url: str,
    bad: str,
) -> None:
    """A key outside the choices, a lone #, or silence re-asks the question and stores nothing."""
    screens = await walk(_call(client, signer, flows), ["1", "2", "1", bad])
    assert screens[-1].prompts[-1].text == flows["hotline"].nodes["q_gender"].prompt["es"]
    assert answers(database_url) == []


async def test_a_question_removed_between_calls_is_not_asked(
    app: FastAPI,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    database_url: str,
    sessions: Sessions,
) -> None:
    """The flow is edited between two calls: the removed question is skipped, earlier answers stay.

    The survey's questions were published when the run started, so the removed one stays in the Flow
    Results package even though no partner had read it before the edit.
    """
    await walk(_call(client, signer, flows), ["1", "2", "1", *PROFILE, "5"])
    data = flows["hotline"].model_dump(exclude_none=True)
    del data["nodes"]["q_air"]
    data["nodes"]["q_water"]["next"] = "q_jobs"
    edited = {"hotline": FlowDefinition.model_validate(data)}
    app.state.flows = edited
    screens = await walk(_call(client, signer, edited), ["1", "3"])
    assert screens[1].prompts[0].text == edited["hotline"].nodes["q_jobs"].prompt["es"]
    assert answers(database_url) == [*EXPECTED[:4], ("empleo", "algo")]
    async with sessions() as db:
        _, key = await ApiKeyService(db).create("partner", ["results:read"])
        await db.commit()
    headers = {"Authorization": f"Bearer {key}"}
    packages = (await client.get("/api/v1/flow-results/packages", headers=headers)).json()["data"]
    [package] = [p for p in packages if p["attributes"]["name"].endswith("percepcion")]
    descriptor = (await client.get(f"/api/v1/flow-results/packages/{package['id']}", headers=headers)).json()
    assert "aire" in descriptor["data"]["attributes"]["resources"][0]["schema"]["questions"]


async def test_an_sms_conversation_resumes_a_survey_left_by_voice(
    client: httpx.AsyncClient, signer: TwilioSigner, flows: dict[str, FlowDefinition], database_url: str
) -> None:
    """Started by phone, finished by text: one run, the channel recorded on each answer."""
    await walk(_call(client, signer, flows), ["1", "2", "1", *PROFILE])
    texter = TextPhone(client=client, signer=signer, sender=CALLER)
    for body in ["hola", "1", *LIKERT, "*"]:  # 1: continue, offered right after the welcome
        await texter.text(body)
    assert answers(database_url) == [*EXPECTED, ("comentario", "skipped")]
    assert [run.status for run in runs(database_url)] == ["completed"]
    channels = [a.channel for a in sorted(rows(database_url, Answer), key=lambda a: a.id)]
    assert channels == ["voice"] * 3 + ["sms"] * 8


async def test_flow_results_match_what_was_answered(
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    sessions: Sessions,
) -> None:
    """A voice run and an SMS run come back as FLOIP rows: names, numbers, nulls, masked text, no numbers."""
    await walk(_call(client, signer, flows), ["1", "2", "1", *PROFILE, *LIKERT, SPOKEN])
    texter = TextPhone(client=client, signer=signer, sender="+51911222333")
    for body in ["hola", "1", "2", "1", *PROFILE, *LIKERT, "Escríbanme al 911222333"]:
        await texter.text(body)
    async with sessions() as db:
        _, key = await ApiKeyService(db).create("partner", ["results:read"])
        await db.commit()
    headers = {"Authorization": f"Bearer {key}"}
    packages = (await client.get("/api/v1/flow-results/packages", headers=headers)).json()["data"]
    [package] = [p for p in packages if p["attributes"]["name"].endswith("percepcion")]
    descriptor = (await client.get(f"/api/v1/flow-results/packages/{package['id']}", headers=headers)).json()
    questions = descriptor["data"]["attributes"]["resources"][0]["schema"]["questions"]
    assert questions["comentario"]["type"] == "open"
    assert questions["agua"]["type_options"]["choices"] == ["nada", "poco", "algo", "bastante", "mucho"]
    listing = await client.get(f"/api/v1/flow-results/packages/{package['id']}/responses", headers=headers)
    assert listing.headers["content-type"].startswith("application/vnd.api+json")
    responses = listing.json()["data"]["attributes"]["responses"]
    by_session: dict[str, list[tuple[str, object]]] = {}
    for row in responses:
        by_session.setdefault(row[3], []).append((row[4], row[5]))
    expected = [(q, None if v == "skipped" else v) for q, v in EXPECTED]
    voice, sms = by_session.values()
    assert voice == [*expected, ("comentario", None)]
    assert sms == [*expected, ("comentario", "Escríbanme al [phone]")]
    spoken = [row for row in responses if row[4] == "comentario" and row[5] is None]
    assert spoken[0][6] == {"channel": "voice", "language": "spa", "type": "audio", "type_options": {}}
    assert "911222333" not in listing.text
    assert CALLER[1:] not in listing.text


async def test_an_under_18_caller_is_asked_their_age_again_on_a_later_call(
    client: httpx.AsyncClient, signer: TwilioSigner, flows: dict[str, FlowDefinition], database_url: str
) -> None:
    """An under-18 profile is never reused: the next call asks the profile, not 'same person?'."""
    hotline = flows["hotline"]
    await walk(_call(client, signer, flows), ["1", "2", "1", "2", "1"])
    screens = await walk(_call(client, signer, flows), ["2", "1", "2", "1"])
    assert screens[0].prompts[-1].text == hotline.nodes["main"].prompt["es"], "no run is left to continue"
    assert screens[2].prompts[0].text == hotline.nodes["q_gender"].prompt["es"]
    assert screens[-1].prompts[0].text == hotline.nodes["survey_minor"].prompt["es"]
    assert [run.status for run in runs(database_url)] == ["ineligible", "ineligible"]
    assert not [a for a in rows(database_url, Answer) if a.question_id not in {"genero", "edad"}]


async def test_an_older_adult_profile_is_not_reused_after_an_under_18_answer(
    client: httpx.AsyncClient, signer: TwilioSigner, flows: dict[str, FlowDefinition], database_url: str
) -> None:
    """An adult completes; someone under 18 on the same phone answers next; the third call asks again."""
    hotline = flows["hotline"]
    await walk(_call(client, signer, flows), ["1", "2", "1", *PROFILE, *LIKERT, "*"])
    minor = await walk(_call(client, signer, flows), ["2", "1", "2", "2", "1"])
    assert minor[2].prompts[0].text == hotline.nodes["survey_same_person"].prompt["es"]
    screens = await walk(_call(client, signer, flows), ["2", "1"])
    assert screens[2].prompts[0].text == hotline.nodes["q_gender"].prompt["es"]
    assert [run.status for run in runs(database_url)] == ["completed", "ineligible", "open"]


@pytest.mark.parametrize("language", ["es", "qu"])
def test_the_sms_consent_says_any_question_can_be_skipped(
    flows: dict[str, FlowDefinition], language: str
) -> None:
    """As by voice, the SMS consent names the skip key, and it fits in two SMS."""
    consent = flows["hotline"].nodes["survey_consent"].sms
    assert consent is not None
    assert "*" in consent[language]
    assert fits(consent[language])


async def test_concurrent_deliveries_of_an_sms_answer_store_it_once(
    client: httpx.AsyncClient, signer: TwilioSigner, database_url: str
) -> None:
    """Five simultaneous deliveries of one MessageSid: one stored answer, the same reply to each."""
    texter = TextPhone(client=client, signer=signer, sender=CALLER)
    for body in ["hola", "1", "2", "1"]:
        await texter.text(body)
    sid = "SM" + "b" * 32
    replies = await asyncio.gather(*(texter.send("1", message_sid=sid) for _ in range(5)))
    assert {reply.status_code for reply in replies} == {200}
    assert len({reply.text for reply in replies}) == 1
    assert answers(database_url) == [("genero", "mujer")]
    assert len(rows(database_url, InboundMessage)) == 5, "four other messages and this one, once"
    following = await texter.text("3")
    assert following
    assert answers(database_url) == [("genero", "mujer"), ("edad", "30_44")]


def with_years(flows: dict[str, FlowDefinition]) -> dict[str, FlowDefinition]:
    """The shipped hotline with a number question after the community: years lived there, 1 to 99."""
    data = flows["hotline"].model_dump(exclude_none=True)
    data["nodes"]["q_community"]["next"] = "q_years"
    data["nodes"]["q_years"] = {
        "type": "question",
        "question": "anios",
        "number": {"min": 1, "max": 99},
        "prompt": {
            "es": "¿Cuántos años vive en su comunidad? Marque el número y numeral.",
            "qu": "Hayk'a wata?",
        },
        "sms": {"es": "¿Cuántos años vive en su comunidad?", "qu": "Hayk'a wata?"},
        "next": "q_water",
    }
    return {"hotline": FlowDefinition.model_validate(data)}


def years(database_url: str) -> list[tuple[str, str, str]]:
    """The stored answers to the number question: value, kind, channel."""
    return [(a.value, a.kind, a.channel) for a in rows(database_url, Answer) if a.question_id == "anios"]


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        ("100", "invalid"),
        ("00", "invalid"),
        ("1234567", "invalid"),
        ("#", "invalid"),
        ("", "no_input"),
        ("0", None),
    ],
)
async def test_bad_numbers_by_voice_reask_and_store_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    database_url: str,
    bad: str,
    said: str | None,
) -> None:
    """Out of range, too long, # with no digits, silence: asked again; 0 (out of range) repeats it."""
    edited = with_years(flows)
    app.state.flows = edited
    hotline = edited["hotline"]
    screens = await walk(_call(client, signer, edited), ["1", "2", "1", *PROFILE, bad])
    assert [p.text for p in screens[-1].prompts] == [
        *([hotline.system[said]["es"]] if said else []),
        hotline.nodes["q_years"].prompt["es"],
    ]
    assert screens[-1].gather_action is not None
    assert years(database_url) == []
    await walk(_call(client, signer, edited), ["1", "12"])  # a later call continues at the number
    assert years(database_url) == [("12", "numeric", "voice")]
    assert answers(database_url) == [*EXPECTED[:3], ("anios", "12")]


@pytest.mark.parametrize("bad", ["doce", "12 años", "1,5", "#", "150", "-3", "١٢"])
async def test_letters_and_bad_numbers_by_sms_reask_and_store_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    database_url: str,
    bad: str,
) -> None:
    """By SMS a number answer is digits only, within the range; anything else asks again."""
    edited = with_years(flows)
    app.state.flows = edited
    hotline = edited["hotline"]
    texter = TextPhone(client=client, signer=signer, sender=CALLER)
    for body in ["hola", "1", "2", "1", *PROFILE]:
        await texter.text(body)
    [reask] = await texter.text(bad)
    assert reask.startswith(hotline.system["invalid"]["es"])
    assert hotline.nodes["q_years"].sms["es"] in reask  # type: ignore[index]
    assert years(database_url) == []
    [following] = await texter.text(" 12 ")
    assert following.startswith(hotline.nodes["q_water"].sms["es"])  # type: ignore[index]
    assert years(database_url) == [("12", "numeric", "sms")]
