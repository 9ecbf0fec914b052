"""Flow definitions: pure data, validated when loaded."""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

NodeId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
LanguageTag = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]
Text = dict[str, str]
"""Text per language tag, e.g. ``{"es": "...", "qu": "..."}``."""

KEYPAD = frozenset("0123456789*#")
REPEAT_KEY = "0"
MAIN_MENU_KEY = "9"
LANGUAGE_KEY = "*"
RESERVED_MENU_KEYS = frozenset({REPEAT_KEY, MAIN_MENU_KEY, LANGUAGE_KEY})
ARTICLE_REPEAT_KEY = "1"
ARTICLE_NEXT_KEY = "2"
ARTICLE_BACK_KEY = "0"
ACCEPT_KEY = "1"
SKIP_KEY = "*"
"""On a survey question, `*` skips it (stored as skipped); `0` repeats it, as on menus."""
SKIPPED = "skipped"
"""The stored value of a skipped question."""
AnswerName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_]{0,39}$")]

SYSTEM_PROMPTS = (
    "invalid",
    "no_input",
    "goodbye",
    "error",
    "after_article",
    "after_last_article",
    "no_number",
)
"""Prompts the engine speaks itself; every flow defines each in every language."""
CASE_PROMPTS = (
    "digit_0",
    "digit_1",
    "digit_2",
    "digit_3",
    "digit_4",
    "digit_5",
    "digit_6",
    "digit_7",
    "digit_8",
    "digit_9",
    "code_again",
    "answers_new",
    "answer_intro",
    "answer_feedback",
    "answer_thanks",
    "no_answer_yet",
    "code_unknown",
    "code_locked",
)
"""System prompts of the two-way line; a flow with its nodes defines each in every language."""
SMS_TEXTS = (
    "help",
    "opted_out",
    "opted_in",
    "more",
    "repeat",
    "next",
    "back",
    "main_menu",
    "change_language",
    "news_subscribed",
    "skip",
)
"""Short texts only the SMS channel needs (keywords, paging, article options); every flow defines each."""
CASE_SMS_TEXTS = ("case_code", "case_text_answer", "case_voice_answer")
"""SMS texts of the two-way line (``{code}`` and ``{text}`` are filled in); needed with its nodes."""
LANGUAGE_NAMES = {"es": "Español", "qu": "Runasimi", "qvw": "Wanka", "quz": "Qusqu runasimi"}
"""Each language's own name, shown on the SMS language menu; a flow may name others."""


class ReviewStatus(StrEnum):
    """How far a language's text can be trusted."""

    REVIEWED = "reviewed"
    DRAFT = "draft"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MenuOption(_Strict):
    """One key of a menu: where it leads and a short label for text menus."""

    next: NodeId
    label: Text | None = None


class MessageNode(_Strict):
    """Plays a prompt, then moves on without waiting for input."""

    type: Literal["message"]
    prompt: Text
    sms: Text | None = None
    next: NodeId
    completes: AnswerName | None = None
    """Reaching this message completes the caller's run of this survey (e.g. the thank-you)."""
    ineligible_for: AnswerName | None = None
    """Reaching this message closes the run as ineligible (e.g. callers under 18 are not surveyed)."""


class MenuNode(_Strict):
    """Plays a prompt and routes on one key press."""

    type: Literal["menu"]
    prompt: Text
    sms: Text | None = None
    options: dict[str, MenuOption]


class LanguageMenuNode(_Strict):
    """Lets the caller choose a language; the choice is remembered for the caller."""

    type: Literal["language_menu"]
    prompt: Text
    sms: Text | None = None
    options: dict[str, LanguageTag]
    next: NodeId


class ArticleNode(_Strict):
    """A library message: plays, then offers repeat, next message and back."""

    type: Literal["article"]
    prompt: Text
    sms: Text | None = None
    source: Annotated[str, StringConstraints(min_length=3)]
    back: NodeId
    next: NodeId | None = None
    service: Literal["library", "news"] = "library"
    """Which service the partner statistics count a play under."""


class SubscribeNode(_Strict):
    """Asks consent to send news by SMS to this phone: 1 accepts (then ``next``), 0 goes ``back``."""

    type: Literal["subscribe"]
    prompt: Text
    sms: Text | None = None
    topic: Literal["news"] = "news"
    next: NodeId
    back: NodeId


