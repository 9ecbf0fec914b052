"""Survey questions in the engine: choices (and shared scales), numbers, skip, repeat, re-ask, validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.audio.library import AudioLibrary
from app.flows.engine import resume, start
from app.flows.events import (
    Answered,
    Ask,
    Digits,
    Event,
    InputReceived,
    NoInput,
    Recording,
    RunState,
    Say,
    Step,
    TextMessage,
)
from app.flows.model import SMS_TEXTS, SYSTEM_PROMPTS, FlowDefinition
from app.flows.validate import check_flow
from app.sms.render import SmsRenderer
from app.voice.twiml import VoiceRenderer

T = {"es": "texto"}
SYSTEM = dict.fromkeys(SYSTEM_PROMPTS, T)
SMS = {name: {"es": name} for name in SMS_TEXTS}
LIKERT = {
    str(i): {"name": name, "label": {"es": name.replace("_", " ")}}
    for i, name in enumerate(["nada", "poco", "algo", "bastante", "mucho"], start=1)
}


def survey(**overrides: Any) -> FlowDefinition:
    """A one-language survey: water (a scale), age band (routes), children (a number), thanks."""
    nodes: dict[str, Any] = {
        "main": {
            "type": "menu",
            "prompt": {"es": "Menú."},
            "options": {"1": {"next": "water", "label": {"es": "Encuesta"}}},
        },
        "water": {
            "type": "question",
            "question": "agua",
            "prompt": {"es": "¿El agua?"},
            "choices": "likert5",
            "next": "age",
        },
        "age": {
            "type": "question",
            "prompt": {"es": "¿Su edad?"},
            "next": "children",
            "choices": {
                "1": {"name": "menor_18", "label": {"es": "Menos de 18"}, "next": "thanks"},
                "2": {"name": "18_29", "label": {"es": "18 a 29"}},
            },
        },
        "children": {
            "type": "question",
            "prompt": {"es": "¿Cuántos hijos?"},
            "number": {"min": 0, "max": 30},
            "next": "thanks",
        },
        "thanks": {"type": "end", "prompt": {"es": "Gracias."}},
    }
    data: dict[str, Any] = {
        "id": "survey",
        "languages": ["es"],
        "review": {"es": "reviewed"},
        "start": "main",
        "main": "main",
        "system": SYSTEM,
        "sms": SMS,
        "scales": {"likert5": LIKERT},
        "nodes": nodes,
    }
    data.update(overrides)
    return FlowDefinition.model_validate(data)


FLOW = survey()


def walk(*keys: str | None) -> list[Step]:
    """Start in Spanish and press each key (None: silence)."""
    steps = [start(FLOW, language="es")]
    for key in keys:
        steps.append(resume(FLOW, steps[-1].state, NoInput() if key is None else Digits(key)))
    return steps


def answers(steps: list[Step]) -> list[tuple[str, str, str]]:
    """Every answer given in a walk."""
    return [(e.question, e.value, e.kind) for step in steps for e in step.events if isinstance(e, Answered)]


def said(events: tuple[Event, ...]) -> list[str]:
    """The prompt keys said in one step."""
    return [event.prompt.key for event in events if isinstance(event, Say)]


def test_the_shipped_example_flow_is_valid() -> None:
    """The survey used by these tests passes every check."""
    assert check_flow(FLOW) == []


def test_a_full_survey_stores_named_answers() -> None:
    """A scale answer is stored by its name under the question id; a number as its value."""
    steps = walk("1", "4", "2", "3")
    assert answers(steps) == [
        ("agua", "bastante", "select_one"),
        ("age", "18_29", "select_one"),
        ("children", "3", "numeric"),
    ]
    assert steps[-1].state.ended


def test_a_choice_can_route_elsewhere() -> None:
    """Under 18: thanked and not surveyed further."""
    steps = walk("1", "4", "1")
    assert answers(steps)[-1] == ("age", "menor_18", "select_one")
    assert said(steps[-1].events) == ["thanks"]


def test_star_skips_and_is_stored_as_skipped() -> None:
    """`*` moves on and records the question as skipped, on choices and on numbers."""
    steps = walk("1", "*", "2", "*")
    assert answers(steps) == [
        ("agua", "skipped", "select_one"),
        ("age", "18_29", "select_one"),
        ("children", "skipped", "select_one"),
    ]
    inputs = [e.outcome for e in steps[2].events if isinstance(e, InputReceived)]
    assert [outcome.value for outcome in inputs] == ["skipped"]


def test_zero_repeats_and_other_keys_reask() -> None:
    """`0` repeats the question; a key outside the choices re-asks it; nothing is stored."""
    steps = walk("1", "0", "7", "#", "x")
    assert said(steps[2].events) == ["water"]
    assert said(steps[3].events) == ["_invalid", "water"]
    assert said(steps[4].events) == ["_invalid", "water"]
    assert said(steps[5].events) == ["_goodbye"]
    assert answers(steps) == []


def test_nine_leaves_the_survey_for_the_main_menu() -> None:
    """`9` is the main menu, as everywhere."""
    steps = walk("1", "9")
    assert said(steps[-1].events) == ["main"]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("0", [("children", "0", "numeric")]),
        ("30", [("children", "30", "numeric")]),
        ("007", [("children", "7", "numeric")]),
        ("31", []),
        ("4a", []),
        ("٣", []),
        ("9" * 20, []),
    ],
)
def test_numbers_in_and_out_of_range(key: str, expected: list[tuple[str, str, str]]) -> None:
    """In-range whole numbers are stored; out of range, letters and other digits re-ask."""
    steps = walk("1", "3", "2", key)
    assert [a for a in answers(steps) if a[0] == "children"] == expected
    if not expected:
        assert said(steps[-1].events) == ["_invalid", "children"]


def test_hash_with_no_digits_is_no_input() -> None:
    """Twilio posts an empty answer for a lone #: asked again, not an error."""
    steps = walk("1", "3", "2", None)
    assert said(steps[-1].events) == ["_no_input", "children"]


