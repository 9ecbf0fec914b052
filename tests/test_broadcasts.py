"""News broadcasts: subscribe by SMS keyword, fan out through the outbox, respect opt-outs, send once."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
import respx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from app.broadcasts.models import Subscription
from app.broadcasts.service import BroadcastService, BroadcastTooLong, QueuedBroadcast
from app.cli import app as cli
from app.contacts.crypto import ContactCipher
from app.contacts.service import ContactService
from app.db.base import utcnow
from app.flows.model import FlowDefinition
from app.outbox.models import MessageStatus, OutboxMessage
from app.outbox.service import Outbox
from app.outbox.twilio_http import client_factory
from app.outbox.worker import OutboxWorker
from app.settings import Settings, get_settings
from app.simulator import Call, TextPhone, TwilioSigner
from tests.conftest import count_rows
from tests.outbound import MESSAGES_URL, Sessions, outbound_settings
from tests.test_outbox_cli import configure_cli

SPANISH, QUECHUA, BYSTANDER = "+51965000001", "+51965000002", "+51965000003"
NEIGHBOUR = "+51965000004"
TEXTS = {"es": "Asamblea comunal el sábado a las 9.", "qu": "Sabado p'unchawpi 9 horapi ayllu huñunakuy."}


@pytest.fixture
def outbound(app: FastAPI, settings: Settings) -> Settings:
    """The running app able to send."""
    changed = outbound_settings(settings)
    app.state.settings = changed
    return changed


def _phone(client: httpx.AsyncClient, signer: TwilioSigner, number: str) -> TextPhone:
    return TextPhone(client=client, signer=signer, sender=number)


def _news(db: AsyncSession, settings: Settings) -> BroadcastService:
    contacts = ContactService(db, ContactCipher.from_secret(settings.contact_secret))
    return BroadcastService(db, contacts, Outbox(db, settings))


async def _create(
    sessions: Sessions, settings: Settings, texts: dict[str, str], community: str | None = None
) -> QueuedBroadcast:
    async with sessions() as db:
        queued = await _news(db, settings).create(texts, community)
        await db.commit()
        return queued


async def broadcast(
    sessions: Sessions, settings: Settings, texts: dict[str, str], community: str | None = None
) -> int:
    """Create a broadcast (committed); how many messages it queued."""
    return (await _create(sessions, settings, texts, community)).recipients


async def send_all(sessions: Sessions, settings: Settings) -> respx.Route:
    """Run the worker until the queue is empty, against a mocked Twilio; the Messages route."""
    worker = OutboxWorker(sessions, settings, client_factory, clock=utcnow, rng=random.Random(3))
    try:
        with respx.mock(assert_all_called=False) as twilio:
            route = twilio.post(MESSAGES_URL).mock(
                side_effect=lambda _: httpx.Response(201, json={"sid": "SM" + random.randbytes(16).hex()})
            )
            while await worker.run_once():
                pass
            return route
    finally:
        await worker.aclose()


async def test_subscribers_get_the_news_once_in_their_language(
    outbound: Settings,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    sessions: Sessions,
    database_url: str,
) -> None:
    """NOTICIAS / WILLAKUY subscribe; only subscribers receive the broadcast, once, in their language."""
    hotline = flows["hotline"]
    assert await _phone(client, signer, SPANISH).text("Noticias") == [hotline.sms["news_subscribed"]["es"]]
    assert await _phone(client, signer, QUECHUA).text("willakuy") == [hotline.sms["news_subscribed"]["qu"]]
    await _phone(client, signer, BYSTANDER).text("hola")
    assert await broadcast(sessions, outbound, TEXTS) == 2
    route = await send_all(sessions, outbound)
    sent = sorted(
        (form["To"][0], form["Body"][0])
        for form in (parse_qs(call.request.content.decode()) for call in route.calls)
    )
    assert sent == [(SPANISH, TEXTS["es"]), (QUECHUA, TEXTS["qu"])]
    again = await send_all(sessions, outbound)
    assert again.call_count == 0
    async with sessions() as db:
        statuses = list(await db.scalars(select(OutboxMessage.status)))
    assert statuses == [MessageStatus.SENT, MessageStatus.SENT]
    assert count_rows(database_url, "subscriptions") == 2


async def test_opt_out_cancels_news_and_deletes_the_number(
    outbound: Settings,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    sessions: Sessions,
    database_url: str,
) -> None:
    """ALTO after subscribing: the queued broadcast is cancelled, the number and subscription are gone."""
    phone = _phone(client, signer, SPANISH)
    await phone.text("NOTICIAS")
    assert await broadcast(sessions, outbound, TEXTS) == 1
    await phone.text("ALTO")
    route = await send_all(sessions, outbound)
    assert route.call_count == 0
    assert count_rows(database_url, "contacts") == 0
    assert count_rows(database_url, "subscriptions") == 0
    assert await broadcast(sessions, outbound, TEXTS) == 0
    engine_url = database_url
    if engine_url.startswith("sqlite"):
        stored = b"".join(
            path.read_bytes() for path in Path(engine_url.split("///", 1)[1]).parent.glob("*.sqlite3*")
        )
        assert SPANISH[1:].encode() not in stored


async def test_community_broadcast_reaches_only_that_community(
    outbound: Settings,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    sessions: Sessions,
) -> None:
    """A broadcast limited to a community skips subscribers of other (or unknown) communities."""
    await _phone(client, signer, SPANISH).text("NOTICIAS")
    await _phone(client, signer, QUECHUA).text("NOTICIAS")
    async with sessions() as db:
        first = await db.scalar(select(Subscription).order_by(Subscription.id))
        assert first is not None
        first.community = "Huayhuay"
        await db.commit()
    assert await broadcast(sessions, outbound, TEXTS, community="Huayhuay") == 1


async def test_too_long_broadcast_is_refused(outbound: Settings, sessions: Sessions) -> None:
    """Each language's text must fit in two SMS segments."""
    with pytest.raises(BroadcastTooLong, match="'es' text"):
        await broadcast(sessions, outbound, {"es": "ó" * 135})
    with pytest.raises(BroadcastTooLong):
        await broadcast(sessions, outbound, {"es": "   "})