class Choice(_Strict):
    """One answer to a question: the key that chooses it, its stable name, a label for text menus."""

    name: AnswerName
    label: Text
    next: NodeId | None = None
    """Where this answer leads, if not the question's ``next`` (e.g. under-18s to a thank-you)."""


class NumberRange(_Strict):
    """A whole-number answer typed on the keypad and finished with #."""

    min: int = Field(ge=0)
    max: int = Field(le=999_999)


class OpenAnswer(_Strict):
    """A free answer: spoken (recorded) by voice, written by SMS."""

    max_seconds: int = Field(default=60, ge=5, le=300)
    max_chars: int = Field(default=500, ge=1, le=1600)


class QuestionNode(_Strict):
    """A survey question stored under a stable id: one key among ``choices``, or a ``number``."""

    type: Literal["question"]
    prompt: Text
    sms: Text | None = None
    question: AnswerName | None = None
    """The stable question id answers are stored under (default: the node id)."""
    choices: str | dict[str, Choice] | None = None
    """Choices keyed by keypad digit, or the name of a shared scale (see ``scales``)."""
    number: NumberRange | None = None
    open: OpenAnswer | None = None
    profile: Literal["gender", "age_band", "community"] | None = None
    """A demographic item: the answer also describes the session (always offer prefer-not-to-say)."""
    next: NodeId


class ResumeNode(_Strict):
    """Offers an unfinished run: 1 continues, 2 starts again; passed silently when there is none."""

    type: Literal["resume"]
    prompt: Text
    sms: Text | None = None
    survey: AnswerName
    next: NodeId


class ConsentNode(_Strict):
    """What is asked and that it is anonymous: 1 starts, any other key goes back (counted, not stored)."""

    type: Literal["consent"]
    prompt: Text
    sms: Text | None = None
    survey: AnswerName
    next: NodeId
    back: NodeId


class ProfileCheckNode(_Strict):
    """Asks a caller with a stored profile whether they are the same person (phones are shared)."""

    type: Literal["profile_check"]
    prompt: Text
    sms: Text | None = None
    next: NodeId
    """Where the profile questions start (a different person, or no stored profile)."""
    same: NodeId
    """Where to go when it is the same person: their stored profile is reused."""


class CaseTopicNode(_Strict):
    """Leaving a question, first: what it is about (the topic files the case in the staff's queue)."""

    type: Literal["case_topic"]
    prompt: Text
    sms: Text | None = None
    topics: dict[str, Choice]
    next: NodeId
    """The record node where she speaks (or writes) her question."""


class RecordNode(_Strict):
    """She speaks her question after the tone (# ends it), or writes it in one SMS."""

    type: Literal["record"]
    prompt: Text
    sms: Text | None = None
    next: NodeId
    """Where a voice recording goes to be reviewed (a record_review node); an SMS text goes on at once."""
    max_seconds: int = Field(default=120, ge=10, le=600)
    """A spoken question is cut after this long (Twilio's <Record maxLength>)."""
    max_chars: int = Field(default=1000, ge=20, le=1600)
    follow_up: bool = False
    """Adds to the case she just heard an answer to, instead of opening a new one."""


class RecordReviewNode(_Strict):
    """After recording: 1 keeps it, 2 plays it back, 3 records again."""

    type: Literal["record_review"]
    prompt: Text
    sms: Text | None = None
    again: NodeId
    next: NodeId
    """Where a kept recording goes: a case_code node (new case), or a message (a follow-up)."""


class CaseCodeNode(_Strict):
    """Opens the case and reads its code digit by digit, twice (sends it, by SMS)."""

    type: Literal["case_code"]
    prompt: Text
    """Said before the digits (e.g. "Your case code is"); the SMS text holds ``{code}``."""
    sms: Text | None = None
    next: NodeId


class ReplyChoiceNode(_Strict):
    """How the answer reaches her: 1 she calls again (nothing kept), 2 by SMS (her number, encrypted)."""

    type: Literal["reply_choice"]
    prompt: Text
    sms: Text | None = None
    next: NodeId


