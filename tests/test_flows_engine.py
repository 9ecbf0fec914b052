"""Golden tests of the flow engine: a flow plus scripted key presses gives an exact list of events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.flows.engine import MAX_RETRIES, MAX_STEPS, FlowLoopError, resume, start
from app.flows.events import (
    Ask,
    Digits,
    EndReason,
    Event,
    Hangup,
    InputReceived,
    LanguageChosen,
    NodeEntered,
    NoInput,
    RunState,
    Say,
    Step,
    Subscribed,
)
from app.flows.loader import load_flows
from app.flows.model import FlowDefinition

ROOT = Path(__file__).resolve().parents[1]
HOTLINE = load_flows(ROOT / "voice_flows")["hotline"]

Compact = tuple[str, ...]


def compact(events: tuple[Event, ...]) -> list[Compact]:
    """Events as short tuples a reader can check at a glance."""
    rows: list[Compact] = []
    for event in events:
        match event:
            case Say(prompt):
                rows.append(("say", prompt.language, prompt.key))
            case Ask(node):
                rows.append(("ask", node))
            case NodeEntered(node):
                rows.append(("enter", node))
            case InputReceived(node, _, value, outcome, target):
                rows.append(("input", node, value, outcome.value, *([target] if target else [])))
            case LanguageChosen(language):
                rows.append(("language", language))
            case Subscribed(topic, language):
                rows.append(("subscribed", topic, language))
            case Hangup(reason):
                rows.append(("hangup", reason.value))
    return rows


def walk(flow: FlowDefinition, *keys: str | None, language: str | None = None) -> list[Step]:
    """Start a call and press each key in turn (None is silence until the timeout)."""
    steps = [start(flow, language=language)]
    for key in keys:
        steps.append(resume(flow, steps[-1].state, NoInput() if key is None else Digits(key)))
    return steps


def last(flow: FlowDefinition, *keys: str | None, language: str | None = None) -> list[Compact]:
    """The events of the last step of a walk."""
    return compact(walk(flow, *keys, language=language)[-1].events)


# ---------------------------------------------------------------- shipped hotline


def test_subscribe_node_accepts_goes_back_and_reprompts() -> None:
    """At the news consent: 1 subscribes in the caller's language, 0 goes back, 9 main, others re-ask."""
    assert last(HOTLINE, "2", "1", "4", "2", "1") == [
        ("input", "news_subscribe", "1", "chosen", "news_subscribed"),
        ("subscribed", "news", "qu"),
        ("enter", "news_subscribed"),
        ("say", "qu", "news_subscribed"),
        ("enter", "news"),
        ("say", "qu", "news"),
        ("ask", "news"),
    ]
    assert last(HOTLINE, "1", "1", "4", "2", "0")[:2] == [
        ("input", "news_subscribe", "0", "back", "news"),
        ("enter", "news"),
    ]
    assert last(HOTLINE, "1", "1", "4", "2", "9")[1] == ("enter", "main")
    assert last(HOTLINE, "1", "1", "4", "2", "5") == [
        ("input", "news_subscribe", "5", "invalid"),
        ("say", "es", "_invalid"),
        ("say", "es", "news_subscribe"),
        ("ask", "news_subscribe"),
    ]


def test_withheld_number_cannot_subscribe() -> None:
    """Without a number to write to, accepting explains why and returns to the news menu."""
    steps = [start(HOTLINE, memory=RunState(node="greeting", reachable=False))]
    for key in ("1", "1", "4", "2", "1"):
        steps.append(resume(HOTLINE, steps[-1].state, Digits(key)))
    assert compact(steps[-1].events)[:3] == [
        ("input", "news_subscribe", "1", "unavailable", "news"),
        ("say", "es", "_no_number"),
        ("enter", "news"),
    ]
    assert not any(isinstance(event, Subscribed) for event in steps[-1].events)


def test_first_call_greets_and_offers_languages_in_both() -> None:
    """A new caller hears the greeting and the language menu in Spanish, then Quechua."""
    assert compact(start(HOTLINE).events) == [
        ("enter", "greeting"),
        ("say", "es", "greeting"),
        ("say", "qu", "greeting"),
        ("enter", "language"),
        ("say", "es", "language"),
        ("say", "qu", "language"),
        ("ask", "language"),
    ]


