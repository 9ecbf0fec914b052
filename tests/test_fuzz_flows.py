"""Hypothesis walks every shipped flow by signed webhooks: arbitrary keys, silence, hang-ups, redeliveries."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from app.simulator import Call, Screen, TextPhone, parse_messages
from tests.fuzz_support import CALLERS, Harness, harness, plaintext_numbers, twiml_screen

__all__ = ["harness"]  # a fixture, used by name

MAX_WALK = 200
"""A call that gets only silence must be hung up on within this many steps."""
KEYS = st.one_of(
    st.sampled_from([*"0123456789*#"]),
    st.sampled_from(["1", "2", "3", "4", "9"]),  # the main menu's keys, so walks get deep
    st.text(alphabet="0123456789*#", min_size=2, max_size=40),
    st.just(""),
    # Never sent by Twilio, but a signed request may carry anything, NUL included.
    st.text(max_size=12),
)
BODIES = st.one_of(
    st.sampled_from(["1", "2", "3", "0", "9", "*", "MENU", "NOTICIAS", "ALTO", "hola", "SI", "NO"]),
    st.text(max_size=60),
    st.just(""),
    st.sampled_from(["x", "ñ", "👍", "á"]).map(lambda c: c * 2000),
)


OFFERED = re.compile(r"(?<![\d.,])\d(?![\d.])")
"""A key named in a prompt or reply ("marque 2", "1, nada;", "1 Consulta previa"), not part of a number."""


def offered(texts: list[str]) -> list[str]:
    """The keys the caller is told about (asterisco and numeral too); a keypad's 1-6 if none is named."""
    said = " ".join(texts)
    keys = set(OFFERED.findall(said))
    keys |= {key for word, key in (("asterisco", "*"), ("numeral", "#")) if word in said}
    return sorted(keys) or [*"123456"]


class Walk(RuleBasedStateMachine):
    """What every walk shares: the harness, a fresh hotline per example, and the stored-answer invariant."""

    harness: ClassVar[Harness]
    reached: ClassVar[set[str]]
    """Nodes entered in any example: proof that the walks get deep into the flow, not just its menus."""

    def __init__(self) -> None:
        super().__init__()
        self.harness.reset()

    def teardown(self) -> None:
        """Note the nodes this example reached."""
        self.reached.update(self.harness.entered())

    @invariant()
    def nothing_failed(self) -> None:
        """No webhook hit an unexpected error (it would have been answered with an apology)."""
        assert self.harness.errors.messages == []

    @invariant()
    def one_answer_per_question_and_run(self) -> None:
        """However the caller presses, redelivers or hangs up, no question is answered twice in a run."""
        assert self.harness.doubled_answers() == []

    def redelivered(self, send: Callable[[], httpx.Response], first: httpx.Response) -> None:
        """Sending a webhook again gets the same answer and stores nothing new."""
        before = self.harness.counts()
        again = send()
        assert (again.status_code, again.text) == (first.status_code, first.text)
        assert self.harness.counts() == before


