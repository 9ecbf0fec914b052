"""Golden tests of the two-way line in the engine, and the linter's checks of its nodes."""

from __future__ import annotations

from pathlib import Path

from app.flows.case_steps import spoken_code
from app.flows.engine import resume, start
from app.flows.events import (
    AnswerFeedback,
    Ask,
    CaseDraft,
    CaseOpened,
    CodeChecked,
    CodeEntered,
    Digits,
    Event,
    FollowedUp,
    Hangup,
    InputReceived,
    NoInput,
    PlayAnswer,
    PlayRecording,
    Prompt,
    Recording,
    ReplyChosen,
    RunState,
    Say,
    SayCode,
    Step,
    TextMessage,
)
from app.flows.loader import load_flows
from app.flows.model import FlowDefinition, RecordNode
from app.flows.validate import check_flow

ROOT = Path(__file__).resolve().parents[1]
HOTLINE = load_flows(ROOT / "voice_flows")["hotline"]
SPOKEN = Recording("RE" + "a" * 32, "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1", 9)


def brief(events: tuple[Event, ...]) -> list[tuple[str, ...]]:  # noqa: PLR0912 - one case per event
    """The events that matter here, as short tuples."""
    rows: list[tuple[str, ...]] = []
    for event in events:
        match event:
            case Say(prompt):
                rows.append(("say", prompt.key))
            case Ask(node, _, _, _, max_digits, finish, seconds):
                rows.append(("ask", node, str(max_digits), finish, str(seconds)))
            case InputReceived(node, _, value, outcome, _):
                rows.append(("input", node, value, outcome.value))
            case CaseOpened(topic, recording, text):
                rows.append(("opened", topic, recording.sid if recording else "", text or ""))
            case FollowedUp(code, recording, text):
                rows.append(("follow_up", code, recording.sid if recording else "", text or ""))
            case SayCode(prompt, code):
                rows.append(("code", prompt.key, code))
            case ReplyChosen(by):
                rows.append(("reply", by))
            case PlayRecording(url):
                rows.append(("play_recording", url))
            case CodeEntered(code):
                rows.append(("code_entered", code))
            case PlayAnswer(_, code, language, _):
                rows.append(("play_answer", code, language or ""))
            case AnswerFeedback(code, value):
                rows.append(("feedback", code, value))
            case Hangup(reason):
                rows.append(("hangup", reason.value))
    return rows


def at_main(language: str = "es", **memory: object) -> RunState:
    """A caller waiting at the main menu."""
    return start(HOTLINE, language=language, memory=RunState(node=HOTLINE.start, **memory)).state


def press(state: RunState, *inputs: str | Recording | CodeChecked | TextMessage | None) -> list[Step]:
    steps = []
    for given in inputs:
        if given is None:
            step = resume(HOTLINE, state, NoInput())
        elif isinstance(given, str):
            step = resume(HOTLINE, state, Digits(given))
        else:
            step = resume(HOTLINE, state, given)
        steps.append(step)
        state = step.state
    return steps


def test_leaving_a_question_by_voice() -> None:
    """Topic, record (120 s, # ends), review, then the case is opened and its code read; reply by call."""
    steps = press(at_main(), "3", "1", SPOKEN, "1", "1")
    assert brief(steps[0].events)[-1] == ("ask", "ask_topic", "1", "", "None")
    assert brief(steps[1].events)[-2:] == [("say", "ask_record"), ("ask", "ask_record", "None", "#", "120")]
    assert brief(steps[2].events) == [
        ("input", "ask_record", "recording", "chosen"),
        ("say", "ask_review"),
        ("ask", "ask_review", "1", "", "None"),
    ]
    assert brief(steps[3].events) == [
        ("input", "ask_review", "1", "kept"),
        ("opened", "agua_ambiente", SPOKEN.sid, ""),
        ("code", "ask_code", ""),
        ("say", "ask_reply"),
        ("ask", "ask_reply", "1", "", "None"),
    ]
    assert steps[3].state.draft is None, "the draft is gone once the case is opened"
    assert brief(steps[4].events)[:3] == [
        ("input", "ask_reply", "1", "chosen"),
        ("reply", "call"),
        ("say", "ask_thanks"),
    ]
    assert steps[4].state.node == "main"


