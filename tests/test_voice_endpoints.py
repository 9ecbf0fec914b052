"""Voice webhooks end to end: signed requests, TwiML, storage, redelivery and bad input."""

from __future__ import annotations

import asyncio
import secrets
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text

from app.db.engine import make_sync_engine
from app.flows.model import FlowDefinition
from app.sessions.models import CallSession, Interaction
from app.simulator import Call, Screen, TwilioSigner, parse_twiml
from tests.conftest import CALLER, count_rows

TABLES = ("callers", "sessions", "interactions", "webhook_deliveries")


def _script(*keys: str) -> list[str]:
    return list(keys)


async def walk(phone: Call, keys: list[str]) -> list[Screen]:
    """Answer each screen with the next scripted key; hang up when the script ends."""
    script = iter(keys)
    return [screen async for screen in phone.screens(lambda _: next(script, None))]


def texts(screen: Screen) -> list[str]:
    """The text of each prompt on a screen, in the order it is played."""
    return [verb.text for verb in screen.prompts]


def _interactions(database_url: str) -> list[Interaction]:
    engine = make_sync_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(Interaction).order_by(Interaction.id)).all()
    finally:
        engine.dispose()
    return [Interaction(**row._mapping) for row in rows]


def _session(database_url: str) -> CallSession:
    engine = make_sync_engine(database_url)
    try:
        with engine.connect() as connection:
            row = connection.execute(select(CallSession)).one()
    finally:
        engine.dispose()
    return CallSession(**row._mapping)


@pytest.mark.audio
@pytest.mark.parametrize(("language_key", "language"), [("1", "es"), ("2", "qu")])
async def test_walk_language_library_article_back(
    phone: Call,
    client: httpx.AsyncClient,
    flows: dict[str, FlowDefinition],
    database_url: str,
    language_key: str,
    language: str,
) -> None:
    """Language, library, a message and back, with every prompt played from audio that answers."""
    hotline = flows["hotline"]
    screens = await walk(phone, _script(language_key, "1", "1", "0"))
    assert texts(screens[0]) == [
        hotline.nodes["greeting"].prompt["es"],
        hotline.nodes["greeting"].prompt["qu"],
        hotline.nodes["language"].prompt["es"],
        hotline.nodes["language"].prompt["qu"],
    ]
    assert texts(screens[1]) == [hotline.nodes["main"].prompt[language]]
    assert texts(screens[2]) == [hotline.nodes["library"].prompt[language]]
    article = hotline.nodes["library"]
    first = article.options["1"].next  # type: ignore[union-attr]
    assert texts(screens[3]) == [
        hotline.nodes[first].prompt[language],
        hotline.system["after_article"][language],
    ]
    assert texts(screens[4]) == [hotline.nodes["library"].prompt[language]]
    for screen in screens:
        assert screen.gather_action is not None
        assert all(verb.kind == "play" for verb in screen.prompts), "every prompt must be <Play>"
        for verb in screen.prompts:
            assert verb.url is not None
            answer = await client.get(verb.url)
            assert answer.status_code == 200
            assert answer.headers["content-type"] == "audio/mpeg"
            assert answer.content[:3] == b"ID3" or answer.content[:2] in (
                b"\xff\xfb",
                b"\xff\xf3",
                b"\xff\xf2",
            )
    later = [row for row in _interactions(database_url) if row.step > 1]
    assert all(row.language == language for row in later)


async def test_interactions_record_each_step(phone: Call, database_url: str) -> None:
    """Every node reached and every key pressed is stored, in order, and the call's end is recorded."""
    await walk(phone, _script("1", "1"))
    rows = _interactions(database_url)
    described = [(row.step, row.event, row.node, row.value, row.outcome) for row in rows]
    assert described == [
        (0, "entered", "greeting", None, None),
        (0, "entered", "language", None, None),
        (1, "input", "language", "1", "chosen"),
        (1, "language", "language", "es", None),
        (1, "entered", "main", None, None),
        (2, "input", "main", "1", "chosen"),
        (2, "entered", "library", None, None),
    ]
    assert all(row.channel == "voice" and row.flow_id == "hotline" for row in rows)
    session = _session(database_url)
    assert session.status == "completed"
    assert session.duration_seconds is not None
    assert session.ended_at is not None
    assert session.step == 2