class VoiceWalk(Walk):
    """Calls: arbitrary keys, silences, recordings, hang-ups, late steps and redeliveries of any step."""

    def __init__(self) -> None:
        super().__init__()
        self.call: Call | None = None
        self.screen = Screen()
        self.steps = 0
        self.hung_up: tuple[Call, str] | None = None  # a finished call and its last action URL
        self.posted: list[tuple[Call, str, dict[str, str], httpx.Response]] = []

    def post(self, call: Call, url: str, extra: dict[str, str]) -> httpx.Response:
        """POST a signed webhook for a call and remember it for redelivery."""
        response = self.harness.run(call.post(url, extra))
        self.posted.append((call, url, extra, response))
        return response

    def show(self, response: httpx.Response) -> None:
        """Check an answer and follow it: a <Hangup/> ends the call as Twilio would."""
        assert self.call is not None
        screen = twiml_screen(response, self.harness)
        action = screen.gather_action or screen.record_action
        assert screen.hangup or action, f"a dead end: neither a question nor <Hangup/>:\n{response.text}"
        self.screen, self.steps = screen, self.steps + 1
        if screen.hangup:
            self.finish()

    def finish(self) -> None:
        """Twilio's status callback at the end of a call: a 204, whatever state the call was in."""
        assert self.call is not None
        call, action = self.call, self.screen.gather_action or self.screen.record_action
        status = {"CallStatus": "completed", "CallDuration": str(self.steps)}
        response = self.harness.run(call.post("/twilio/voice/status", status))
        assert response.status_code == 204, response.text
        self.call = None
        if action is not None:
            self.hung_up = (call, action)

    def action(self) -> str:
        assert self.call is not None
        action = self.screen.gather_action or self.screen.record_action
        assert action is not None
        return action

    @precondition(lambda self: self.call is None)
    @rule(caller=st.sampled_from(CALLERS))
    def dial(self, caller: str) -> None:
        """A new call comes in."""
        h = self.harness
        self.call = Call(client=h.client, signer=h.signer, flows=h.flows, caller=caller)
        self.steps = 0
        self.show(self.post(self.call, "/twilio/voice", {"CallStatus": "ringing"}))

    @precondition(lambda self: self.call is not None and self.screen.gather_action is not None)
    @rule(keys=KEYS)
    def press(self, keys: str) -> None:
        """The caller presses keys at a <Gather> (an empty Digits is Twilio's empty result)."""
        assert self.call is not None
        self.show(self.post(self.call, self.action(), {"Digits": keys, "CallStatus": "in-progress"}))

    @precondition(lambda self: self.call is not None and self.screen.gather_action is not None)
    @rule(data=st.data())
    def follow_prompts(self, data: st.DataObject) -> None:
        """The caller presses a few keys the prompts name, so walks reach deep into the flow."""
        for _ in range(data.draw(st.integers(min_value=1, max_value=6), label="presses")):
            if self.call is None or self.screen.gather_action is None:
                return
            keys = offered([verb.text for verb in self.screen.prompts])
            self.press(data.draw(st.sampled_from(keys), label="key"))

    @precondition(lambda self: self.call is not None)
    @rule()
    def stay_silent(self) -> None:
        """A <Gather> times out, or a <Record> hears nothing and its <Redirect> posts without a recording."""
        assert self.call is not None
        self.show(self.post(self.call, self.action(), {"CallStatus": "in-progress"}))

    @precondition(lambda self: self.call is not None and self.screen.record_action is not None)
    @rule(pressed=st.sampled_from(["#", "*", "1", ""]))
    def speak(self, pressed: str) -> None:
        """The caller speaks at a <Record> and ends with a key (`*` skips)."""
        assert self.call is not None
        extra = {**self.call.recorded(pressed), "CallStatus": "in-progress"}
        self.show(self.post(self.call, self.action(), extra))

    @precondition(lambda self: self.call is not None)
    @rule()
    def hang_up(self) -> None:
        """The caller hangs up mid-call."""
        self.finish()

    @precondition(lambda self: self.hung_up is not None)
    @rule(keys=KEYS)
    def step_after_hang_up(self, keys: str) -> None:
        """A step arriving after the call ended (a delayed or forged request) still gets valid TwiML."""
        assert self.hung_up is not None
        call, action = self.hung_up
        twiml_screen(self.post(call, action, {"Digits": keys}), self.harness)

    @precondition(lambda self: self.call is not None)
    @rule(ahead=st.integers(min_value=2, max_value=5))
    def step_from_the_future(self, ahead: int) -> None:
        """A step number never offered repeats the current question and stores nothing."""
        assert self.call is not None
        path, _, query = self.action().partition("?")
        base, number = path.rsplit("/", 1)
        future = f"{base}/{int(number) + ahead - 1}" + (f"?{query}" if query else "")
        before = self.harness.counts()
        # Not kept for redelivery: its answer is the current step's, which a later real step replaces.
        response = self.harness.run(self.call.post(future, {"Digits": "1"}))
        twiml_screen(response, self.harness)
        assert self.harness.counts() == before

    @precondition(lambda self: bool(self.posted))
    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        """Twilio sends any earlier step again: the same TwiML, nothing stored."""
        index = data.draw(st.integers(min_value=0, max_value=len(self.posted) - 1), label="webhook")
        call, url, extra, first = self.posted[index]
        self.redelivered(lambda: self.harness.run(call.post(url, extra)), first)

    def teardown(self) -> None:
        """A call still open must end within MAX_WALK steps of silence."""
        while self.call is not None:
            assert self.steps <= MAX_WALK, "the call never hung up on a silent caller"
            self.show(self.harness.run(self.call.post(self.action(), {"CallStatus": "in-progress"})))
        super().teardown()