def test_number_questions_take_many_digits_finished_with_hash() -> None:
    """The Ask of a number question lets the caller type several keys, ended by #."""
    steps = walk("1", "3", "2")
    [ask] = [e for e in steps[-1].events if isinstance(e, Ask)]
    assert (ask.max_digits, ask.finish_on_key) == (None, "#")
    voice = VoiceRenderer(AudioLibrary(Path("/nonexistent"), Path("/nonexistent")), "https://h.example.org")
    twiml = voice.render(steps[-1].events, "https://h.example.org/next")
    assert 'finishOnKey="#"' in twiml
    assert "numDigits" not in twiml


def test_sms_lists_the_choices_and_how_to_skip() -> None:
    """By SMS a question is its heading, numbered answers and the skip line."""
    steps = walk("1")
    text = SmsRenderer(FLOW).render(steps[-1].events)
    assert text.splitlines() == ["¿El agua?", "1 nada", "2 poco", "3 algo", "4 bastante", "5 mucho", "* skip"]


def test_a_removed_question_is_not_asked() -> None:
    """A flow edited between calls: a state at a question that no longer exists lands on main."""
    edited = survey()
    step = resume(edited, RunState(node="gone", language="es"), Digits("1"))
    assert said(step.events) == ["main"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"choices": "likert5", "number": {"min": 0, "max": 3}}, "exactly one of choices, number or open"),
        ({"choices": None}, "exactly one of choices, number or open"),
        ({"choices": "likert7"}, "unknown scale 'likert7'"),
        ({"choices": {"0": {"name": "a", "label": T}}}, "key '0' must be one keypad key"),
        (
            {"choices": {"1": {"name": "a", "label": T}, "2": {"name": "a", "label": T}}},
            "names an answer twice",
        ),
        ({"choices": {"1": {"name": "a", "label": {"qu": "x"}}}}, "has no 'es' text"),
        ({"choices": None, "number": {"min": 5, "max": 1}}, "number range is empty"),
        ({"question": "age"}, "question id 'age' is also used by node"),
    ],
)
def test_question_mistakes_are_reported(change: dict[str, Any], message: str) -> None:
    """Each mistake in a question names the node and the problem."""
    nodes = survey().model_dump()["nodes"]
    water = {key: value for key, value in nodes["water"].items() if value is not None}
    water.update(change)
    nodes["water"] = {key: value for key, value in water.items() if value is not None}
    problems = check_flow(survey(nodes=nodes))
    assert any(problem.node in {"water", "age"} and message in problem.message for problem in problems), (
        problems
    )


def test_a_shared_scale_cannot_route() -> None:
    """Scales are shared by many questions, so a choice in one may not jump elsewhere."""
    scale = {**LIKERT, "1": {**LIKERT["1"], "next": "thanks"}}
    problems = check_flow(survey(scales={"likert5": scale}))
    assert any("shared scale cannot route" in problem.message for problem in problems)


