"""The SMS channel end to end: text menus from the same flow, keywords, opt-out, paging, bad input."""

from __future__ import annotations

import base64
import secrets
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from app.contacts.crypto import ContactCipher
from app.contacts.models import Contact
from app.contacts.service import ContactService
from app.db.base import utcnow
from app.db.engine import make_sync_engine
from app.flows.model import FlowDefinition, MenuNode
from app.sessions.models import CallSession, Interaction
from app.settings import Settings
from app.simulator import TextPhone, TwilioSigner, parse_messages
from app.sms.segments import fits
from app.survey.models import Answer
from app.webhooks.signature import SIGNATURE_HEADER
from tests.conftest import AUTH_TOKEN, PUBLIC_BASE_URL, count_rows
from tests.outbound import Sessions
from tests.outbox_support import form
from tests.pg import PostgresServer
from tests.test_broadcasts import broadcast, send_all
from tests.test_outbox_service import all_rows, stored_bytes
from tests.test_survey import LIKERT, PROFILE

SENDER = "+51976543210"
TYPED = "+51911111111"
"""A number someone types into a message: never a recipient, never stored."""
FORGERIES = ["wrong-value", "another-token", "another-host", "another-path", "tampered"]
TABLES = (
    "callers",
    "sessions",
    "interactions",
    "inbound_messages",
    "webhook_deliveries",
    "contacts",
    "subscriptions",
    "outbox",
)


def forged(forgery: str, path: str, params: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The params posted to ``path`` and a signature header Twilio would not have sent with them."""
    if forgery == "wrong-value":
        return params, {SIGNATURE_HEADER: base64.b64encode(secrets.token_bytes(20)).decode()}
    if forgery == "another-token":
        signer = TwilioSigner("another-auth-token-0123456789abcd", PUBLIC_BASE_URL)
        return params, signer.headers(signer.public(path), params)
    signer = TwilioSigner(AUTH_TOKEN, PUBLIC_BASE_URL)
    if forgery == "another-host":
        return params, signer.headers(f"https://evil.example.org{path}", params)
    if forgery == "another-path":
        return params, signer.headers(signer.public("/twilio/voice"), params)
    assert forgery == "tampered"
    return {**params, "From": TYPED}, signer.headers(signer.public(path), params)


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
    "word", ["START", "INICIO", "ALTA", "Start", "  alta ", "ínicio", "Inicio.", "¡ALTA!", "unstop"]
)
async def test_every_opt_in_word_works(
    texter: TextPhone, flows: dict[str, FlowDefinition], word: str
) -> None:
    """After ALTO, any opt-in word (any case, accents, padding, punctuation) confirms and texts flow again."""
    hotline = flows["hotline"]
    await reply(texter, "ALTO")
    assert await texter.text("hola") == []
    assert await reply(texter, word) == hotline.sms["opted_in"]["es"]
    assert "1 Español" in await reply(texter, "hola")


@pytest.mark.parametrize("word", ["START UP", "alta ya", "inicios", "STAR"])
async def test_near_opt_in_words_keep_the_number_opted_out(texter: TextPhone, word: str) -> None:
    """Two words or a misspelling are not consent: the opted-out number still gets nothing."""
    await reply(texter, "ALTO")
    assert await texter.text(word) == []
    assert await texter.text("hola") == []


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


@pytest.mark.parametrize("forgery", FORGERIES)
async def test_forged_signatures_are_refused(
    client: httpx.AsyncClient, database_url: str, forgery: str
) -> None:
    """A wrong value, another token, another URL or altered fields: 403, and no row is written."""
    params = {
        "MessageSid": "SM" + secrets.token_hex(16),
        "AccountSid": "AC" + "0" * 32,
        "From": SENDER,
        "To": "+15005550006",
        "Body": "NOTICIAS",  # signed correctly, this would store a caller, a contact and a subscription
    }
    posted, headers = forged(forgery, "/twilio/sms", params)
    response = await client.post("/twilio/sms", data=posted, headers=headers)
    assert response.status_code == 403
    assert {table: count_rows(database_url, table) for table in TABLES} == dict.fromkeys(TABLES, 0)


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


async def _contact_numbers(sessions: Sessions, settings: Settings) -> list[str]:
    """Every stored contact, decrypted."""
    cipher = ContactCipher.from_secret(settings.contact_secret)
    async with sessions() as db:
        return [cipher.decrypt(c.caller_id, c.ciphertext) for c in await db.scalars(select(Contact))]


async def test_a_number_typed_in_a_message_is_never_stored_or_sent_to(
    texter: TextPhone,
    outbound: Settings,
    sessions: Sessions,
    database_url: str,
    postgres_server: PostgresServer | None,
) -> None:
    """NOTICIAS with a number, a bare number, a survey comment quoting one: only the sender is reachable."""
    comment = f"Llamen a mi vecino al {TYPED} o al {TYPED[3:]}"
    for body in (f"NOTICIAS {TYPED}", TYPED, "NOTICIAS", "hola", "1", "2", "1", *PROFILE, *LIKERT, comment):
        await texter.text(body)
    async with sessions() as db:
        written = await db.scalar(select(Answer.text).where(Answer.question_id == "comentario"))
    assert written is not None, "the free-text answer was reached and stored"
    assert count_rows(database_url, "callers") == 1
    assert await _contact_numbers(sessions, outbound) == [SENDER]
    assert await broadcast(sessions, outbound, {"es": "Faena comunal el lunes."}) == 1
    async with sessions() as db:
        contacts = ContactService(db, ContactCipher.from_secret(outbound.contact_secret))
        recipients = [await contacts.number_for(row.caller_id) for row in await all_rows(sessions)]
    assert recipients == [SENDER]
    route = await send_all(sessions, outbound)
    assert [form(call.request)["To"] for call in route.calls] == [SENDER]
    stored = stored_bytes(database_url, postgres_server)
    assert [n for n in (TYPED, TYPED[1:], TYPED[3:]) if n.encode() in stored] == []