def test_choosing_quechua() -> None:
    """Key 2 chooses Quechua: the choice is announced and only Quechua follows."""
    steps = walk(HOTLINE, "2")
    assert compact(steps[-1].events) == [
        ("input", "language", "2", "chosen", "answers_offer"),  # passed: no new answers, no unfinished survey
        ("language", "qu"),
        ("enter", "main"),
        ("say", "qu", "main"),
        ("ask", "main"),
    ]
    assert steps[-1].state == RunState(node="main", language="qu")


def test_returning_caller_starts_at_returning_in_their_language() -> None:
    """A caller whose language is remembered skips the greeting and the language menu."""
    assert compact(start(HOTLINE, language="qu").events) == [
        ("enter", "welcome_back"),
        ("say", "qu", "welcome_back"),
        ("enter", "main"),
        ("say", "qu", "main"),
        ("ask", "main"),
    ]


def test_remembered_language_the_flow_lacks_is_a_first_call() -> None:
    """A remembered language the flow does not offer (any more) is ignored."""
    assert compact(start(HOTLINE, language="en").events) == compact(start(HOTLINE).events)


def test_star_on_a_menu_goes_to_the_language_menu() -> None:
    """`*` offers the languages again, in every language."""
    assert last(HOTLINE, "1", "*") == [
        ("input", "main", "*", "language_menu", "language"),
        ("enter", "language"),
        ("say", "es", "language"),
        ("say", "qu", "language"),
        ("ask", "language"),
    ]


def test_nine_on_the_language_menu_returns_to_main_once_a_language_is_known() -> None:
    """A caller who pressed `*` by mistake can go back with 9."""
    assert last(HOTLINE, "1", "*", "9") == [
        ("input", "language", "9", "main_menu", "main"),
        ("enter", "main"),
        ("say", "es", "main"),
        ("ask", "main"),
    ]


def test_nine_on_the_first_language_menu_is_invalid() -> None:
    """Before any language is chosen there is no main menu to return to."""
    assert last(HOTLINE, "9") == [
        ("input", "language", "9", "invalid"),
        ("say", "es", "_invalid"),
        ("say", "qu", "_invalid"),
        ("say", "es", "language"),
        ("say", "qu", "language"),
        ("ask", "language"),
    ]


def test_zero_repeats_a_menu() -> None:
    """`0` plays the same menu again."""
    assert last(HOTLINE, "1", "1", "0") == [
        ("input", "library", "0", "repeat", "library"),
        ("enter", "library"),
        ("say", "es", "library"),
        ("ask", "library"),
    ]


def test_nine_goes_to_main() -> None:
    """`9` in any menu leads to the main menu."""
    assert last(HOTLINE, "1", "1", "9") == [
        ("input", "library", "9", "main_menu", "main"),
        ("enter", "main"),
        ("say", "es", "main"),
        ("ask", "main"),
    ]


def test_article_keys() -> None:
    """After a library message: 1 repeats, 2 plays the next, 0 goes back, 9 goes to main."""
    steps = walk(HOTLINE, "1", "1", "1", "1", "2", "2", "0", "1", "9")
    assert [compact(step.events) for step in steps[3:]] == [
        [
            ("input", "library", "1", "chosen", "eia_1"),
            ("enter", "eia_1"),
            ("say", "es", "eia_1"),
            ("say", "es", "_after_article"),
            ("ask", "eia_1"),
        ],
        [
            ("input", "eia_1", "1", "repeat", "eia_1"),
            ("enter", "eia_1"),
            ("say", "es", "eia_1"),
            ("say", "es", "_after_article"),
            ("ask", "eia_1"),
        ],
        [
            ("input", "eia_1", "2", "next", "eia_2"),
            ("enter", "eia_2"),
            ("say", "es", "eia_2"),
            ("say", "es", "_after_article"),
            ("ask", "eia_2"),
        ],
        [
            ("input", "eia_2", "2", "next", "eia_3"),
            ("enter", "eia_3"),
            ("say", "es", "eia_3"),
            ("say", "es", "_after_last_article"),
            ("ask", "eia_3"),
        ],
        [
            ("input", "eia_3", "0", "back", "library"),
            ("enter", "library"),
            ("say", "es", "library"),
            ("ask", "library"),
        ],
        [
            ("input", "library", "1", "chosen", "eia_1"),
            ("enter", "eia_1"),
            ("say", "es", "eia_1"),
            ("say", "es", "_after_article"),
            ("ask", "eia_1"),
        ],
        [
            ("input", "eia_1", "9", "main_menu", "main"),
            ("enter", "main"),
            ("say", "es", "main"),
            ("ask", "main"),
        ],
    ]