class AnswersNode(_Strict):
    """Plays her new answers; with none, asks for a case code (from another phone, say).

    With ``announce`` it is a stop on the way to the main menu: passed silently unless answers wait.
    """

    type: Literal["answers"]
    prompt: Text
    """Asks for the case code."""
    sms: Text | None = None
    next: NodeId
    follow_up: NodeId
    """The record node (``follow_up: true``) where 2 after an answer leads."""
    announce: bool = False


class EndNode(_Strict):
    """Says goodbye and hangs up."""

    type: Literal["end"]
    prompt: Text
    sms: Text | None = None


AnyNode = (
    MessageNode
    | MenuNode
    | LanguageMenuNode
    | ArticleNode
    | SubscribeNode
    | QuestionNode
    | ResumeNode
    | ConsentNode
    | ProfileCheckNode
    | CaseTopicNode
    | RecordNode
    | RecordReviewNode
    | CaseCodeNode
    | ReplyChoiceNode
    | AnswersNode
    | EndNode
)
Node = Annotated[AnyNode, Field(discriminator="type")]
CASE_NODES = (CaseTopicNode, RecordNode, RecordReviewNode, CaseCodeNode, ReplyChoiceNode, AnswersNode)


class FlowDefinition(_Strict):
    """A whole flow: languages, entry points, system prompts and nodes."""

    id: NodeId
    title: str = ""
    languages: list[LanguageTag] = Field(min_length=1)
    review: dict[str, ReviewStatus] = Field(default_factory=dict)
    start: NodeId
    returning: NodeId | None = None
    main: NodeId
    input_timeout: int = Field(default=6, ge=1, le=30)
    include: list[str] = Field(default_factory=list)
    system: dict[str, Text] = Field(default_factory=dict)
    sms: dict[str, Text] = Field(default_factory=dict)
    language_names: dict[str, str] = Field(default_factory=dict)
    scales: dict[AnswerName, dict[str, Choice]] = Field(default_factory=dict)
    """Reusable answer shapes, e.g. a 1-5 Likert scale shared by many questions."""
    nodes: dict[NodeId, Node]

    def node(self, node_id: str) -> AnyNode:
        """Return a node by id (the definition is validated, so ids resolve)."""
        return self.nodes[node_id]

    def language_menu(self) -> str | None:
        """Return the id of the first language menu, where `*` leads."""
        for node_id, node in self.nodes.items():
            if isinstance(node, LanguageMenuNode):
                return node_id
        return None

    def questions(self) -> dict[str, QuestionNode]:
        """Every question by its stable id."""
        return {
            question_id(node_id, node): node
            for node_id, node in self.nodes.items()
            if isinstance(node, QuestionNode)
        }

    def profile_questions(self) -> dict[str, str]:
        """The question id asking each profile item (gender, age_band, community)."""
        return {node.profile: question for question, node in self.questions().items() if node.profile}

    def choices(self, node: QuestionNode) -> dict[str, Choice]:
        """A question's choices, resolving a shared scale by name (empty for number questions)."""
        if isinstance(node.choices, str):
            return self.scales.get(node.choices, {})
        return node.choices or {}

    def has_case_line(self) -> bool:
        """Whether the flow offers the two-way line (and so needs its prompts and texts)."""
        return any(isinstance(node, CASE_NODES) for node in self.nodes.values())

    def language_name(self, language: str) -> str:
        """A language's own name (for the SMS language menu)."""
        return self.language_names.get(language) or LANGUAGE_NAMES.get(language, language)

    def prompts(self) -> Iterator[tuple[str, Text]]:
        """Yield every prompt key with its text; system prompts are keyed ``_<name>``."""
        for node_id, node in self.nodes.items():
            yield node_id, node.prompt
        for name, text in self.system.items():
            yield system_prompt_key(name), text


def question_id(node_id: str, node: QuestionNode) -> str:
    """The id a question's answers are stored under: its ``question``, or else its node id."""
    return node.question or node_id


def system_prompt_key(name: str) -> str:
    """Prompt key of a system prompt; the underscore cannot clash with a node id."""
    return f"_{name}"


_WORD = re.compile(r"\w+", re.UNICODE)


def spoken_seconds(text: str, words_per_second: float = 2.3) -> float:
    """Estimate how long a text takes to speak at a calm, clear pace."""
    return len(_WORD.findall(text)) / words_per_second
