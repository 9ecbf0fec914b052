"""Hypothesis walks every shipped flow by signed webhooks: arbitrary keys, silence, hang-ups, redeliveries."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

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
from sqlalchemy import func, select

from app.db.engine import make_sync_engine
from app.db.models import Answer, Base, CaseMessage, Interaction
from app.main import create_app
from app.settings import Settings
from app.simulator import Call, Screen, TextPhone, TwilioSigner, parse_messages, parse_twiml
from tests.conftest import AUTH_TOKEN, PUBLIC_BASE_URL

T = TypeVar("T")
CALLERS = ("+51964123987", "+51964555000")
"""A small pool, so callers come back: remembered languages, unfinished surveys, unheard answers."""
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


def needles(numbers: tuple[str, ...]) -> list[bytes]:
    """The ways a phone number could appear in plaintext (E.164, digits, national, URL-encoded)."""
    found = []
    for number in numbers:
        found += [number, number[1:], number[3:], "%2B" + number[1:]]
    return [needle.encode() for needle in found]


def plaintext_numbers(paths: list[Path], numbers: tuple[str, ...]) -> list[str]:
    """Which files hold one of the numbers in plaintext."""
    return [path.name for path in paths for needle in needles(numbers) if needle in path.read_bytes()]


class ErrorLog(logging.Handler):
    """Keeps the app's ERROR records: a webhook that failed was answered with an apology, which is a bug."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class Harness:
    """The real app on one database, driven from synchronous hypothesis rules on an event loop of its own."""

    def __init__(self, settings: Settings) -> None:
        self.errors = ErrorLog()
        logging.getLogger("app").addHandler(self.errors)
        self.runner = asyncio.Runner()
        self.app = create_app(settings)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=PUBLIC_BASE_URL)
        self.signer = TwilioSigner(AUTH_TOKEN, PUBLIC_BASE_URL)
        self.flows = self.app.state.flows
        self.db = make_sync_engine(settings.sqlalchemy_url)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run one request (or other coroutine) to completion on the harness's loop."""
        return self.runner.run(coroutine)

    def reset(self) -> None:
        """Empty every table, so each hypothesis example starts from a new hotline and replays exactly."""
        self.errors.messages.clear()
        with self.db.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())

    def counts(self) -> dict[str, int]:
        """Rows per table: a redelivery must not change any of them."""
        with self.db.connect() as connection:
            return {
                table.name: int(connection.execute(select(func.count()).select_from(table)).scalar_one())
                for table in Base.metadata.sorted_tables
            }

    def entered(self) -> set[str]:
        """Every node a session entered."""
        with self.db.connect() as connection:
            query = select(Interaction.node).where(Interaction.event == "entered").distinct()
            return set(connection.scalars(query))

    def doubled_answers(self) -> list[tuple[Any, ...]]:
        """(run, question, count) for every question answered more than once in one survey run."""
        query = (
            select(Answer.run_id, Answer.question_id, func.count())
            .group_by(Answer.run_id, Answer.question_id)
            .having(func.count() > 1)
        )
        with self.db.connect() as connection:
            return [tuple(row) for row in connection.execute(query)]

    def close(self) -> None:
        """Close the client, the app's engine, the loop and the checking engine."""
        self.run(self.client.aclose())
        self.run(self.app.state.engine.dispose())
        self.runner.close()
        self.db.dispose()
        logging.getLogger("app").removeHandler(self.errors)


def twiml_screen(response: httpx.Response, harness: Harness) -> Screen:
    """A webhook's answer must be a 2xx with TwiML that parses; the screen it shows."""
    assert 200 <= response.status_code < 300, f"{response.status_code}: {response.text[:300]}"
    assert response.headers["content-type"].startswith("application/xml")
    return parse_twiml(response.text, harness.flows)


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


@pytest.fixture
def harness(settings: Settings) -> Iterator[Harness]:
    """The app over the test's database, on a loop of its own (hypothesis rules are synchronous)."""
    made = Harness(settings)
    try:
        yield made
    finally:
        made.close()


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
