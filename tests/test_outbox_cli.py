"""`rimay worker`, `rimay outbox list` and `rimay outbox retry`, driven as an operator would."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import respx
from sqlalchemy import update
from typer.testing import CliRunner

from app.cli import app
from app.contacts.crypto import ContactCipher
from app.contacts.models import ContactPurpose
from app.contacts.service import ContactService
from app.outbox.models import OutboxMessage
from app.outbox.service import Outbox
from app.settings import Settings, get_settings
from app.simulator import TextPhone, TwilioSigner
from tests.conftest import AUTH_TOKEN, PUBLIC_BASE_URL
from tests.outbound import ACCOUNT_SID, CALLS_URL, HOTLINE, MESSAGES_URL, NUMBER, sessions_for
from tests.outbox_support import created, form, refused
from tests.test_outbox_service import add_caller, hits

runner = CliRunner()


def configure_cli(
    settings: Settings, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Point `rimay` at the test database, secrets and Twilio account, through the environment."""
    assert settings.contact_key is not None
    assert settings.secret_key is not None
    variables = {
        "RIMAY_DATA_DIR": str(tmp_path),
        "RIMAY_DATABASE_URL": database_url,
        "RIMAY_PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "RIMAY_SECRET_KEY": settings.secret_key.get_secret_value(),
        "RIMAY_CONTACT_KEY": settings.contact_key.get_secret_value(),
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "RIMAY_TWILIO_NUMBER": HOTLINE,
        "RIMAY_LOG_LEVEL": "WARNING",
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


@pytest.fixture
def environment(
    settings: Settings, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The test database and secrets, configured through the environment."""
    configure_cli(settings, database_url, tmp_path, monkeypatch)
    yield
    get_settings.cache_clear()


async def _queue(settings: Settings, bodies: list[str], failed: bool = False) -> list[int]:
    async with sessions_for(settings.sqlalchemy_url) as sessions:
        caller_id = await add_caller(sessions, settings)
        ids = []
        async with sessions() as db, db.begin():
            for body in bodies:
                message = await Outbox(db, settings).enqueue_sms(caller_id, body)
                assert message is not None
                ids.append(message.id)
            if failed:
                values = {"status": "failed", "attempts": 5, "last_error": "HTTP 503 code 503: down"}
                await db.execute(update(OutboxMessage).where(OutboxMessage.id == ids[0]).values(**values))
        return ids


def test_worker_once_sends_what_is_due(environment: None, settings: Settings) -> None:
    """`rimay worker --once` sends the queue through Twilio and says how many rows it handled."""
    asyncio.run(_queue(settings, ["uno", "dos"]))
    with respx.mock() as twilio:
        route = twilio.post(MESSAGES_URL).mock(side_effect=created)
        result = runner.invoke(app, ["worker", "--once"])
    assert result.exit_code == 0, result.output
    assert "2 message(s) processed" in result.output
    assert route.call_count == 2
    listing = runner.invoke(app, ["outbox", "list"])
    assert listing.exit_code == 0, listing.output
    assert listing.output.count(" sent ") == 2
    assert hits(listing.output.encode()) == []


def test_worker_without_credentials_says_what_to_set(
    environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No account SID: exit 1 with the variable to set, nothing claimed."""
    monkeypatch.delenv("TWILIO_ACCOUNT_SID")
    get_settings.cache_clear()
    result = runner.invoke(app, ["worker", "--once"])
    assert result.exit_code == 1
    assert "TWILIO_ACCOUNT_SID" in result.output


def retry(message_id: int) -> tuple[int, str]:
    """Run `rimay outbox retry ID`: the exit code and what it printed."""
    result = runner.invoke(app, ["outbox", "retry", str(message_id)])
    return result.exit_code, result.output.strip()


def test_list_and_retry_a_failed_row(environment: None, settings: Settings) -> None:
    """list shows ids, kinds, statuses, errors (never numbers or bodies); retry re-queues failed rows only."""
    failed, pending = asyncio.run(_queue(settings, ["secreto uno", "secreto dos"], failed=True))
    result = runner.invoke(app, ["outbox", "list", "--status", "failed"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[0].split()[:4] == ["id", "kind", "status", "try"]
    assert len(lines) == 2
    assert lines[1].split()[:4] == [str(failed), "sms", "failed", "5"]
    assert lines[1].endswith("HTTP 503 code 503: down")
    assert "secreto" not in result.output
    assert retry(pending) == (1, f"outbox {pending} is not a failed row; nothing changed")
    assert retry(failed) == (0, f"outbox {failed} queued again")
    result = runner.invoke(app, ["outbox", "list", "--status", "pending"])
    assert result.output.count(" pending ") == 2
    assert retry(failed) == (1, f"outbox {failed} is not a failed row; nothing changed")
    unknown = pending + 1000
    assert retry(unknown) == (1, f"outbox {unknown} does not exist; see `rimay outbox list`")
    assert runner.invoke(app, ["outbox", "list", "--status", "bogus"]).exit_code == 2


async def _queue_call_back(settings: Settings) -> tuple[int, int]:
    """A caller who asked for a call-back, and the queued call; their ids."""
    async with sessions_for(settings.sqlalchemy_url) as sessions:
        caller_id = await add_caller(sessions, settings, [ContactPurpose.CALLBACK])
        async with sessions() as db, db.begin():
            message = await Outbox(db, settings).enqueue_call(caller_id, "hotline", not_before=None)
            assert message is not None
            return caller_id, message.id


async def _ask_again(settings: Settings, caller_id: int) -> None:
    """The caller rings again and asks for a call-back: their number is kept for one once more."""
    cipher = ContactCipher.from_secret(settings.contact_secret)
    async with sessions_for(settings.sqlalchemy_url) as sessions, sessions() as db, db.begin():
        await ContactService(db, cipher).remember(caller_id, NUMBER, ContactPurpose.CALLBACK)


def test_retry_refuses_a_call_back_whose_number_was_deleted(environment: None, settings: Settings) -> None:
    """A call-back refused by Twilio loses its number, so retry says why it cannot help; once the caller
    asks again, the number is there and the row can be retried."""
    caller_id, call_id = asyncio.run(_queue_call_back(settings))
    with respx.mock() as twilio:
        route = twilio.post(CALLS_URL).mock(return_value=refused(400, 21211))
        ran = runner.invoke(app, ["worker", "--once"])
    assert ran.exit_code == 0, ran.output
    assert route.call_count == 1
    code, said = retry(call_id)
    assert (code, said) == (
        1,
        f"outbox {call_id} is a call-back whose number was deleted when it failed; "
        "it cannot be retried (the caller can ring again)",
    )
    listing = runner.invoke(app, ["outbox", "list"]).output.strip().splitlines()
    assert listing[1].split()[:4] == [str(call_id), "call", "failed", "1"], "the row is left as it was"
    assert hits((said + "\n".join(listing)).encode()) == []
    asyncio.run(_ask_again(settings, caller_id))
    assert retry(call_id) == (0, f"outbox {call_id} queued again")


async def test_broadcast_reaches_only_opted_in_subscribers_once_through_the_worker(
    environment: None, client: httpx.AsyncClient, signer: TwilioSigner
) -> None:
    """Subscribed by SMS, one says ALTO; `broadcast create`, `worker --once` twice: one SMS each, once."""
    subscribers = ["+51965100001", "+51965100002", "+51965100003"]
    for number in subscribers:
        assert await TextPhone(client=client, signer=signer, sender=number).text("NOTICIAS")
    opted_out = subscribers.pop(1)
    assert await TextPhone(client=client, signer=signer, sender=opted_out).text("ALTO")
    queued = await asyncio.to_thread(
        runner.invoke, app, ["broadcast", "create", "--text", "es=Faena comunal el lunes."]
    )
    assert queued.exit_code == 0, queued.output
    assert "queued for 2 subscriber(s)" in queued.output
    with respx.mock() as twilio:
        route = twilio.post(MESSAGES_URL).mock(side_effect=created)
        first = await asyncio.to_thread(runner.invoke, app, ["worker", "--once"])
        sent = [form(call.request) for call in route.calls]
        second = await asyncio.to_thread(runner.invoke, app, ["worker", "--once"])
    assert (first.exit_code, second.exit_code) == (0, 0), first.output + second.output
    assert "2 message(s) processed" in first.output
    assert "0 message(s) processed" in second.output
    assert route.call_count == 2, "the second run sends nothing again"
    recipients = sorted(message["To"] for message in sent)
    assert recipients == sorted(subscribers)
    assert opted_out not in recipients
    assert all(message["Body"] == "Faena comunal el lunes." for message in sent)