def test_broadcast_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`rimay broadcast create` queues and `list` reports; bad --text values are refused."""
    monkeypatch.setenv("RIMAY_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("RIMAY_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        assert runner.invoke(cli, ["migrate"]).exit_code == 0
        created = runner.invoke(
            cli,
            [
                "broadcast",
                "create",
                "--text",
                "es=Feria el domingo.",
                "--text",
                "qu=Domingo p'unchawpi qhatu.",
            ],
        )
        assert created.exit_code == 0, created.output
        assert "queued for 0 subscriber(s)" in created.output
        listed = runner.invoke(cli, ["broadcast", "list"])
        assert "es/qu" in listed.output
        bad = runner.invoke(cli, ["broadcast", "create", "--text", "no-equals-sign"])
        assert bad.exit_code != 0
    finally:
        get_settings.cache_clear()


async def _subscriptions(sessions: Sessions) -> list[tuple[str, str]]:
    async with sessions() as db:
        rows = await db.scalars(select(Subscription).order_by(Subscription.id))
        return [(row.language, row.channel) for row in rows]


@pytest.mark.parametrize(("key", "language"), [("1", "es"), ("2", "qu")])
async def test_voice_library_news_menu_subscribes_with_consent(
    outbound: Settings,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    sessions: Sessions,
    database_url: str,
    key: str,
    language: str,
) -> None:
    """Library 4, then 2, then 1: the caller hears the consent, accepts, and is subscribed."""
    phone = Call(client=client, signer=signer, flows=flows, caller=SPANISH)
    script = iter([key, "1", "4", "2", "1"])
    screens = [screen async for screen in phone.screens(lambda _: next(script, None))]
    hotline = flows["hotline"]
    assert screens[4].prompts[0].text == hotline.nodes["news_subscribe"].prompt[language]
    assert screens[5].prompts[0].text == hotline.nodes["news_subscribed"].prompt[language]
    assert await _subscriptions(sessions) == [(language, "voice")]
    assert count_rows(database_url, "contacts") == 1
    assert await broadcast(sessions, outbound, TEXTS) == 1


async def test_withheld_number_cannot_subscribe(
    outbound: Settings,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    sessions: Sessions,
    database_url: str,
) -> None:
    """A hidden caller id is told why and taken back to the news menu; nothing is stored."""
    phone = Call(client=client, signer=signer, flows=flows, caller="anonymous")
    script = iter(["1", "1", "4", "2", "1"])
    screens = [screen async for screen in phone.screens(lambda _: next(script, None))]
    hotline = flows["hotline"]
    assert [verb.text for verb in screens[5].prompts] == [
        hotline.system["no_number"]["es"],
        hotline.nodes["news"].prompt["es"],
    ]
    assert await _subscriptions(sessions) == []
    assert count_rows(database_url, "contacts") == 0


async def test_sms_menu_subscribes_too(
    outbound: Settings,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    sessions: Sessions,
) -> None:
    """The same subscribe node works by SMS: the texted 1 is the consent."""
    phone = _phone(client, signer, QUECHUA)
    for body in ("hola", "2", "1", "4", "2"):
        await phone.text(body)
    assert await _subscriptions(sessions) == []
    await phone.text("1")
    assert await _subscriptions(sessions) == [("qu", "sms")]


@pytest.mark.parametrize(
    "subscribe_first", [True, False], ids=["subscribe-then-survey", "survey-then-subscribe"]
)
async def test_the_survey_profile_places_a_subscriber_in_a_community(
    outbound: Settings,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    sessions: Sessions,
    subscribe_first: bool,
) -> None:
    """The community a subscriber gives in the survey is where community news reaches them."""
    phone = _phone(client, signer, SPANISH)
    survey = ["hola", "1", "2", "1", "1", "3", "2", "*"]  # profile: mujer, 30-44, morococha; then leave
    for body in ["NOTICIAS", *survey] if subscribe_first else [*survey, "NOTICIAS"]:
        await phone.text(body)
    await _phone(client, signer, QUECHUA).text("NOTICIAS")
    assert await broadcast(sessions, outbound, TEXTS, community="morococha") == 1
    assert await broadcast(sessions, outbound, TEXTS, community="la_oroya") == 0


async def test_counts_of_sent_delivered_and_failed_messages(
    outbound: Settings,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    sessions: Sessions,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three sent; Twilio then reports one delivered and one failed: the service and `list` agree."""
    for number in (SPANISH, QUECHUA, NEIGHBOUR):
        await _phone(client, signer, number).text("NOTICIAS")
    assert await broadcast(sessions, outbound, TEXTS) == 3
    route = await send_all(sessions, outbound)
    sids = [call.response.json()["sid"] for call in route.calls]
    assert len(sids) == 3
    for sid, status in ((sids[0], "delivered"), (sids[1], "failed")):
        report = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC" + "1" * 32}
        headers = signer.headers(signer.public("/twilio/sms/status"), report)
        response = await client.post("/twilio/sms/status", data=report, headers=headers)
        assert (response.status_code, response.json()) == (200, {"status": status})
    async with sessions() as db:
        [made] = await _news(db, outbound).reports()
    assert (made.recipients, made.counts) == (3, {"sent": 1, "delivered": 1, "failed": 1})
    configure_cli(outbound, database_url, tmp_path, monkeypatch)
    try:
        listed = await asyncio.to_thread(CliRunner().invoke, cli, ["broadcast", "list"])
    finally:
        get_settings.cache_clear()
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines() == [
        f"{made.id}\tes/qu\tall communities\t3 queued\tdelivered 1, failed 1, sent 1"
    ]


