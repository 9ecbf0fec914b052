"""Inputs, state and channel-neutral events of the flow engine."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


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


Input = Digits | TextMessage | Recording | NoInput


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
    | Hangup
)


@dataclass(frozen=True)
class Step:
    """The engine's answer to one input."""

    state: RunState
    events: tuple[Event, ...]