def test_review_plays_back_records_again_and_repeats() -> None:
    """2 plays the recording and asks again; 3 records again; 0 repeats; a wrong key is re-asked."""
    [_, _, _, listen, wrong, again] = press(at_main(), "3", "2", SPOKEN, "2", "7", "3")
    assert brief(listen.events) == [
        ("input", "ask_review", "2", "listen"),
        ("play_recording", SPOKEN.url),
        ("say", "ask_review"),
        ("ask", "ask_review", "1", "", "None"),
    ]
    assert brief(wrong.events)[:2] == [("input", "ask_review", "7", "invalid"), ("say", "_invalid")]
    assert brief(again.events)[-1] == ("ask", "ask_record", "None", "#", "120")
    assert again.state.draft is not None
    assert again.state.draft.topic == "tierra", "recording again keeps the topic"


def test_silence_or_keys_at_the_record_node_ask_again_then_end_politely() -> None:
    """No recording (the <Redirect> after silence), # alone, or an empty recording: asked twice more."""
    empty = Recording(SPOKEN.sid, SPOKEN.url, 0)
    [*_, first, second, third] = press(at_main(), "3", "1", None, empty, "#")
    assert brief(first.events)[:2] == [("input", "ask_record", "", "no_input"), ("say", "_no_input")]
    assert brief(second.events)[:2] == [("input", "ask_record", "", "no_input"), ("say", "_no_input")]
    assert brief(third.events)[-1] == ("hangup", "too_many_retries")


def test_topic_keys_zero_and_nine() -> None:
    """0 repeats the topics; 9 leaves for the main menu and forgets the unfinished question."""
    [_, repeat, leave] = press(at_main(), "3", "0", "9")
    assert brief(repeat.events) == [
        ("input", "ask_topic", "0", "repeat"),
        ("say", "ask_topic"),
        ("ask", "ask_topic", "1", "", "None"),
    ]
    assert brief(leave.events)[0] == ("input", "ask_topic", "9", "main_menu")
    assert leave.state.node == "main"
    [*_, review_leave] = press(at_main(), "3", "1", SPOKEN, "9")
    assert review_leave.state.draft is None, "leaving drops the recorded but unkept question"


def test_a_question_written_by_sms_skips_the_review() -> None:
    """A text needs no listening back: the case opens at once with the text."""
    steps = press(at_main(), TextMessage("3"), TextMessage("5"), TextMessage("¿Cuándo es la consulta?"))
    assert brief(steps[2].events)[:3] == [
        ("input", "ask_record", "text", "chosen"),
        ("opened", "consulta", "", "¿Cuándo es la consulta?"),
        ("code", "ask_code", ""),
    ]


def test_sms_reply_needs_a_number() -> None:
    """A withheld number hears why and her answer waits for her call."""
    state = at_main(reachable=False)
    [*_, chosen] = press(state, "3", "1", SPOKEN, "1", "2")
    assert brief(chosen.events)[:3] == [
        ("input", "ask_reply", "2", "unavailable"),
        ("say", "_no_number"),
        ("reply", "call"),
    ]
    [*_, chosen] = press(at_main(), "3", "1", SPOKEN, "1", "2")
    assert ("reply", "sms") in brief(chosen.events)


def test_new_answers_are_played_after_the_welcome_one_case_at_a_time() -> None:
    """How many are said once; each waiting case is played, then 1/2/0; after the last, the main menu."""
    memory = RunState(node=HOTLINE.start, unheard=("111111", "222222"), new_answers=3)
    first = start(HOTLINE, language="qu", memory=memory)
    assert brief(first.events)[-5:] == [
        ("say", "_answers_new"),
        ("say", "_digit_3"),
        ("play_answer", "111111", "qu"),
        ("say", "_answer_feedback"),
        ("ask", "answers_offer", "1", "", "None"),
    ]
    [again, wrong, thanks, done] = press(first.state, "0", "5", "1", "1")
    assert brief(again.events)[:2] == [
        ("input", "answers_offer", "0", "repeat"),
        ("play_answer", "111111", "qu"),
    ]
    assert brief(wrong.events)[:3] == [
        ("input", "answers_offer", "5", "invalid"),
        ("say", "_invalid"),
        ("say", "_answer_feedback"),
    ]
    assert brief(thanks.events)[:4] == [
        ("input", "answers_offer", "1", "chosen"),
        ("feedback", "111111", "answered"),
        ("say", "_answer_thanks"),
        ("play_answer", "222222", "qu"),
    ]
    assert brief(done.events)[1:3] == [("feedback", "222222", "answered"), ("say", "_answer_thanks")]
    assert done.state.node == "main"
    assert done.state.unheard == ()


