"""Continuing an unfinished survey: offered after the welcome, and within the call that left it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from app.db.base import utcnow
from app.db.engine import make_sync_engine
from app.flows.engine import resume, start
from app.flows.events import (
    Answered,
    ConsentGiven,
    Digits,
    NoInput,
    ProfileReused,
    RunRestarted,
    RunState,
    Say,
    Step,
    TextMessage,
)
from app.flows.loader import load_flows
from app.flows.model import FlowDefinition
from app.sessions.models import CallSession
from app.settings import Settings
from app.simulator import TextPhone, TwilioSigner
from app.survey.models import ConsentCount
from tests.conftest import CALLER
from tests.test_survey import EXPECTED, LIKERT, PROFILE, _call, answers, rows, runs, walk

ROOT = Path(__file__).resolve().parents[1]
HOTLINE = load_flows(ROOT / "voice_flows")["hotline"]
UNFINISHED = RunState(node="greeting", open_run=True, answered=("genero",), has_profile=False)


def said(step: Step) -> list[str]:
    """The prompt keys said in one step."""
    return [event.prompt.key for event in step.events if isinstance(event, Say)]


def press(state: RunState, *keys: str | None) -> list[Step]:
    """Press each key in turn on the shipped hotline (None is silence)."""
    steps: list[Step] = []
    for key in keys:
        steps.append(resume(HOTLINE, state, NoInput() if key is None else Digits(key)))
        state = steps[-1].state
    return steps


def survey_events(steps: list[Step]) -> list[object]:
    """The survey events of a walk: what the host stores."""
    kinds = (Answered, ConsentGiven, RunRestarted, ProfileReused)
    return [event for step in steps for event in step.events if isinstance(event, kinds)]


# ---------------------------------------------------------------- the offer after the welcome


@pytest.mark.parametrize("language", ["es", "qu"])
def test_a_returning_caller_with_an_unfinished_run_is_offered_it_before_the_menu(language: str) -> None:
    """After the welcome comes the offer, not the menu; 1 goes on at the first unanswered question."""
    first = start(HOTLINE, language=language, memory=UNFINISHED)
    assert said(first) == ["welcome_back", "survey_offer"]
    assert first.state.node == "survey_offer"
    [step] = press(first.state, "1")
    assert said(step) == ["q_age"], "consent and the answered gender are not asked again"
    assert survey_events([step]) == []


def test_a_first_call_language_choice_leads_to_the_offer() -> None:
    """Without a remembered language the offer follows the language menu."""
    first = start(HOTLINE, memory=UNFINISHED)
    [step] = press(first.state, "2")
    assert said(step) == ["survey_offer"]
    assert {event.prompt.language for event in step.events if isinstance(event, Say)} == {"qu"}


@pytest.mark.parametrize("key", ["2", "9", "5", "*", "#", "12"])
def test_any_other_key_at_the_offer_goes_to_the_main_menu(key: str) -> None:
    """Only 1 continues; 9 and any other key lead to the main menu, and the run stays open."""
    first = start(HOTLINE, language="es", memory=UNFINISHED)
    [step] = press(first.state, key)
    assert said(step) == ["main"]
    assert survey_events([step]) == []
    assert (step.state.open_run, step.state.answered) == (True, ("genero",))


def test_zero_repeats_the_offer_and_silence_asks_again() -> None:
    """0 repeats it; silence asks again, like any step that waits for a key."""
    first = start(HOTLINE, language="es", memory=UNFINISHED)
    repeat, silence = press(first.state, "0", None)
    assert said(repeat) == ["survey_offer"]
    assert said(silence) == ["_no_input", "survey_offer"]


def test_a_text_at_the_offer_goes_to_the_main_menu() -> None:
    """By SMS any reply but 1 (and 0) is 'another key'."""
    first = start(HOTLINE, language="es", memory=UNFINISHED)
    step = resume(HOTLINE, first.state, TextMessage("hola"))
    assert said(step) == ["main"]


def test_without_an_unfinished_run_there_is_no_offer() -> None:
    """A finished or absent run: the welcome leads straight to the main menu."""
    assert said(start(HOTLINE, language="es", memory=RunState(node="greeting"))) == ["welcome_back", "main"]


# ---------------------------------------------------------------- within the same call


def into_the_survey() -> RunState:
    """A first call in Spanish that accepted the survey and gave its gender."""
    state = start(HOTLINE).state
    for step in press(state, "1", "2", "1", "1"):
        state = step.state
    return state


def test_leaving_with_nine_and_coming_back_continues_the_same_run() -> None:
    """9 mid-survey, then 2: the survey offers to continue; 1 asks the next question, nothing twice."""
    left, back, continued = press(into_the_survey(), "9", "2", "1")
    assert said(left) == ["main"]
    assert said(back) == ["survey"], "the survey's own offer: 1 continue, 2 start again"
    assert said(continued) == ["q_age"]
    assert survey_events([left, back, continued]) == []
    assert continued.state.answered == ("genero",)


def test_changing_language_mid_survey_offers_to_continue() -> None:
    """* at the main menu, then a language: the offer comes before the menu, as on a new call."""
    _, _, chosen = press(into_the_survey(), "9", "*", "2")
    assert said(chosen) == ["survey_offer"]


def test_starting_again_in_the_same_call_asks_the_profile_afresh() -> None:
    """2 at the survey's offer closes the run; the consent starts a new one with nothing answered."""
    steps = press(into_the_survey(), "9", "2", "2", "1")
    assert [type(event) for event in survey_events(steps)] == [RunRestarted, ConsentGiven]
    assert said(steps[-1]) == ["q_gender"]