async def test_language_is_remembered_for_the_next_call(
    client: httpx.AsyncClient, signer: TwilioSigner, flows: dict[str, FlowDefinition]
) -> None:
    """A returning caller is greeted in the language chosen before, and can still change it."""
    first = Call(client=client, signer=signer, flows=flows, caller=CALLER)
    await walk(first, _script("2"))
    second = Call(client=client, signer=signer, flows=flows, caller=CALLER)
    screens = await walk(second, _script("*", "1"))
    hotline = flows["hotline"]
    assert texts(screens[0]) == [
        hotline.nodes["welcome_back"].prompt["qu"],
        hotline.nodes["main"].prompt["qu"],
    ]
    assert texts(screens[1]) == [
        hotline.nodes["language"].prompt["es"],
        hotline.nodes["language"].prompt["qu"],
    ]
    assert texts(screens[2]) == [hotline.nodes["main"].prompt["es"]]


async def test_withheld_number_is_served_without_a_caller(
    client: httpx.AsyncClient, signer: TwilioSigner, flows: dict[str, FlowDefinition], database_url: str
) -> None:
    """A call with no usable caller id still gets the hotline; nothing is remembered for it."""
    phone = Call(client=client, signer=signer, flows=flows, caller="anonymous")
    screens = await walk(phone, _script("1"))
    assert len(screens) == 2
    assert count_rows(database_url, "callers") == 0
    assert _session(database_url).caller_id is None


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}, {"X-Twilio-Signature": ""}],
    ids=["unsigned", "forged", "empty"],
)
@pytest.mark.parametrize("route", ["incoming", "step", "status"])
async def test_unsigned_or_forged_requests_are_refused(
    phone: Call, client: httpx.AsyncClient, database_url: str, headers: dict[str, str], route: str
) -> None:
    """403 on the incoming call, a live call's next step and its status callback, and nothing is written."""
    params = {"CallSid": phone.call_sid, "From": CALLER, "To": phone.hotline}
    path = "/twilio/voice"
    if route != "incoming":
        [screen] = await walk(phone, _script())
        assert screen.gather_action is not None
        path = urlsplit(screen.gather_action).path if route == "step" else "/twilio/voice/status"
        params |= {"Digits": "1"} if route == "step" else {"CallStatus": "completed", "CallDuration": "42"}
    before = _snapshot(database_url)
    assert bool(before["sessions"]) is (route != "incoming")
    response = await client.post(path, data=params, headers=headers)
    assert response.status_code == 403
    assert _snapshot(database_url) == before
    # The same request, signed, is accepted: the refusal was the signature's doing.
    signed = await phone.post(path, {k: v for k, v in params.items() if k not in {"CallSid", "From", "To"}})
    assert signed.status_code == (204 if route == "status" else 200)
    assert _snapshot(database_url) != before