def test_next_on_the_last_article_is_invalid() -> None:
    """`2` after the last message of a topic re-offers the keys that exist."""
    assert last(HOTLINE, "1", "1", "1", "2", "2", "2") == [
        ("input", "eia_3", "2", "invalid"),
        ("say", "es", "_invalid"),
        ("say", "es", "_after_last_article"),
        ("ask", "eia_3"),
    ]


def test_asked_keys_are_those_that_mean_something() -> None:
    """Each Ask lists the keys its node understands, and the flow's timeout."""
    steps = walk(HOTLINE, "1", "1", "1", "2", "2")
    asks = [event for step in steps for event in step.events if isinstance(event, Ask)]
    assert [(ask.node, ask.keys, ask.timeout) for ask in asks] == [
        ("language", ("1", "2", "0"), 6),
        ("main", ("1", "2", "3", "4", "0", "9", "*"), 6),
        ("library", ("1", "2", "3", "4", "0", "9", "*"), 6),
        ("eia_1", ("1", "2", "0", "9"), 6),
        ("eia_2", ("1", "2", "0", "9"), 6),
        ("eia_3", ("1", "0", "9"), 6),
    ]


def test_says_carry_the_flow_text() -> None:
    """Each Say names the flow and carries the text of its prompt in its language."""
    [greeting_es, greeting_qu] = [e for e in start(HOTLINE).events if isinstance(e, Say)][:2]
    assert (greeting_es.prompt.flow_id, greeting_es.prompt.text) == (
        "hotline",
        HOTLINE.nodes["greeting"].prompt["es"],
    )
    assert greeting_qu.prompt.text == HOTLINE.nodes["greeting"].prompt["qu"]


def test_invalid_key_reprompts_twice_then_says_goodbye() -> None:
    """Two wrong keys re-prompt; the third ends the call politely."""
    steps = walk(HOTLINE, "1", "5", "5", "5")
    reprompt = [
        ("input", "main", "5", "invalid"),
        ("say", "es", "_invalid"),
        ("say", "es", "main"),
        ("ask", "main"),
    ]
    assert [compact(step.events) for step in steps[2:]] == [
        reprompt,
        reprompt,
        [("input", "main", "5", "invalid"), ("say", "es", "_goodbye"), ("hangup", "too_many_retries")],
    ]
    assert [step.state.attempts for step in steps[2:]] == [1, 2, MAX_RETRIES + 1]
    assert steps[-1].state.ended


def test_no_input_reprompts_twice_then_says_goodbye() -> None:
    """Silence is treated like a wrong key, with its own prompt."""
    steps = walk(HOTLINE, "1", None, None, None)
    reprompt = [
        ("input", "main", "", "no_input"),
        ("say", "es", "_no_input"),
        ("say", "es", "main"),
        ("ask", "main"),
    ]
    assert [compact(step.events) for step in steps[2:]] == [
        reprompt,
        reprompt,
        [("input", "main", "", "no_input"), ("say", "es", "_goodbye"), ("hangup", "too_many_retries")],
    ]


def test_empty_digits_count_as_no_input() -> None:
    """An empty Digits value (what a timeout may send) is silence, not a wrong key."""
    assert last(HOTLINE, "1", "") == last(HOTLINE, "1", None)


def test_no_input_on_the_first_language_menu_speaks_both_languages() -> None:
    """Before a language is chosen, even the system prompts are said in every language."""
    assert last(HOTLINE, None) == [
        ("input", "language", "", "no_input"),
        ("say", "es", "_no_input"),
        ("say", "qu", "_no_input"),
        ("say", "es", "language"),
        ("say", "qu", "language"),
        ("ask", "language"),
    ]


