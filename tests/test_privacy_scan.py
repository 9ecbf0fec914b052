"""No phone number at rest: scan the SQLite files, the server log and a PostgreSQL dump after real calls."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.flows.model import FlowDefinition
from app.simulator import Call, TextPhone, TwilioSigner
from tests.conftest import AUTH_TOKEN
from tests.pg import PostgresServer
from tests.server import Service, running_service
from tests.test_voice_endpoints import walk

NUMBER = "+51964123987"
OTHER = "+51964555000"
NEEDLES = (NUMBER, NUMBER[1:], NUMBER[3:], "%2B" + NUMBER[1:], "964 123 987", OTHER[1:], OTHER[3:])


def _hits(blob: bytes) -> list[str]:
    return [needle for needle in NEEDLES if needle.encode() in blob]


@pytest.fixture
def server(tmp_path: Path, audio_data_dir: Path) -> Iterator[Service]:
    """The real service under uvicorn on loopback, on SQLite, logging to a file at DEBUG."""
    with running_service(tmp_path, generated_audio=audio_data_dir / "audio", log_level="DEBUG") as service:
        yield service


async def test_no_number_in_sqlite_or_server_log(server: Service, flows: dict[str, FlowDefinition]) -> None:
    """After full calls over HTTP (with numbers keyed and texted at menus, an error and a forged request)."""
    base_url, data_dir, log_path = server.base_url, server.data_dir, server.log_path
    signer = TwilioSigner(AUTH_TOKEN, base_url)
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        phone = Call(client=client, signer=signer, flows=flows, caller=NUMBER)
        await walk(phone, ["2", "1", "1", "2", "0", "7", "9"])
        again = Call(client=client, signer=signer, flows=flows, caller=NUMBER)
        await walk(again, ["1", NUMBER[1:]])
        keyed = Call(client=client, signer=signer, flows=flows, caller=OTHER)
        await walk(keyed, ["1", "1" + NUMBER[1:] + "1", NUMBER[3:]])
        texter = TextPhone(client=client, signer=signer, sender=NUMBER)
        for body in (
            "hola",
            "2",
            f"llamen al {OTHER[3:]}",
            "mi numero 964 123 987",
            "1",
            "NOTICIAS",
            "👍",
            "x" * 1700,
        ):
            await texter.text(body)
        other = TextPhone(client=client, signer=signer, sender=OTHER)
        for body in ("hola", "NOTICIAS", "ALTO"):
            await other.text(body)
        # The two-way line: a number keyed at the topics, a question by voice answered by SMS, and one by SMS.
        asker = Call(client=client, signer=signer, flows=flows, caller=NUMBER)
        await walk(asker, ["3", NUMBER[3:], "1", "#", "1", "2"])
        for body in ("MENU", "3", "1", f"mi vecina {OTHER} dice que el agua huele mal", "2"):
            await texter.text(body)
        forged = await client.post("/twilio/voice", data={"CallSid": "CA" + "f" * 32, "From": NUMBER})
        assert forged.status_code == 403
        malformed = await phone.post("/twilio/voice", {"CallSid": "bogus"})
        assert malformed.status_code == 400
    await asyncio.sleep(0.5)  # let the server flush its log
    files = [path for path in data_dir.glob("rimay.sqlite3*") if path.is_file()]
    assert files, "the SQLite database was not created where expected"
    for path in [*files, log_path]:
        assert _hits(path.read_bytes()) == [], f"phone number found in {path.name}"
    log = log_path.read_text()
    assert "POST /twilio/voice" in log, "the log scanned must be the server's real access log"
    with contextlib.closing(sqlite3.connect(data_dir / "rimay.sqlite3")) as db:
        cases = db.execute("SELECT channel, reply_by FROM cases ORDER BY id").fetchall()
        contacts = db.execute("SELECT count(*) FROM contacts WHERE consent_sms_replies").fetchone()
    assert cases == [("voice", "sms"), ("sms", "sms")], "both questions were scanned"
    assert contacts == (1,), "her number is stored, encrypted, for the SMS answers"


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_no_number_in_postgresql_dump(
    postgres_server: PostgresServer | None, database_url: str, phone: Call
) -> None:
    """A pg_dump after a full call holds pseudonyms only."""
    assert postgres_server is not None
    caller = Call(client=phone.client, signer=phone.signer, flows=phone.flows, caller=NUMBER)
    await walk(
        caller, ["1", "1", "4", "1", "2", "0", "2", "1", "9", "2", "1", "1", "3", "2", "5", NUMBER[3:], "*"]
    )
    texter = TextPhone(client=phone.client, signer=phone.signer, sender=OTHER)
    for body in ("hola", f"+{OTHER[1:]}", "1", "NOTICIAS"):
        await texter.text(body)
    for body in ("MENU", "3", "4", f"llamen al {NUMBER}", "2"):
        await texter.text(body)
    dump = postgres_server.dump(database_url.rsplit("/", 1)[1])
    assert "COPY public.cases" in dump
    assert "llamen al [phone]" in dump, "the case's question is in the dump that was scanned"
    assert "COPY public.interactions" in dump
    assert "COPY public.contacts" in dump
    assert "COPY public.answers" in dump
    assert "agua" in dump, "the survey answers are in the dump that was scanned"
    assert dump.count("\\x") >= 2, "both subscribers' numbers are stored, encrypted"
    assert _hits(dump.encode()) == []