def test_after_finishing_a_second_survey_in_the_call_starts_with_consent() -> None:
    """A completed run is not offered: 2 leads to the consent, and the new run asks everything."""
    steps = press(into_the_survey(), *PROFILE[1:], *LIKERT, "*", "2")
    assert said(steps[-1]) == ["survey_consent"]
    assert (steps[-1].state.open_run, steps[-1].state.answered) == (False, ())
    [accepted] = press(steps[-1].state, "1")
    assert said(accepted) == ["survey_same_person"], "this call's own profile may be reused"


def test_an_under_18_answer_is_never_reused_in_the_same_call() -> None:
    """A phone with an adult profile; this call's caller is under 18, then tries the survey again."""
    adult = RunState(node="greeting", has_profile=True)
    state = start(HOTLINE, language="es", memory=adult).state
    steps = press(state, "2", "1", "2", "1", "1")  # survey, consent, someone else, a woman, under 18
    assert said(steps[-1]) == ["survey_minor", "main"]
    again = press(steps[-1].state, "2", "1")
    assert said(again[-1]) == ["q_gender"], "not 'are you the same person?': the age is asked again"


def test_the_same_person_is_not_asked_again_after_leaving() -> None:
    """A reused profile counts as answered: continuing in the call goes on after it."""
    state = start(HOTLINE, language="es", memory=RunState(node="greeting", has_profile=True)).state
    steps = press(state, "2", "1", "1", "3", "9", "2", "1")
    assert said(steps[2]) == ["q_water"]
    assert said(steps[-1]) == ["q_air"]
    assert [type(event) for event in survey_events(steps)] == [ConsentGiven, ProfileReused, Answered]


# ---------------------------------------------------------------- through the endpoints


@pytest.fixture
def twilio_account(app: FastAPI, outbound: Settings) -> None:
    """The app knows its Twilio account, as in the survey tests."""
    app.state.settings = outbound


@pytest.mark.usefixtures("twilio_account")
@pytest.mark.parametrize(("key", "language"), [("1", "es"), ("2", "qu")])
async def test_leaving_and_coming_back_in_one_call_stores_each_answer_once(
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    database_url: str,
    key: str,
    language: str,
) -> None:
    """By voice: 9 after the age, 2 and 1 to continue; one run, one consent, every answer once."""
    hotline = flows["hotline"]
    script = [key, "2", "1", *PROFILE[:2], "9", "2", "1", PROFILE[2], *LIKERT, "*"]
    screens = await walk(_call(client, signer, flows), script)
    assert screens[7].prompts[0].text == hotline.nodes["survey"].prompt[language]
    assert screens[8].prompts[0].text == hotline.nodes["q_community"].prompt[language]
    assert answers(database_url) == [*EXPECTED, ("comentario", "skipped")]
    assert [run.status for run in runs(database_url)] == ["completed"]
    [count] = rows(database_url, ConsentCount)
    assert (count.accepted, count.declined) == (1, 0)


@pytest.mark.usefixtures("twilio_account")
@pytest.mark.parametrize(("key", "language"), [("1", "es"), ("2", "qu")])
async def test_leaving_and_coming_back_by_sms_stores_each_answer_once(
    client: httpx.AsyncClient,
    flows: dict[str, FlowDefinition],
    signer: TwilioSigner,
    database_url: str,
    key: str,
    language: str,
) -> None:
    """By SMS: MENU (or 9) mid-survey, then 2 and 1 continue where the caller was."""
    hotline = flows["hotline"]
    phone = TextPhone(client=client, signer=signer, sender=CALLER)
    for body in ["hola", key, "2", "1", *PROFILE, "5", "MENU", "2"]:
        replies = await phone.text(body)
    assert replies == [hotline.nodes["survey"].sms[language]]  # type: ignore[index]
    for body in ["1", *LIKERT[1:3], "9", "2", "1", *LIKERT[3:], "*"]:
        await phone.text(body)
    assert answers(database_url) == [*EXPECTED, ("comentario", "skipped")]
    assert [run.status for run in runs(database_url)] == ["completed"]


@pytest.mark.usefixtures("twilio_account")
@pytest.mark.parametrize(("key", "language"), [("1", "es"), ("2", "qu")])
async def test_a_later_message_offers_to_continue_before_the_menu(
    client: httpx.AsyncClient,
    flows: dict[str, FlowDefinition],
    signer: TwilioSigner,
    database_url: str,
    key: str,
    language: str,
) -> None:
    """A texter who left mid-survey starts a new conversation later: the offer comes with the welcome."""
    hotline = flows["hotline"]
    phone = TextPhone(client=client, signer=signer, sender=CALLER)
    for body in ["hola", key, "2", "1", *PROFILE]:
        await phone.text(body)
    engine = make_sync_engine(database_url)
    with engine.begin() as connection:  # the conversation goes idle: the next message starts a new one
        connection.execute(update(CallSession).values(updated_at=utcnow() - timedelta(minutes=31)))
    engine.dispose()
    [offer] = await phone.text("hola")
    assert offer.endswith(hotline.nodes["survey_offer"].sms[language])  # type: ignore[index]
    [menu] = await phone.text("no")
    assert menu.startswith(hotline.nodes["main"].sms[language])  # type: ignore[index]
    assert answers(database_url) == EXPECTED[:3]
