"""Inputs, state and channel-neutral events of the flow engine."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class CaseDraft(BaseModel):
    """What the caller has said so far while leaving a question."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    topic: str | None = None
    recording_sid: str | None = None
    recording_url: str | None = None
    recording_duration: int | None = None
    text: str | None = None


class RunState(BaseModel):
    """Where a caller is in a flow; stored as JSON on the session."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node: str
    language: str | None = None
    attempts: int = 0
    ended: bool = False
    reachable: bool = True
    """The caller has a number a message could be sent to (not withheld)."""
    answered: tuple[str, ...] = ()
    """Question ids answered in the caller's current survey run: never asked again."""
    open_run: bool = False
    """The caller left a survey unfinished: a resume node offers to continue it."""
    has_profile: bool = False
    """The caller gave a profile before: a profile check asks whether it is the same person."""
    draft: CaseDraft | None = None
    """A question being left (topic, then recording or text) until its case is opened."""
    unheard: tuple[str, ...] = ()
    """Codes of the caller's cases with answers she has not heard: announced, then played."""
    new_answers: int = 0
    """How many answers wait for her: said once, when they are announced."""
    case_code: str | None = None
    """The case whose answer she is hearing (a follow-up adds to it)."""
    awaiting: str | None = None
    """At an answers node: "code" (typing a case code), "lookup" (host checks it), "feedback"."""


@dataclass(frozen=True)
class Digits:
    """Keys the caller pressed (may be empty, long or wrong: the engine decides)."""

    value: str


@dataclass(frozen=True)
class TextMessage:
    """A text message: a key for menus, or a free-text answer for an open question."""

    value: str


@dataclass(frozen=True)
class Recording:
    """A spoken answer Twilio recorded; the host stores the audio, the engine only passes it on."""

    sid: str
    url: str
    duration: int
    finished_with: str = ""
    """The key that ended the recording (`*` skips the question)."""


@dataclass(frozen=True)
class NoInput:
    """The caller pressed nothing before the timeout."""


@dataclass(frozen=True)
class CodeChecked:
    """The host's answer to a `CodeEntered`: ``status`` is answered, waiting, unknown or locked."""

    code: str
    status: str


Input = Digits | TextMessage | Recording | NoInput | CodeChecked


class NodeKind(StrEnum):
    """What kind of step an interaction records."""

    MESSAGE = "message"
    MENU = "menu"
    LANGUAGE_MENU = "language_menu"
    ARTICLE = "article"
    SUBSCRIBE = "subscribe"
    QUESTION = "question"
    RESUME = "resume"
    CONSENT = "consent"
    PROFILE_CHECK = "profile_check"
    CASE_TOPIC = "case_topic"
    RECORD = "record"
    RECORD_REVIEW = "record_review"
    CASE_CODE = "case_code"
    REPLY_CHOICE = "reply_choice"
    ANSWERS = "answers"
    END = "end"


class Outcome(StrEnum):
    """What became of one input."""

    CHOSEN = "chosen"
    REPEAT = "repeat"
    MAIN_MENU = "main_menu"
    LANGUAGE_MENU = "language_menu"
    NEXT = "next"
    BACK = "back"
    INVALID = "invalid"
    NO_INPUT = "no_input"
    UNAVAILABLE = "unavailable"
    SKIPPED = "skipped"
    CONTINUE = "continue"
    RESTART = "restart"
    SAME = "same"
    DIFFERENT = "different"
    KEPT = "kept"
    LISTEN = "listen"
    AGAIN = "again"


class EndReason(StrEnum):
    """Why the engine hung up."""

    COMPLETED = "completed"
    TOO_MANY_RETRIES = "too_many_retries"


@dataclass(frozen=True)
class Prompt:
    """Something to say, identified so a channel can find its recording."""

    flow_id: str
    key: str
    language: str
    text: str


@dataclass(frozen=True)
class Say:
    """Play or say a prompt."""

    prompt: Prompt


@dataclass(frozen=True)
class Ask:
    """Wait for one key press at a node."""

    node: str
    keys: tuple[str, ...]
    timeout: int
    language: str | None = None
    max_digits: int | None = 1
    """How many keys make an answer; None: any number, finished with ``finish_on_key``."""
    finish_on_key: str = ""
    record_seconds: int | None = None
    """Set for an open question by voice: record up to this many seconds instead of reading keys."""