class TextWalk(Walk):
    """SMS: arbitrary bodies (unicode, empty, 2000 characters) from a few phones, and redeliveries."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[tuple[str, str, str, httpx.Response]] = []
        self.replies: dict[str, list[str]] = {}  # the last reply's texts, per phone

    def send(self, sender: str, sid: str, body: str) -> httpx.Response:
        """Deliver one signed SMS."""
        phone = TextPhone(client=self.harness.client, signer=self.harness.signer, sender=sender)
        return self.harness.run(phone.send(body, message_sid=sid))

    @rule(sender=st.sampled_from(CALLERS), body=BODIES)
    def text(self, sender: str, body: str) -> None:
        """A message comes in: the reply is valid TwiML with at most one message."""
        sid = "SM" + secrets.token_hex(16)
        response = self.send(sender, sid, body)
        twiml_screen(response, self.harness)
        self.replies[sender] = parse_messages(response.text)
        assert len(self.replies[sender]) <= 1
        self.texts.append((sender, sid, body, response))

    @rule(sender=st.sampled_from(CALLERS), data=st.data())
    def reply_as_offered(self, sender: str, data: st.DataObject) -> None:
        """The phone answers a few times with a key its last reply names ("1 Consulta previa")."""
        for _ in range(data.draw(st.integers(min_value=1, max_value=6), label="replies")):
            self.text(sender, data.draw(st.sampled_from(offered(self.replies.get(sender, []))), label="key"))

    @precondition(lambda self: bool(self.texts))
    @rule(data=st.data())
    def redeliver_text(self, data: st.DataObject) -> None:
        """Twilio delivers a message again: the same reply, nothing stored."""
        index = data.draw(st.integers(min_value=0, max_value=len(self.texts) - 1), label="message")
        sender, sid, body, first = self.texts[index]
        self.redelivered(lambda: self.send(sender, sid, body), first)


class MixedWalk(VoiceWalk, TextWalk):
    """The same callers by voice and by SMS: a survey begun on one channel continues on the other."""


def walk_settings(examples: int, steps: int) -> hypothesis_settings:
    """Bounded for CI; derandomized with no example database, so every run walks the same way."""
    return hypothesis_settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        derandomize=True,  # the same walks on every run, so the depth they reach can be asserted
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


def walk(machine: type[Walk], harness: Harness, examples: int, steps: int) -> set[str]:
    """Run a state machine against the harness; the nodes its walks reached."""
    reached: set[str] = set()
    bound = type(machine.__name__, (machine,), {"harness": harness, "reached": reached})
    run_state_machine_as_test(bound, settings=walk_settings(examples, steps))
    return reached


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("machine", "steps", "expected"),
    [
        (VoiceWalk, 40, {"main", "library", "ask_record", "ask_review"}),
        (TextWalk, 30, {"main", "eia_1", "q_water", "q_comment", "ask_record"}),
        (MixedWalk, 40, {"main", "eia_1", "q_water", "ask_record"}),
    ],
    ids=["voice", "sms", "mixed"],
)
def test_arbitrary_walks_keep_the_invariants(
    harness: Harness, database_url: str, machine: type[Walk], steps: int, expected: set[str]
) -> None:
    """Every answer is 2xx TwiML, every call ends, no answer is doubled, redeliveries store nothing."""
    reached = walk(machine, harness, examples=25, steps=steps)
    assert expected <= reached, "the walks no longer reach deep into the flow"
    files = list(Path(database_url.removeprefix("sqlite:///")).parent.glob("*.sqlite3*"))
    assert files
    assert plaintext_numbers(files, CALLERS) == []


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_arbitrary_walks_on_postgresql(harness: Harness) -> None:
    """A few mixed walks on PostgreSQL, whose row locks and text types differ from SQLite's."""
    walk(MixedWalk, harness, examples=5, steps=40)