def test_wrong_key_on_an_article_reoffers_its_keys() -> None:
    """A wrong key after a library message repeats the key instructions, not the whole message."""
    assert last(HOTLINE, "1", "1", "1", "7") == [
        ("input", "eia_1", "7", "invalid"),
        ("say", "es", "_invalid"),
        ("say", "es", "_after_article"),
        ("ask", "eia_1"),
    ]


def test_star_on_an_article_is_invalid() -> None:
    """Articles understand 1, 2, 0 and 9 only."""
    assert last(HOTLINE, "1", "1", "1", "*")[0] == ("input", "eia_1", "*", "invalid")


def test_valid_key_resets_the_attempts() -> None:
    """Two wrong keys, a good one, then two more wrong keys still do not end the call."""
    steps = walk(HOTLINE, "1", "5", "5", "1", "5", "5")
    assert [step.state.attempts for step in steps[2:]] == [1, 2, 0, 1, 2]
    assert not steps[-1].state.ended
    assert compact(steps[-1].events)[-1] == ("ask", "library")


def test_very_long_digits_are_invalid() -> None:
    """A long run of keys is a wrong key that re-prompts, not an error."""
    assert last(HOTLINE, "1", "1" * 200) == [
        ("input", "main", "1" * 200, "invalid"),
        ("say", "es", "_invalid"),
        ("say", "es", "main"),
        ("ask", "main"),
    ]


def test_resume_after_the_end_just_hangs_up() -> None:
    """A late request for an ended call says nothing more."""
    step = resume(HOTLINE, RunState(node="main", language="es", attempts=3, ended=True), Digits("1"))
    assert compact(step.events) == [("hangup", "completed")]


def test_resume_at_a_node_that_no_longer_exists_lands_on_main() -> None:
    """A flow edited during a call sends the caller to the main menu in their language."""
    step = resume(HOTLINE, RunState(node="old_menu", language="qu", attempts=2), Digits("1"))
    assert compact(step.events) == [("enter", "main"), ("say", "qu", "main"), ("ask", "main")]
    assert step.state == RunState(node="main", language="qu")


def test_resume_at_a_missing_node_without_language_starts_over() -> None:
    """Without a language there is no main menu to land on, so the call starts again."""
    step = resume(HOTLINE, RunState(node="old_menu"), Digits("1"))
    assert compact(step.events) == compact(start(HOTLINE).events)


def test_resume_with_a_language_the_flow_no_longer_has() -> None:
    """A flow edited during a call to drop a language does not crash the caller's next key press."""
    step = resume(HOTLINE, RunState(node="main", language="en"), Digits("1"))
    assert all(e.prompt.language in HOTLINE.languages for e in step.events if isinstance(e, Say))


@pytest.mark.parametrize(("key", "language"), [("1", "es"), ("2", "qu")])
def test_walk_stays_in_the_chosen_language(key: str, language: str) -> None:
    """Language, library, an article and its next, back, the news, main: every Say is in one language."""
    steps = walk(HOTLINE, key, "1", "2", "2", "0", "4", "1", "2", "0", "9")
    entered = [row[1] for step in steps[1:] for row in compact(step.events) if row[0] == "enter"]
    assert entered == [
        "main",
        "library",
        "consulta_1",
        "consulta_2",
        "library",
        "news",
        "news_1",
        "news_2",
        "news",
        "main",
    ]
    says = [event.prompt for step in steps[1:] for event in step.events if isinstance(event, Say)]
    assert {prompt.language for prompt in says} == {language}
    assert all(prompt.text.strip() for prompt in says)
    assert steps[-1].state == RunState(node="main", language=language)


# ---------------------------------------------------------------- a tiny hand-built flow