def test_a_follow_up_is_recorded_and_added_to_the_same_case() -> None:
    """2 after an answer: record, keep; the same case, no new code."""
    first = start(HOTLINE, language="es", memory=RunState(node=HOTLINE.start, unheard=("111111",)))
    [follow, recorded, kept] = press(first.state, "2", SPOKEN, "1")
    assert brief(follow.events)[:2] == [
        ("input", "answers_offer", "2", "chosen"),
        ("feedback", "111111", "follow_up"),
    ]
    assert brief(recorded.events)[-1] == ("ask", "follow_up_review", "1", "", "None")
    assert brief(kept.events)[:3] == [
        ("input", "follow_up_review", "1", "kept"),
        ("follow_up", "111111", SPOKEN.sid, ""),
        ("say", "follow_up_saved"),
    ]
    assert not [row for row in brief(kept.events) if row[0] in {"opened", "code"}]


def test_typing_a_code_waits_for_the_host_check() -> None:
    """Six digits: the engine asks the host; unknown is re-asked, then the call ends politely."""
    [menu, typed, unknown, typed_again, unknown_again, typed_third, last] = press(
        at_main(),
        "4",
        "123456",
        CodeChecked("123456", "unknown"),
        "234567",
        CodeChecked("234567", "unknown"),
        "345678",
        CodeChecked("345678", "unknown"),
    )
    assert brief(menu.events)[-1] == ("ask", "my_answers", "6", "#", "None")
    assert brief(typed.events) == [("input", "my_answers", "code", "chosen"), ("code_entered", "123456")]
    assert typed.state.awaiting == "lookup"
    assert brief(unknown.events)[:3] == [
        ("input", "my_answers", "", "unavailable"),
        ("say", "_code_unknown"),
        ("say", "my_answers"),
    ]
    assert unknown_again.state.attempts == 2
    del typed_again, typed_third
    assert brief(last.events)[-1] == ("hangup", "too_many_retries")


def test_code_check_outcomes() -> None:
    """Answered plays it; waiting and locked say so and go on; a check nobody asked for is ignored."""
    asked = press(at_main(), "4", "123456")[-1].state
    [answered] = press(asked, CodeChecked("123456", "answered"))
    assert brief(answered.events)[:2] == [("play_answer", "123456", "es"), ("say", "_answer_feedback")]
    [waiting] = press(asked, CodeChecked("123456", "waiting"))
    assert brief(waiting.events)[:2] == [("say", "_no_answer_yet"), ("say", "main")]
    [locked] = press(asked, CodeChecked("123456", "locked"))
    assert brief(locked.events)[:2] == [("say", "_code_locked"), ("say", "main")]
    [stray] = press(at_main(), CodeChecked("123456", "answered"))
    assert brief(stray.events)[:2] == [("input", "main", "", "no_input"), ("say", "_no_input")]
    [short, nine] = press(press(at_main(), "4")[-1].state, "12", "9")
    assert brief(short.events)[:2] == [("input", "my_answers", "12", "invalid"), ("say", "_invalid")]
    assert brief(nine.events)[0] == ("input", "my_answers", "9", "main_menu")


def test_the_code_is_read_digit_by_digit_twice() -> None:
    """The node's words, each digit, "again", each digit."""
    prompt = brief(press(at_main(), "3", "1", SPOKEN, "1")[-1].events)
    assert ("code", "ask_code", "") in prompt
    spoken = spoken_code(HOTLINE, Prompt("hotline", "ask_code", "qu", "x"), "305")
    assert [p.key for p in spoken] == [
        "ask_code",
        "_digit_3",
        "_digit_0",
        "_digit_5",
        "_code_again",
        "_digit_3",
        "_digit_0",
        "_digit_5",
    ]
    assert spoken[1].text == "kimsa"