def open_flow() -> FlowDefinition:
    """The test survey with an open comment after the number question."""
    nodes = FLOW.model_dump(exclude_none=True)["nodes"]
    nodes["children"]["next"] = "comment"
    nodes["comment"] = {
        "type": "question",
        "question": "comentario",
        "prompt": {"es": "¿Algo más?"},
        "open": {"max_seconds": 30, "max_chars": 10},
        "next": "thanks",
    }
    return survey(nodes=nodes)


def at_comment(flow: FlowDefinition) -> RunState:
    """The state waiting at the open question."""
    state = start(flow, language="es").state
    for key in ("1", "3", "2", "4"):
        state = resume(flow, state, Digits(key)).state
    assert state.node == "comment"
    return state


def test_open_answer_by_text_is_kept_up_to_its_limit() -> None:
    """A written answer is passed on whole (trimmed to max_chars); * alone still skips."""
    flow = open_flow()
    step = resume(flow, at_comment(flow), TextMessage("  el agua está sucia  "))
    [answered] = [e for e in step.events if isinstance(e, Answered)]
    assert (answered.question, answered.value, answered.kind, answered.text) == (
        "comentario",
        "text",
        "open",
        "el agua es",
    )
    skipped = resume(flow, at_comment(flow), TextMessage("*"))
    assert [(e.value, e.text) for e in skipped.events if isinstance(e, Answered)] == [("skipped", None)]


def test_open_answer_by_voice_is_a_recording() -> None:
    """A recording is passed on for the host to store; ended with * (or empty), it is a skip."""
    flow = open_flow()
    spoken = Recording("RE" + "a" * 32, "https://api.twilio.com/x", 12, "#")
    step = resume(flow, at_comment(flow), spoken)
    [answered] = [e for e in step.events if isinstance(e, Answered)]
    assert (answered.value, answered.recording) == ("recording", spoken)
    for finished, seconds in (("*", 3), ("#", 0)):
        skip = resume(flow, at_comment(flow), Recording("RE" + "b" * 32, "https://x", seconds, finished))
        assert [e.value for e in skip.events if isinstance(e, Answered)] == ["skipped"]


def test_a_recording_where_none_was_asked_is_no_input() -> None:
    """A stray recording at a menu is not an answer: the menu is asked again."""
    step = resume(FLOW, start(FLOW, language="es").state, Recording("RE" + "c" * 32, "https://x", 5, "#"))
    assert said(step.events) == ["_no_input", "main"]


def test_voice_records_the_open_answer_and_comes_back_on_silence() -> None:
    """<Record> after the prompt (# ends, * skips), then a <Redirect> to the same step for silence."""
    flow = open_flow()
    state = at_comment(flow)
    step = resume(flow, state.model_copy(update={"node": "children"}), Digits("4"))
    [ask] = [e for e in step.events if isinstance(e, Ask)]
    assert (ask.record_seconds, ask.finish_on_key) == (30, "#*")
    voice = VoiceRenderer(AudioLibrary(Path("/nonexistent"), Path("/nonexistent")), "https://h.example.org")
    twiml = voice.render(step.events, "https://h.example.org/next")
    assert '<Record action="https://h.example.org/next"' in twiml
    assert 'maxLength="30"' in twiml
    assert "<Redirect" in twiml
    assert "<Gather" not in twiml


@pytest.mark.parametrize("text", ["cuatro", "4 hijos", "4a", "-3", "٤"])
def test_letters_in_an_sms_number_answer_reask(text: str) -> None:
    """By SMS a number question takes digits only; anything else asks again and stores nothing."""
    state = start(FLOW, language="es").state
    for key in ("1", "3", "2"):
        state = resume(FLOW, state, Digits(key)).state
    step = resume(FLOW, state, TextMessage(text))
    assert answers([step]) == []
    assert said(step.events) == ["_invalid", "children"]
    good = resume(FLOW, state, TextMessage(" 4 "))
    assert answers([good]) == [("children", "4", "numeric")]


def test_answered_questions_are_passed_whatever_their_id() -> None:
    """A resumed run skips answered questions, whether their id is explicit (agua) or the node id (age)."""
    memory = RunState(node="main", answered=("agua", "age"))
    state = start(FLOW, language="es", memory=memory).state
    step = resume(FLOW, state, Digits("1"))
    assert said(step.events) == ["children"]