@dataclass(frozen=True)
class NodeEntered:
    """The caller reached a node (a message was played, a menu offered)."""

    node: str
    kind: NodeKind


@dataclass(frozen=True)
class InputReceived:
    """The caller answered at a node; ``value`` is the key, ``target`` where it led."""

    node: str
    kind: NodeKind
    value: str
    outcome: Outcome
    target: str | None = None


@dataclass(frozen=True)
class LanguageChosen:
    """The caller chose a language; hosts remember it for the caller."""

    language: str


@dataclass(frozen=True)
class Subscribed:
    """The caller agreed to receive a topic (news) by SMS in this language; hosts store the consent."""

    topic: str
    language: str


@dataclass(frozen=True)
class Answered:
    """A survey question was answered (or skipped); hosts store it under the question id."""

    question: str
    value: str
    kind: str
    """`select_one` or `numeric`, as in FLOIP Flow Results."""
    profile: str | None = None
    """For a demographic item, which one (gender, age_band, community): it also describes the session."""
    text: str | None = None
    """An open answer given by text."""
    recording: Recording | None = None
    """An open answer given by voice."""


@dataclass(frozen=True)
class ConsentGiven:
    """The caller accepted (or declined) a survey; hosts count it, and start a run when accepted."""

    survey: str
    accepted: bool


@dataclass(frozen=True)
class RunRestarted:
    """The caller chose to start an unfinished survey again: the old run is closed."""

    survey: str


@dataclass(frozen=True)
class ProfileReused:
    """The same person as last time: hosts copy the stored profile into this run and session."""


@dataclass(frozen=True)
class SurveyClosed:
    """The run reached its end: ``completed``, or ``ineligible`` (e.g. under 18)."""

    survey: str
    status: str


@dataclass(frozen=True)
class PlayRecording:
    """Play back what the caller just recorded (Twilio still holds it)."""

    url: str


@dataclass(frozen=True)
class CaseOpened:
    """A question was left: hosts open a case (with its recording or text) and learn its code."""

    topic: str
    recording: Recording | None = None
    text: str | None = None


@dataclass(frozen=True)
class FollowedUp:
    """The caller added to the case she heard an answer to; hosts attach it and reopen the case."""

    code: str
    recording: Recording | None = None
    text: str | None = None


@dataclass(frozen=True)
class SayCode:
    """Read the new case's code digit by digit (twice); hosts fill in ``code`` once the case exists."""

    prompt: Prompt
    code: str = ""


@dataclass(frozen=True)
class ReplyChosen:
    """How the answer should reach the caller: ``call`` (she calls again) or ``sms``."""

    by: str


@dataclass(frozen=True)
class CodeEntered:
    """The caller typed a case code; hosts check it and resume with `CodeChecked`."""

    code: str


@dataclass(frozen=True)
class AnswerPart:
    """One answer as a channel gives it: a text, or the URL of a recorded answer."""

    text: str | None = None
    audio_url: str | None = None


@dataclass(frozen=True)
class PlayAnswer:
    """Give the caller the answers of a case; hosts fill in ``parts`` and mark them heard."""

    flow_id: str
    code: str
    language: str | None
    parts: tuple[AnswerPart, ...] = ()


@dataclass(frozen=True)
class AnswerFeedback:
    """After hearing an answer: ``answered`` (1) or ``follow_up`` (2)."""

    code: str
    value: str


@dataclass(frozen=True)
class Hangup:
    """End the conversation."""

    reason: EndReason


Event = (
    Say
    | Ask
    | NodeEntered
    | InputReceived
    | LanguageChosen
    | Subscribed
    | Answered
    | ConsentGiven
    | RunRestarted
    | ProfileReused
    | SurveyClosed
    | PlayRecording
    | CaseOpened
    | FollowedUp
    | SayCode
    | ReplyChosen
    | CodeEntered
    | PlayAnswer
    | AnswerFeedback
    | Hangup
)


@dataclass(frozen=True)
class Step:
    """The engine's answer to one input."""

    state: RunState
    events: tuple[Event, ...]
