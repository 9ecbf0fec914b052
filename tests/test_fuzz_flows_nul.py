"""A NUL character in a signed webhook (PostgreSQL text cannot hold one) is dropped, never a failure."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.db.models import CaseMessage
from app.simulator import Call, TextPhone
from tests.fuzz_support import CALLERS, Harness, harness, twiml_screen

__all__ = ["harness"]  # the fixture shared from fuzz_support


@pytest.mark.parametrize(
    "database_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_nul_character_in_an_sms_is_dropped(harness: Harness) -> None:
    """PostgreSQL text cannot hold NUL: a question texted with one is stored without it, not failed."""
    phone = TextPhone(client=harness.client, signer=harness.signer, sender=CALLERS[0])
    for body in ("hola", "1", "3", "1"):  # Spanish, the main menu, a question, about water
        harness.run(phone.text(body))
    reply = harness.run(phone.text("el agua\x00 sale turbia"))
    assert "código de caso" in reply[0]
    assert harness.run(phone.text("\x00")) != []
    assert harness.errors.messages == []
    with harness.db.connect() as connection:
        assert list(connection.scalars(select(CaseMessage.text))) == ["el agua sale turbia"]


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_nul_character_in_digits_is_no_failure(harness: Harness) -> None:
    """A forged key press holding NUL is an invalid key like any other, not a failed webhook."""
    call = Call(client=harness.client, signer=harness.signer, flows=harness.flows, caller=CALLERS[1])
    screen = twiml_screen(harness.run(call.post("/twilio/voice", {})), harness)
    assert screen.gather_action is not None
    after = twiml_screen(harness.run(call.post(screen.gather_action, {"Digits": "1\x00"})), harness)
    assert harness.errors.messages == []
    assert not after.hangup
