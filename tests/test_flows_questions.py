"""Survey questions in the engine: choices (and shared scales), numbers, skip, repeat, re-ask, validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.audio.library import AudioLibrary
from app.flows.engine import resume, start
from app.flows.events import Answered, Ask, Digits, Event, InputReceived, NoInput, RunState, Say, Step
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
        ({"choices": "likert5", "number": {"min": 0, "max": 3}}, "either choices or number"),
        ({"choices": None}, "either choices or number"),
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
