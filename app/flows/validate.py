"""Semantic checks a schema cannot express: references, reachability, languages, keys."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from app.flows.model import (
    CASE_PROMPTS,
    CASE_SMS_TEXTS,
    KEYPAD,
    LANGUAGE_NAMES,
    RESERVED_MENU_KEYS,
    SMS_TEXTS,
    SYSTEM_PROMPTS,
    AnswersNode,
    AnyNode,
    ArticleNode,
    CaseCodeNode,
    CaseTopicNode,
    Choice,
    ConsentNode,
    FlowDefinition,
    LanguageMenuNode,
    MenuNode,
    MessageNode,
    ProfileCheckNode,
    QuestionNode,
    RecordNode,
    RecordReviewNode,
    ReplyChoiceNode,
    ResumeNode,
    ReviewStatus,
    SubscribeNode,
    Text,
    question_id,
    spoken_seconds,
)
from app.sms.segments import capacity, encoding, fits, length_units

MAX_ARTICLE_SECONDS = 45.0
ENGLISH_NAMES = {"es": "Spanish", "qu": "Quechua", "qvw": "Wanka Quechua", "en": "English"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a flow; ``node`` is None for flow-level problems."""

    node: str | None
    message: str


def check_flow(flow: FlowDefinition) -> list[Problem]:
    """Return every problem found in a schema-valid flow."""
    return [
        *_check_entry_points(flow),
        *_check_references(flow),
        *_check_texts(flow),
        *_check_keys(flow),
        *_check_questions(flow),
        *_check_surveys(flow),
        *_check_case_line(flow),
        *_check_message_loops(flow),
        *_check_article_length(flow),
        *_check_reachability(flow),
    ]


def review_notes(flow: FlowDefinition) -> list[str]:
    """Say which languages are drafts awaiting review by native speakers."""
    return [
        f"{ENGLISH_NAMES.get(lang, lang)} ({lang}) text is a draft awaiting review by native speakers"
        for lang in flow.languages
        if flow.review.get(lang, ReviewStatus.DRAFT) is ReviewStatus.DRAFT
    ]


def targets(node: AnyNode) -> Iterator[str]:
    """Every node id a node can lead to by its own wiring."""
    if isinstance(
        node, MessageNode | LanguageMenuNode | CaseTopicNode | RecordNode | CaseCodeNode | ReplyChoiceNode
    ):
        yield node.next
    elif isinstance(node, RecordReviewNode):
        yield from (node.next, node.again)
    elif isinstance(node, AnswersNode):
        yield from (node.next, node.follow_up)
    elif isinstance(node, SubscribeNode | ConsentNode):
        yield from (node.next, node.back)
    elif isinstance(node, ResumeNode):
        yield node.next
    elif isinstance(node, ProfileCheckNode):
        yield from (node.next, node.same)
    elif isinstance(node, QuestionNode):
        yield node.next
        if isinstance(node.choices, dict):
            yield from (choice.next for choice in node.choices.values() if choice.next is not None)
    elif isinstance(node, MenuNode):
        yield from (option.next for option in node.options.values())
    elif isinstance(node, ArticleNode):
        yield node.back
        if node.next is not None:
            yield node.next


def _check_entry_points(flow: FlowDefinition) -> Iterator[Problem]:
    for name in ("start", "returning", "main"):
        target = getattr(flow, name)
        if target is not None and target not in flow.nodes:
            yield Problem(None, f"{name} points to unknown node {target!r}")
    if flow.main in flow.nodes and not isinstance(flow.nodes[flow.main], MenuNode):
        yield Problem(None, f"main must be a menu node, {flow.main!r} is not")
    if len(flow.languages) != len(set(flow.languages)):
        yield Problem(None, "languages are listed twice")
    for lang in flow.review:
        if lang not in flow.languages:
            yield Problem(None, f"review names undeclared language {lang!r}")
    if len(flow.languages) > 1 and flow.language_menu() is None:
        yield Problem(None, "a flow with several languages needs a language_menu node")


def _check_references(flow: FlowDefinition) -> Iterator[Problem]:
    for node_id, node in flow.nodes.items():
        for target in targets(node):
            if target not in flow.nodes:
                yield Problem(node_id, f"leads to unknown node {target!r}")


