"""The SMS channel end to end: text menus from the same flow, keywords, opt-out, paging, bad input."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from app.db.base import utcnow
from app.db.engine import make_sync_engine
from app.flows.model import FlowDefinition, MenuNode
from app.sessions.models import CallSession, Interaction
from app.simulator import TextPhone, TwilioSigner, parse_messages
from app.sms.segments import fits
from tests.conftest import count_rows

SENDER = "+51976543210"


@pytest.fixture
def texter(client: httpx.AsyncClient, signer: TwilioSigner) -> TextPhone:
    """A phone texting the hotline from SENDER."""
    return TextPhone(client=client, signer=signer, sender=SENDER)


async def reply(phone: TextPhone, body: str) -> str:
    """Send one message and return its single reply (asserting it fits in two segments)."""
    texts = await phone.text(body)
    assert len(texts) == 1, texts
    assert fits(texts[0]), f"reply longer than 2 segments: {texts[0]!r}"
    return texts[0]


async def whole(phone: TextPhone, body: str, more: str = "Responda 0 para seguir") -> str:
    """Send one message and fetch every page of its reply with the "more" key."""
    pages = [await reply(phone, body)]
    while more in pages[-1]:
        assert len(pages) < 12, "too many pages"
        pages.append(await reply(phone, "0"))
    return "\n".join(pages)


def _sms_sessions(database_url: str) -> list[CallSession]:
    engine = make_sync_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(CallSession).where(CallSession.channel == "sms")).all()
    finally:
        engine.dispose()
    return [CallSession(**row._mapping) for row in rows]


def _label(flow: FlowDefinition, node: str, key: str, language: str) -> str:
    menu = flow.nodes[node]
    assert isinstance(menu, MenuNode)
    label = menu.options[key].label
    assert label is not None
    return f"{key} {label[language]}"


@pytest.mark.parametrize(("key", "language"), [("1", "es"), ("2", "qu")])
async def test_conversation_reaches_the_library_in_both_languages(
    texter: TextPhone, flows: dict[str, FlowDefinition], database_url: str, key: str, language: str
) -> None:
    """Any first message offers the languages; then main menu, library, an article and back, all short."""
    hotline = flows["hotline"]
    first = await reply(texter, "hola")
    assert "1 Español" in first
    assert "2 Runasimi" in first
    more = hotline.sms["more"][language]
    main = await whole(texter, key, more)
    assert _label(hotline, "main", "1", language) in main
    library = await whole(texter, "1", more)
    assert _label(hotline, "library", "1", language) in library
    assert f"9 {hotline.sms['main_menu'][language]}" in library
    article = await whole(texter, "1", more)
    assert f"2 {hotline.sms['next'][language]}" in article
    back = await whole(texter, "9", more)
    assert _label(hotline, "main", "1", language) in back
    [session] = _sms_sessions(database_url)
    assert session.language == language
    assert count_rows(database_url, "interactions") > 5


async def test_long_text_is_paged_with_the_more_key(
    texter: TextPhone, flows: dict[str, FlowDefinition]
) -> None:
    """A reply longer than two segments comes in pages; 0 fetches the next page, until the options."""
    hotline = flows["hotline"]
    await reply(texter, "hola")
    await reply(texter, "1")
    await reply(texter, "1")
    first = await reply(texter, "2")  # consulta previa: longer than one reply
    assert "(1/" in first
    assert hotline.sms["more"]["es"] in first
    article = first + await whole(texter, "0")
    assert f"1 {hotline.sms['repeat']['es']}" in article
    assert f"9 {hotline.sms['main_menu']['es']}" in article


async def test_keywords_are_case_and_accent_insensitive(
    texter: TextPhone, flows: dict[str, FlowDefinition]
) -> None:
    """MENÚ, menu, Ayuda, idioma work as single words, with accents and punctuation."""
    hotline = flows["hotline"]
    await reply(texter, "hola")
    await reply(texter, "1")
    await reply(texter, "1")
    assert _label(hotline, "main", "1", "es") in await reply(texter, " Menú ")
    assert await reply(texter, "ayuda!") == hotline.sms["help"]["es"]
    assert "2 Runasimi" in await reply(texter, "IDIOMA")
    assert _label(hotline, "main", "1", "qu") in await reply(texter, "2")
    assert _label(hotline, "main", "1", "qu") in await reply(texter, "mEnU")
    assert "menu please" not in await reply(texter, "menu please")  # two words: not a keyword


async def test_opt_out_stops_everything_until_opt_in(
    texter: TextPhone, flows: dict[str, FlowDefinition], database_url: str
) -> None:
    """ALTO confirms once; after it nothing is sent, whatever is texted, until INICIO."""
    hotline = flows["hotline"]
    await reply(texter, "hola")
    await reply(texter, "1")
    assert await reply(texter, "Alto") == hotline.sms["opted_out"]["es"]
    for body in ("1", "hola", "MENU", "STOP", "ayuda"):
        assert await texter.text(body) == []
    assert await reply(texter, "inicio") == hotline.sms["opted_in"]["es"]
    assert _label(hotline, "main", "1", "es") in await whole(texter, "MENU")
    statuses = sorted(session.status for session in _sms_sessions(database_url))
    assert statuses == ["active", "opted_out"]


@pytest.mark.parametrize(
    "word", ["STOP", "stopall", "Unsubscribe", "cancel", "END", "quit", "parar", "baja", "cancelar", "¡ALTO!"]
)
async def test_every_opt_out_word_works(
    texter: TextPhone, flows: dict[str, FlowDefinition], word: str
) -> None:
    """Spanish words and Twilio's English set all opt out, even as the very first message."""
    hotline = flows["hotline"]
    confirmation = await reply(texter, word)
    assert hotline.sms["opted_out"]["es"] in confirmation
    assert await texter.text("hola") == []