def _snapshot(database_url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the tables a webhook writes, read through a separate connection."""
    engine = make_sync_engine(database_url)
    try:
        with engine.connect() as connection:
            return {
                table: sorted(
                    (tuple(row) for row in connection.execute(text(f"SELECT * FROM {table}"))),  # noqa: S608
                    key=repr,
                )
                for table in TABLES
            }
    finally:
        engine.dispose()


async def test_signature_for_another_url_or_token_is_refused(
    client: httpx.AsyncClient, database_url: str
) -> None:
    """A signature must cover this exact URL and parameters, with our auth token."""
    params = {"CallSid": "CA" + "b" * 32, "From": CALLER}
    wrong_url = TwilioSigner("test-auth-token-0123456789abcdef", "https://evil.example.org")
    wrong_token = TwilioSigner("another-token", "https://hotline.example.org")
    for signer in (wrong_url, wrong_token):
        headers = signer.headers(signer.public("/twilio/voice"), params)
        assert (await client.post("/twilio/voice", data=params, headers=headers)).status_code == 403
    right = TwilioSigner("test-auth-token-0123456789abcdef", "https://hotline.example.org")
    headers = right.headers(right.public("/twilio/voice"), params)
    tampered = {**params, "From": "+51911111111"}
    assert (await client.post("/twilio/voice", data=tampered, headers=headers)).status_code == 403
    assert all(count_rows(database_url, table) == 0 for table in TABLES)


@pytest.mark.parametrize(
    "params",
    [{"From": CALLER}, {"CallSid": "CA" + "c" * 32}, {"CallSid": "not-a-call", "From": CALLER}],
    ids=["missing-callsid", "missing-from", "malformed-callsid"],
)
async def test_missing_fields_get_a_400_apology(
    client: httpx.AsyncClient, signer: TwilioSigner, database_url: str, params: dict[str, str]
) -> None:
    """A signed but malformed webhook gets a 4xx with spoken TwiML, and nothing is written."""
    response = await client.post(
        "/twilio/voice", data=params, headers=signer.headers(signer.public("/twilio/voice"), params)
    )
    assert response.status_code == 400
    assert "<Hangup" in response.text
    assert all(count_rows(database_url, table) == 0 for table in TABLES)


async def test_wrong_keys_reprompt_twice_then_end_politely(
    phone: Call, flows: dict[str, FlowDefinition]
) -> None:
    """Invalid keys and silence re-prompt in the caller's language, then the call ends with a goodbye."""
    hotline = flows["hotline"]
    screens = await walk(phone, _script("1", "7", "", "#"))
    assert texts(screens[2]) == [hotline.system["invalid"]["es"], hotline.nodes["main"].prompt["es"]]
    assert texts(screens[3]) == [hotline.system["no_input"]["es"], hotline.nodes["main"].prompt["es"]]
    assert texts(screens[4]) == [hotline.system["goodbye"]["es"]]
    assert screens[4].hangup


async def test_very_long_digits_reprompt_and_store_a_bounded_value(phone: Call, database_url: str) -> None:
    """A huge Digits value is an invalid key press, not an error; a long digit run is stored masked."""
    screens = await walk(phone, _script("1", "1" * 5000))
    assert len(screens) == 3
    assert screens[2].gather_action is not None
    values = [row.value for row in _interactions(database_url) if row.outcome == "invalid"]
    assert values == ["[phone]"]


async def test_unknown_session_in_action_url_gets_an_apology(
    phone: Call, client: httpx.AsyncClient, database_url: str
) -> None:
    """Unknown, malformed and other calls' session ids are answered with a spoken apology, not a 500."""
    screens = await walk(phone, _script())
    real_action = screens[0].gather_action
    assert real_action is not None
    unknown = f"/twilio/voice/sessions/{secrets.token_hex(16)}/steps/1"
    response = await phone.post(unknown, {"Digits": "1"})
    assert response.status_code == 200
    assert "<Hangup" in response.text
    response = await phone.post("/twilio/voice/sessions/..%2F..%2Fetc/steps/1", {"Digits": "1"})
    assert response.status_code in {400, 404}
    other_call = Call(client=client, signer=phone.signer, flows=phone.flows, caller=CALLER)
    response = await other_call.post(real_action, {"Digits": "1"})
    assert response.status_code == 200
    assert "<Hangup" in response.text
    assert count_rows(database_url, "webhook_deliveries") == 1


async def test_status_callback_for_unknown_call_changes_nothing(phone: Call, database_url: str) -> None:
    """A status callback for a call we never answered (turned away, or past the deadline) records nothing
    and is acknowledged: a 4xx would be an error in Twilio's debugger."""
    response = await phone.post("/twilio/voice/status", {"CallStatus": "completed", "CallDuration": "12"})
    assert response.status_code == 204
    assert count_rows(database_url, "sessions") == 0


async def test_status_callback_with_bad_fields(phone: Call) -> None:
    """Missing status and nonsense durations are refused or ignored, never a 500."""
    await walk(phone, _script())
    assert (await phone.post("/twilio/voice/status", {})).status_code == 400
    response = await phone.post("/twilio/voice/status", {"CallStatus": "completed", "CallDuration": "-5x"})
    assert response.status_code == 204


async def test_redelivered_webhooks_replay_the_same_twiml(phone: Call, database_url: str) -> None:
    """The same CallSid and step return the same answer and store nothing twice."""
    first = await phone.post("/twilio/voice", {})
    again = await phone.post("/twilio/voice", {})
    assert first.text == again.text
    action = parse_twiml(first.text, phone.flows).gather_action
    assert action is not None
    one = await phone.post(action, {"Digits": "1"})
    before = count_rows(database_url, "interactions")
    two = await phone.post(action, {"Digits": "1"})
    other_key = await phone.post(action, {"Digits": "2"})
    assert one.text == two.text == other_key.text
    assert count_rows(database_url, "interactions") == before
    assert count_rows(database_url, "sessions") == 1


async def test_concurrent_redeliveries_store_one_answer(phone: Call, database_url: str) -> None:
    """Ten simultaneous deliveries of one step: one stored answer, the same TwiML for all."""
    first = await phone.post("/twilio/voice", {})
    action = parse_twiml(first.text, phone.flows).gather_action
    assert action is not None
    responses = await asyncio.gather(*(phone.post(action, {"Digits": "1"}) for _ in range(10)))
    assert {response.status_code for response in responses} == {200}
    assert len({response.text for response in responses}) == 1
    assert count_rows(database_url, "webhook_deliveries") == 2
    assert [row.event for row in _interactions(database_url) if row.step == 1] == [
        "input",
        "language",
        "entered",
    ]


async def test_concurrent_first_deliveries_create_one_session(phone: Call, database_url: str) -> None:
    """Simultaneous redeliveries of a new call: one session, one caller, the same TwiML for all."""
    responses = await asyncio.gather(*(phone.post("/twilio/voice", {}) for _ in range(8)))
    assert {response.status_code for response in responses} == {200}
    assert len({response.text for response in responses}) == 1
    assert count_rows(database_url, "sessions") == 1
    assert count_rows(database_url, "callers") == 1
    assert count_rows(database_url, "interactions") == 2


async def test_answer_is_committed_before_the_next_prompt(phone: Call, database_url: str) -> None:
    """Once the TwiML is back, another connection already sees the stored key press."""
    first = await phone.post("/twilio/voice", {})
    action = parse_twiml(first.text, phone.flows).gather_action
    assert action is not None
    await phone.post(action, {"Digits": "2"})
    stored = [(row.event, row.value) for row in _interactions(database_url) if row.step == 1]
    assert ("language", "qu") in stored


async def test_unexpected_failure_is_a_spoken_apology(
    phone: Call, app: FastAPI, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    """A bug or a flow loop mid-call still answers TwiML (apology, hangup) and stores nothing partial."""
    from app.flows import engine
    from app.flows.engine import FlowLoopError

    first = await phone.post("/twilio/voice", {})
    action = parse_twiml(first.text, phone.flows).gather_action
    assert action is not None

    def explode(*_: object, **__: object) -> None:
        raise FlowLoopError("loop")

    monkeypatch.setattr(engine, "resume", explode)
    response = await phone.post(action, {"Digits": "1"})
    assert response.status_code == 200
    assert "<Hangup" in response.text
    assert "<Play>" in response.text
    assert count_rows(database_url, "webhook_deliveries") == 1
    apology = parse_twiml(response.text, phone.flows)
    assert [verb.text for verb in apology.prompts] == [
        phone.flows["hotline"].system["error"]["es"],
        phone.flows["hotline"].system["error"]["qu"],
    ]


async def test_apology_is_in_the_callers_language(
    phone: Call, monkeypatch: pytest.MonkeyPatch, flows: dict[str, FlowDefinition]
) -> None:
    """Once a language is chosen, an error mid-call is apologised for in that language only."""
    from app.flows import engine

    screens = await walk(phone, _script())
    action = screens[0].gather_action
    assert action is not None
    chosen = await phone.post(action, {"Digits": "2"})
    next_action = parse_twiml(chosen.text, flows).gather_action
    assert next_action is not None
    assert next_action.endswith("?lang=qu")

    def explode(*_: object, **__: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(engine, "resume", explode)
    response = await phone.post(next_action, {"Digits": "1"})
    apology = parse_twiml(response.text, flows)
    assert [verb.text for verb in apology.prompts] == [flows["hotline"].system["error"]["qu"]]
    assert apology.hangup