def test_a_case_code_node_reached_without_a_question_opens_nothing() -> None:
    """The flow was edited mid-call: no empty case; the caller lands on the main menu."""
    state = at_main().model_copy(update={"node": "ask_review", "draft": CaseDraft(topic="otro")})
    [kept] = press(state, "1")
    assert not [row for row in brief(kept.events) if row[0] == "opened"]
    assert kept.state.node == "main"


# ---------------------------------------------------------------- the linter


def _edited(**changes: object) -> FlowDefinition:
    return HOTLINE.model_copy(update=changes)


def test_the_shipped_flow_has_a_valid_two_way_line() -> None:
    """No problem, and every prompt the line needs exists in both languages."""
    assert check_flow(HOTLINE) == []
    assert HOTLINE.has_case_line()


def test_missing_prompts_and_texts_of_the_line_are_reported() -> None:
    """A flow with the line's nodes must define its digits and texts."""
    system = {k: v for k, v in HOTLINE.system.items() if k != "digit_7"}
    sms = {k: v for k, v in HOTLINE.sms.items() if k != "case_voice_answer"}
    messages = {p.message for p in check_flow(_edited(system=system, sms=sms))}
    assert "system prompt 'digit_7' is missing" in messages
    assert "sms text 'case_voice_answer' is missing" in messages


def test_blanks_in_the_line_texts_are_checked() -> None:
    """An SMS answer text must carry {code} and {text}."""
    sms = {**HOTLINE.sms, "case_text_answer": {"es": "Respuesta: {text}", "qu": "{code}"}}
    messages = {p.message for p in check_flow(_edited(sms=sms))}
    assert "sms text 'case_text_answer' in 'es' must contain {code}" in messages
    assert "sms text 'case_text_answer' in 'qu' must contain {text}" in messages


def test_wrong_wiring_of_review_and_follow_up_is_reported() -> None:
    """again must be a record node; follow_up a record node marked follow_up."""
    nodes = dict(HOTLINE.nodes)
    nodes["ask_review"] = nodes["ask_review"].model_copy(update={"again": "main"})
    nodes["my_answers"] = nodes["my_answers"].model_copy(update={"follow_up": "ask_record"})
    problems = {(p.node, p.message) for p in check_flow(_edited(nodes=nodes))}
    assert ("ask_review", "again must lead to a record node, 'main' is not") in problems
    assert ("my_answers", "follow_up must lead to a record node with follow_up: true") in problems
    assert isinstance(nodes["ask_record"], RecordNode)


def test_topic_keys_are_checked() -> None:
    """Topic keys are single keypad keys other than 0, 9 and *."""
    nodes = dict(HOTLINE.nodes)
    topic = nodes["ask_topic"]
    topics = dict(topic.topics)  # type: ignore[union-attr]
    topics["9"] = topics["1"].model_copy(update={"name": "nueve"})
    nodes["ask_topic"] = topic.model_copy(update={"topics": topics})
    problems = {(p.node, p.message) for p in check_flow(_edited(nodes=nodes))}
    assert ("ask_topic", "topic key '9' must be one keypad key other than 0, 9 and *") in problems


def test_a_flow_without_the_line_needs_none_of_its_prompts() -> None:
    """Only flows with its nodes must define its prompts."""
    case_nodes = {"ask_topic", "ask_record", "ask_review", "ask_code", "ask_reply", "ask_thanks"}
    case_nodes |= {"answers_offer", "my_answers", "follow_up_record", "follow_up_review", "follow_up_saved"}
    nodes = {k: v for k, v in HOTLINE.nodes.items() if k not in case_nodes}
    main = nodes["main"]
    options = {k: v for k, v in main.options.items() if k in {"1", "2"}}  # type: ignore[union-attr]
    nodes["main"] = main.model_copy(update={"options": options})
    nodes["welcome_back"] = nodes["welcome_back"].model_copy(update={"next": "survey_offer"})
    nodes["language"] = nodes["language"].model_copy(update={"next": "survey_offer"})
    line_prompts = ("digit_", "code_", "answer", "no_answer")
    system = {k: v for k, v in HOTLINE.system.items() if not k.startswith(line_prompts)}
    sms = {k: v for k, v in HOTLINE.sms.items() if not k.startswith("case_")}
    flow = _edited(nodes=nodes, system=system, sms=sms)
    assert not flow.has_case_line()
    assert check_flow(flow) == []