async def test_idle_conversation_expires_and_restarts_in_the_remembered_language(
    texter: TextPhone, flows: dict[str, FlowDefinition], database_url: str
) -> None:
    """After the idle time, the next message starts fresh, greeting the caller in their language."""
    hotline = flows["hotline"]
    await reply(texter, "hola")
    await reply(texter, "2")
    await reply(texter, "1")
    engine = make_sync_engine(database_url)
    with engine.begin() as connection:
        connection.execute(update(CallSession).values(updated_at=utcnow() - timedelta(minutes=31)))
    engine.dispose()
    fresh = await reply(texter, "1")
    welcome = hotline.nodes["welcome_back"].sms
    assert welcome is not None
    assert welcome["qu"] in fresh
    assert sorted(session.status for session in _sms_sessions(database_url)) == ["active", "expired"]


async def test_redelivered_message_gets_the_same_reply_and_stores_nothing(
    texter: TextPhone, database_url: str
) -> None:
    """The same MessageSid twice: one inbound row, one set of interactions, the same TwiML."""
    await texter.send("hola")
    first = await texter.send("1", message_sid="SM" + "a" * 32)
    interactions = count_rows(database_url, "interactions")
    again = await texter.send("1", message_sid="SM" + "a" * 32)
    assert first.text == again.text
    assert count_rows(database_url, "interactions") == interactions
    assert count_rows(database_url, "inbound_messages") == 2


@pytest.mark.parametrize(
    ("body", "expected"),
    [("", "no_input"), ("   ", "no_input"), ("👍", "invalid"), ("ñ" * 1700, "invalid"), ("1 2", "invalid")],
    ids=["empty", "whitespace", "emoji", "very-long", "two-words"],
)
async def test_bad_input_is_reprompted(
    texter: TextPhone, flows: dict[str, FlowDefinition], database_url: str, body: str, expected: str
) -> None:
    """Empty, blank, emoji and 1,700-character bodies get a short re-prompt, never an error."""
    hotline = flows["hotline"]
    await reply(texter, "hola")
    await reply(texter, "1")
    answer = await reply(texter, body)
    assert answer.startswith(hotline.system[expected]["es"])
    assert _label(hotline, "main", "1", "es") in answer
    engine = make_sync_engine(database_url)
    with engine.connect() as connection:
        values = connection.execute(
            select(Interaction.value).where(Interaction.outcome == expected)
        ).scalars()
        assert all(value is None or len(value) <= 32 for value in values)
    engine.dispose()


async def test_forged_and_malformed_requests(
    client: httpx.AsyncClient, signer: TwilioSigner, database_url: str
) -> None:
    """Unsigned: 403 and nothing stored. Missing MessageSid or From: 400 TwiML. Short codes: no reply."""
    params = {"MessageSid": "SM" + "b" * 32, "From": SENDER, "Body": "hola"}
    assert (await client.post("/twilio/sms", data=params)).status_code == 403
    for bad in (
        {"From": SENDER, "Body": "hola"},
        {"MessageSid": "SM" + "c" * 32, "Body": "hola"},
        {"MessageSid": "nope", "From": SENDER},
    ):
        response = await client.post(
            "/twilio/sms", data=bad, headers=signer.headers(signer.public("/twilio/sms"), bad)
        )
        assert response.status_code == 400
        assert "<Message>" in response.text
    short_code = {"MessageSid": "SM" + "d" * 32, "From": "RIMAY", "Body": "hola"}
    response = await client.post(
        "/twilio/sms", data=short_code, headers=signer.headers(signer.public("/twilio/sms"), short_code)
    )
    assert response.status_code == 200
    assert parse_messages(response.text) == []
    assert count_rows(database_url, "callers") == 0
    assert count_rows(database_url, "inbound_messages") == 0


async def test_no_number_is_stored(texter: TextPhone, database_url: str) -> None:
    """After a conversation and an opt-out, the sender's number is in no table."""
    for body in ("hola", "1", "1", "1", "ALTO"):
        await texter.text(body)
    engine = make_sync_engine(database_url)
    with engine.connect() as connection:
        for table in ("callers", "sessions", "interactions", "webhook_deliveries", "inbound_messages"):
            rows = connection.exec_driver_sql(f"SELECT * FROM {table}").all()  # noqa: S608
            assert SENDER[1:] not in repr(rows)
    engine.dispose()


async def test_unexpected_failure_is_a_short_apology(
    texter: TextPhone, flows: dict[str, FlowDefinition], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug mid-conversation still answers TwiML: a one-language apology that fits, never a 500."""
    from app.flows import engine

    await reply(texter, "hola")

    def explode(*_: object, **__: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(engine, "resume", explode)
    response = await texter.send("1")
    assert response.status_code == 200
    assert parse_messages(response.text) == [flows["hotline"].system["error"]["es"]]
    assert fits(parse_messages(response.text)[0])