def _check_texts(flow: FlowDefinition) -> Iterator[Problem]:
    for node_id, node in flow.nodes.items():
        yield from _check_text(flow, node_id, "prompt", node.prompt)
        if node.sms is not None:
            yield from _check_text(flow, node_id, "sms text", node.sms)
        if isinstance(node, MenuNode):
            for key, option in node.options.items():
                if option.label is None:
                    yield Problem(node_id, f"key {key} needs a label (SMS menus list options by label)")
                else:
                    yield from _check_text(flow, node_id, f"label of key {key}", option.label)
    case_line = flow.has_case_line()
    system = SYSTEM_PROMPTS + (CASE_PROMPTS if case_line else ())
    yield from _check_named_texts(flow, "system prompt", system, flow.system)
    yield from _check_named_texts(
        flow, "sms text", SMS_TEXTS + (CASE_SMS_TEXTS if case_line else ()), flow.sms
    )
    for name, text in flow.sms.items():
        for lang, value in text.items():
            if not fits(value):
                yield Problem(
                    None,
                    f"sms text {name!r} in {lang!r} is longer than 2 SMS segments "
                    f"({length_units(value)} of {capacity(encoding(value))} characters)",
                )
    for lang in flow.languages:
        if lang not in flow.language_names and lang not in LANGUAGE_NAMES:
            yield Problem(None, f"language {lang!r} needs a name in language_names (for the SMS menu)")


def _check_named_texts(
    flow: FlowDefinition, what: str, names: tuple[str, ...], texts: dict[str, Text]
) -> Iterator[Problem]:
    for name in names:
        if name not in texts:
            yield Problem(None, f"{what} {name!r} is missing")
    for name, text in texts.items():
        if name not in names:
            yield Problem(None, f"unknown {what} {name!r} (known: {', '.join(names)})")
        yield from _check_text(flow, None, f"{what} {name!r}", text)


def _check_text(flow: FlowDefinition, node_id: str | None, what: str, text: Text) -> Iterator[Problem]:
    for lang in flow.languages:
        if not text.get(lang, "").strip():
            yield Problem(node_id, f"{what} has no {lang!r} text")
    for lang in text:
        if lang not in flow.languages:
            yield Problem(node_id, f"{what} has text in undeclared language {lang!r}")


def _check_keys(flow: FlowDefinition) -> Iterator[Problem]:
    for node_id, node in flow.nodes.items():
        if isinstance(node, MenuNode):
            if not node.options:
                yield Problem(node_id, "a menu needs at least one option")
            for key in node.options:
                if len(key) != 1 or key not in KEYPAD:
                    yield Problem(node_id, f"menu key {key!r} is not a single keypad key (0-9, * or #)")
                elif key in RESERVED_MENU_KEYS:
                    yield Problem(
                        node_id, f"menu key {key!r} is reserved (0 repeats, 9 main menu, * language)"
                    )
        elif isinstance(node, LanguageMenuNode):
            for key, lang in node.options.items():
                if len(key) != 1 or key not in KEYPAD or key in RESERVED_MENU_KEYS:
                    yield Problem(node_id, f"language key {key!r} must be one keypad key other than 0, 9, *")
                if lang not in flow.languages:
                    yield Problem(node_id, f"key {key} chooses undeclared language {lang!r}")
            missing = set(flow.languages) - set(node.options.values())
            if missing:
                yield Problem(node_id, f"no key chooses {', '.join(sorted(missing))}")


def _check_surveys(flow: FlowDefinition) -> Iterator[Problem]:
    """A resume node must lead to its survey's consent, where a continued run picks up."""
    for node_id, node in flow.nodes.items():
        if isinstance(node, ResumeNode):
            consent = flow.nodes.get(node.next)
            if not isinstance(consent, ConsentNode) or consent.survey != node.survey:
                yield Problem(node_id, f"a resume node must lead to the consent of survey {node.survey!r}")
        if isinstance(node, QuestionNode) and node.profile is not None and node.open is not None:
            yield Problem(node_id, "a profile question needs choices, not an open answer")
        if isinstance(node, QuestionNode) and node.profile is not None and isinstance(node.choices, dict):
            names = {choice.name for choice in node.choices.values()}
            if "prefiero_no_decir" not in names:
                yield Problem(node_id, "a profile question must offer prefiero_no_decir (prefer not to say)")


_PLACEHOLDERS = {
    "case_code": ("{code}",),
    "case_text_answer": ("{code}", "{text}"),
    "case_voice_answer": ("{code}",),
}