def tiny_flow(**changes: Any) -> FlowDefinition:
    """A one-language flow: a welcome message, a menu with a tip and an end."""
    text = {"invalid": "Invalid.", "no_input": "Nothing.", "goodbye": "Bye.", "error": "Error."}
    data: dict[str, Any] = {
        "id": "tiny",
        "languages": ["es"],
        "start": "welcome",
        "main": "main",
        "input_timeout": 4,
        "system": {name: {"es": value} for name, value in text.items()}
        | {"after_article": {"es": "1, 2, 0."}, "after_last_article": {"es": "1, 0."}},
        "nodes": {
            "welcome": {"type": "message", "prompt": {"es": "Hola."}, "next": "main"},
            "main": {
                "type": "menu",
                "prompt": {"es": "1 consejo, 2 salir."},
                "options": {"1": {"next": "tip"}, "2": {"next": "bye"}},
            },
            "tip": {"type": "article", "prompt": {"es": "Un consejo."}, "source": "Ley 1", "back": "main"},
            "bye": {"type": "end", "prompt": {"es": "Adiós."}},
        },
    }
    return FlowDefinition.model_validate(data | changes)


def test_tiny_flow_golden() -> None:
    """A whole call through the tiny flow, one language and no language menu."""
    steps = walk(tiny_flow(), "*", "1", "0", "2")
    assert [compact(step.events) for step in steps] == [
        [
            ("enter", "welcome"),
            ("say", "es", "welcome"),
            ("enter", "main"),
            ("say", "es", "main"),
            ("ask", "main"),
        ],
        [
            ("input", "main", "*", "invalid"),
            ("say", "es", "_invalid"),
            ("say", "es", "main"),
            ("ask", "main"),
        ],
        [
            ("input", "main", "1", "chosen", "tip"),
            ("enter", "tip"),
            ("say", "es", "tip"),
            ("say", "es", "_after_last_article"),
            ("ask", "tip"),
        ],
        [("input", "tip", "0", "back", "main"), ("enter", "main"), ("say", "es", "main"), ("ask", "main")],
        [
            ("input", "main", "2", "chosen", "bye"),
            ("enter", "bye"),
            ("say", "es", "bye"),
            ("hangup", "completed"),
        ],
    ]
    assert steps[1].events[-1] == Ask("main", ("1", "2", "0", "9"), 4)


def test_end_node_hangs_up_completed() -> None:
    """An end node says its prompt and hangs up; the state is ended."""
    step = walk(tiny_flow(), "2")[-1]
    assert compact(step.events) == [
        ("input", "main", "2", "chosen", "bye"),
        ("enter", "bye"),
        ("say", "es", "bye"),
        ("hangup", "completed"),
    ]
    assert step.events[-1] == Hangup(EndReason.COMPLETED)
    assert step.state == RunState(node="bye", language=None, ended=True)


def test_message_loop_raises_flow_loop_error() -> None:
    """A loop the loader would refuse turns into a clear error after MAX_STEPS nodes, not a hung request."""
    loop = {
        "welcome": {"type": "message", "prompt": {"es": "A."}, "next": "again"},
        "again": {"type": "message", "prompt": {"es": "B."}, "next": "welcome"},
        "main": {"type": "menu", "prompt": {"es": "Menú."}, "options": {"1": {"next": "welcome"}}},
    }
    flow = tiny_flow(nodes=loop)
    with pytest.raises(FlowLoopError, match=f"flow 'tiny' entered more than {MAX_STEPS} nodes"):
        start(flow)
    with pytest.raises(FlowLoopError):
        resume(flow, RunState(node="main", language="es"), Digits("1"))


# ---------------------------------------------------------------- property


keys = st.one_of(st.none(), st.text(alphabet="0123456789*#", min_size=1, max_size=3))


@settings(max_examples=300, deadline=None, database=None)
@given(language=st.sampled_from([None, "es", "qu"]), presses=st.lists(keys, max_size=40))
def test_random_keys_never_break_the_hotline(language: str | None, presses: list[str | None]) -> None:
    """Any key presses give a bounded answer that ends by asking or by hanging up."""
    step = start(HOTLINE, language=language)
    for press in presses:
        assert 0 < len(step.events) <= 4 * MAX_STEPS
        final = step.events[-1]
        if step.state.ended:
            assert isinstance(final, Hangup)
        else:
            assert isinstance(final, Ask)
            assert final.node == step.state.node
            assert 0 <= step.state.attempts <= MAX_RETRIES
        step = resume(HOTLINE, step.state, NoInput() if press is None else Digits(press))
    assert isinstance(step.events[-1], Ask | Hangup)