async def test_subscribers_without_a_text_in_their_language_are_counted_as_left_out(
    outbound: Settings, client: httpx.AsyncClient, signer: TwilioSigner, sessions: Sessions
) -> None:
    """Only a Spanish text: Quechua subscribers get nothing, and the service says how many, per language."""
    await _phone(client, signer, SPANISH).text("NOTICIAS")
    await _phone(client, signer, QUECHUA).text("WILLAKUY")
    await _phone(client, signer, NEIGHBOUR).text("WILLAKUY")
    only_spanish = await _create(sessions, outbound, {"es": TEXTS["es"]})
    assert (only_spanish.recipients, only_spanish.left_out) == (1, {"qu": 2})
    only_quechua = await _create(sessions, outbound, {"qu": TEXTS["qu"]})
    assert (only_quechua.recipients, only_quechua.left_out) == (2, {"es": 1})
    both = await _create(sessions, outbound, TEXTS)
    assert (both.recipients, both.left_out) == (3, {})
    async with sessions() as db:
        first = await db.scalar(select(Subscription).where(Subscription.language == "qu"))
        assert first is not None
        first.community = "Huayhuay"
        await db.commit()
    # Subscribers of other communities are not "left out": the broadcast was never meant for them.
    local = await _create(sessions, outbound, {"es": TEXTS["es"]}, community="Huayhuay")
    assert (local.recipients, local.left_out) == (0, {"qu": 1})


async def test_broadcast_create_cli_names_who_is_left_out(
    outbound: Settings,
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`rimay broadcast create --text es=...` with Quechua subscribers prints how many got nothing."""
    await _phone(client, signer, SPANISH).text("NOTICIAS")
    await _phone(client, signer, QUECHUA).text("WILLAKUY")
    configure_cli(outbound, database_url, tmp_path, monkeypatch)
    runner = CliRunner()
    try:
        partial = await asyncio.to_thread(runner.invoke, cli, ["broadcast", "create", "--text", "es=Feria."])
        complete = await asyncio.to_thread(
            runner.invoke, cli, ["broadcast", "create", "--text", "es=Feria.", "--text", "qu=Qhatu."]
        )
    finally:
        get_settings.cache_clear()
    assert partial.exit_code == 0, partial.output
    assert partial.output.splitlines() == [
        "broadcast 1 queued for 1 subscriber(s)",
        "left out: 1 subscriber(s) in 'qu': no --text qu=...",
    ]
    assert complete.output.splitlines() == ["broadcast 2 queued for 2 subscriber(s)"]