def _check_case_line(flow: FlowDefinition) -> Iterator[Problem]:
    """The two-way line's nodes fit together, and its SMS texts hold the blanks the host fills in."""
    for node_id, node in flow.nodes.items():
        if isinstance(node, CaseTopicNode):
            yield from _check_choices(flow, node_id, "topic", node.topics, shared=False)
            if any(choice.next is not None for choice in node.topics.values()):
                yield Problem(
                    node_id, "topics cannot route (next): the question is recorded at the node's next"
                )
        elif isinstance(node, RecordReviewNode) and not isinstance(flow.nodes.get(node.again), RecordNode):
            yield Problem(node_id, f"again must lead to a record node, {node.again!r} is not")
        elif isinstance(node, AnswersNode):
            follow_up = flow.nodes.get(node.follow_up)
            if not isinstance(follow_up, RecordNode) or not follow_up.follow_up:
                yield Problem(node_id, "follow_up must lead to a record node with follow_up: true")
    for name, blanks in _PLACEHOLDERS.items():
        for lang, text in flow.sms.get(name, {}).items():
            missing = [blank for blank in blanks if blank not in text]
            if missing:
                yield Problem(None, f"sms text {name!r} in {lang!r} must contain {', '.join(missing)}")


def _check_questions(flow: FlowDefinition) -> Iterator[Problem]:
    """Questions: choices or a number, valid keys, labels in every language, unique question ids."""
    for name, scale in flow.scales.items():
        yield from _check_choices(flow, None, f"scale {name!r}", scale, shared=True)
    seen: dict[str, str] = {}
    for node_id, node in flow.nodes.items():
        if not isinstance(node, QuestionNode):
            continue
        question = question_id(node_id, node)
        if question in seen:
            yield Problem(node_id, f"question id {question!r} is also used by node {seen[question]!r}")
        seen[question] = node_id
        if sum(kind is not None for kind in (node.choices, node.number, node.open)) != 1:
            yield Problem(node_id, "a question needs exactly one of choices, number or open")
        elif isinstance(node.choices, str) and node.choices not in flow.scales:
            yield Problem(node_id, f"unknown scale {node.choices!r}")
        elif isinstance(node.choices, dict):
            yield from _check_choices(flow, node_id, "choice", node.choices, shared=False)
        elif node.number is not None and node.number.min > node.number.max:
            yield Problem(node_id, f"number range is empty ({node.number.min} > {node.number.max})")


def _check_choices(
    flow: FlowDefinition, node_id: str | None, what: str, choices: dict[str, Choice], *, shared: bool
) -> Iterator[Problem]:
    if not choices:
        yield Problem(node_id, f"{what} has no choices")
    names = [choice.name for choice in choices.values()]
    if len(names) != len(set(names)):
        yield Problem(node_id, f"{what} names an answer twice")
    for key, choice in choices.items():
        if len(key) != 1 or key not in KEYPAD or key in RESERVED_MENU_KEYS:
            yield Problem(node_id, f"{what} key {key!r} must be one keypad key other than 0, 9 and *")
        if shared and choice.next is not None:
            yield Problem(node_id, f"{what} key {key}: a shared scale cannot route (next)")
        yield from _check_text(flow, node_id, f"label of {what} {key}", choice.label)


def _check_message_loops(flow: FlowDefinition) -> Iterator[Problem]:
    """A cycle of message nodes would talk forever without waiting for a key."""
    reported: set[str] = set()
    for node_id in flow.nodes:
        seen: list[str] = []
        current = node_id
        while isinstance(node := flow.nodes.get(current), MessageNode):
            if current in seen:
                loop = seen[seen.index(current) :]
                if not reported.intersection(loop):
                    reported.update(loop)
                    yield Problem(current, f"messages loop without waiting for input: {' -> '.join(loop)}")
                break
            seen.append(current)
            current = node.next


def _check_article_length(flow: FlowDefinition) -> Iterator[Problem]:
    for node_id, node in flow.nodes.items():
        if not isinstance(node, ArticleNode):
            continue
        for lang, text in node.prompt.items():
            seconds = spoken_seconds(text)
            if seconds > MAX_ARTICLE_SECONDS:
                yield Problem(
                    node_id,
                    f"{lang!r} text takes about {seconds:.0f} s to say; keep library messages under "
                    f"{MAX_ARTICLE_SECONDS:.0f} s",
                )


def _check_reachability(flow: FlowDefinition) -> Iterator[Problem]:
    roots = [flow.start, flow.returning, flow.main, flow.language_menu()]
    seen: set[str] = set()
    pending = [root for root in roots if root is not None and root in flow.nodes]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        pending.extend(t for t in targets(flow.nodes[current]) if t in flow.nodes)
    for node_id in flow.nodes:
        if node_id not in seen:
            yield Problem(node_id, "is unreachable from start")
