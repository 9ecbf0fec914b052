"""The flow engine: definition + state + input -> new state + events. Pure; no I/O, no clock."""

from __future__ import annotations

from app.flows.case_steps import CODE_DIGITS, CaseSteps, CaseWaitingNode, case_keys
from app.flows.events import (
    Ask,
    CodeChecked,
    Digits,
    EndReason,
    Event,
    Hangup,
    Input,
    InputReceived,
    LanguageChosen,
    NodeEntered,
    NodeKind,
    Outcome,
    Prompt,
    Recording,
    RunState,
    Say,
    Step,
    Subscribed,
    TextMessage,
)
from app.flows.model import (
    ACCEPT_KEY,
    ARTICLE_BACK_KEY,
    ARTICLE_NEXT_KEY,
    ARTICLE_REPEAT_KEY,
    LANGUAGE_KEY,
    MAIN_MENU_KEY,
    REPEAT_KEY,
    SKIP_KEY,
    AnswersNode,
    ArticleNode,
    CaseCodeNode,
    CaseTopicNode,
    ConsentNode,
    EndNode,
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
    SubscribeNode,
    Text,
    system_prompt_key,
)
from app.flows.survey_steps import SurveySteps, offered_by_menu

MAX_STEPS = 25
"""Nodes entered per input; more means a loop in the flow, which must not hang a request."""
MAX_RETRIES = 2
"""Re-prompts after an invalid or missing key press before ending politely."""

WaitingNode = (
    MenuNode
    | LanguageMenuNode
    | ArticleNode
    | SubscribeNode
    | QuestionNode
    | ResumeNode
    | ConsentNode
    | ProfileCheckNode
    | CaseWaitingNode
)
"""Nodes that wait for a key press (or a recording, or a text)."""
_KINDS: dict[type, NodeKind] = {
    MessageNode: NodeKind.MESSAGE,
    MenuNode: NodeKind.MENU,
    LanguageMenuNode: NodeKind.LANGUAGE_MENU,
    ArticleNode: NodeKind.ARTICLE,
    SubscribeNode: NodeKind.SUBSCRIBE,
    QuestionNode: NodeKind.QUESTION,
    ResumeNode: NodeKind.RESUME,
    ConsentNode: NodeKind.CONSENT,
    ProfileCheckNode: NodeKind.PROFILE_CHECK,
    CaseTopicNode: NodeKind.CASE_TOPIC,
    RecordNode: NodeKind.RECORD,
    RecordReviewNode: NodeKind.RECORD_REVIEW,
    CaseCodeNode: NodeKind.CASE_CODE,
    ReplyChoiceNode: NodeKind.REPLY_CHOICE,
    AnswersNode: NodeKind.ANSWERS,
    EndNode: NodeKind.END,
}


_RETRY_PROMPTS = {Outcome.NO_INPUT: "no_input", Outcome.UNAVAILABLE: "code_unknown"}
"""What is said before asking again; only a typed case code can be unavailable (unknown)."""


class FlowLoopError(RuntimeError):
    """A flow went through too many nodes for one input."""


def start(flow: FlowDefinition, *, language: str | None = None, memory: RunState | None = None) -> Step:
    """Begin a conversation; a caller with a remembered language starts at ``returning``.

    ``memory`` carries what the host knows of the caller: a withheld number (not ``reachable``), an
    unfinished survey (``open_run`` and its ``answered`` questions), a stored profile (``has_profile``).
    """
    if language not in flow.languages:
        language = None
    entry = flow.returning if language is not None and flow.returning is not None else flow.start
    run = _Run(flow, (memory or RunState(node=entry)).model_copy(update={"language": language}))
    return run.finish(run.enter(entry))


def resume(flow: FlowDefinition, state: RunState, given: Input) -> Step:
    """Apply one input to a waiting conversation."""
    if state.language is not None and state.language not in flow.languages:
        # The flow no longer offers the caller's language: let them choose again.
        run = _Run(flow, state.model_copy(update={"language": None}))
        return run.finish(run.enter(flow.language_menu() or flow.start))
    run = _Run(flow, state)
    if state.ended:
        return run.finish(state, Hangup(EndReason.COMPLETED))
    node = flow.nodes.get(state.node)
    if node is None:
        # The flow was edited during the call; the main menu is the safe place to land.
        return run.finish(run.enter(flow.main if state.language else flow.start))
    if isinstance(node, MessageNode | EndNode | CaseCodeNode):
        return run.finish(run.enter(state.node))
    return run.finish(run.on_input(state, node, given))


def jump(flow: FlowDefinition, state: RunState, node_id: str) -> Step:
    """Go straight to a node (a keyword such as MENU or IDIOMA), keeping the caller's language."""
    language = state.language if state.language in flow.languages else None
    run = _Run(flow, state.model_copy(update={"language": language}))
    if node_id == flow.main and language is None:
        node_id = flow.start  # the main menu needs a language; choose one first
    return run.finish(run.enter(node_id))


class _Run(SurveySteps, CaseSteps):
    """Collects the events of one engine call and counts the nodes entered."""

    def __init__(self, flow: FlowDefinition, memory: RunState) -> None:
        self.flow = flow
        self.memory = memory
        self.language = memory.language
        self.reachable = memory.reachable
        self.answered = memory.answered
        self.open_run = memory.open_run
        self.has_profile = memory.has_profile
        self.draft = memory.draft
        self.unheard = memory.unheard
        self.new_answers = memory.new_answers
        self.case_code = memory.case_code
        self.awaiting: str | None = None
        self.events: list[Event] = []
        self.steps = 0

    def state_at(self, node_id: str, *, ended: bool = False) -> RunState:
        """The state waiting at a node, keeping what is known about the caller."""
        update = {
            "node": node_id,
            "language": self.language,
            "attempts": 0,
            "ended": ended,
            "answered": self.answered,
            "open_run": self.open_run,
            "has_profile": self.has_profile,
            "draft": self.draft,
            "unheard": self.unheard,
            "new_answers": self.new_answers,
            "case_code": self.case_code,
            "awaiting": self.awaiting,
        }
        return self.memory.model_copy(update=update)

    def finish(self, state: RunState, *extra: Event) -> Step:
        return Step(state=state, events=(*self.events, *extra))

    def enter(self, node_id: str) -> RunState:
        while True:
            self.steps += 1
            if self.steps > MAX_STEPS:
                raise FlowLoopError(
                    f"flow {self.flow.id!r} entered more than {MAX_STEPS} nodes for one input"
                )
            node = self.flow.node(node_id)
            instead = self.passes(node_id, node) or self.passes_case(node)
            if instead is not None:
                node_id = instead
                continue
            self.events.append(NodeEntered(node_id, _KINDS[type(node)]))
            self.awaiting = None
            if isinstance(node, CaseCodeNode):
                node_id = self.open_case(node_id, node)
                continue
            if isinstance(node, AnswersNode):
                return self.offer_answers(node_id, node)
            self.say(node_id, node.prompt, every_language=isinstance(node, LanguageMenuNode))
            if isinstance(node, MessageNode):
                self.closes(node)
                node_id = node.next
                continue
            if isinstance(node, EndNode):
                self.events.append(Hangup(EndReason.COMPLETED))
                return self.state_at(node_id, ended=True)
            if isinstance(node, ArticleNode):
                self.say_system(_after_article(node))
            self.ask(node_id, node)
            return self.state_at(node_id)

    def on_input(self, state: RunState, node: WaitingNode, given: Input) -> RunState:  # noqa: PLR0911
        """Route one input by the kind of node waiting for it (one return per kind)."""
        if isinstance(given, Recording | CodeChecked):
            return self.on_host_input(state, node, given)
        text = given.value if isinstance(given, Digits | TextMessage) else ""
        key = text.strip()
        if isinstance(node, RecordNode) and isinstance(given, TextMessage) and key:
            return self.on_written(state, node, text)
        if not key or isinstance(node, RecordNode):
            # At a record node only a recording (or a text) is an answer; # alone is silence.
            return self.retry(state, node, "", Outcome.NO_INPUT)
        if isinstance(node, CaseWaitingNode):
            return self.on_case_step(state, node, key)
        if isinstance(node, QuestionNode):
            if node.open is not None and isinstance(given, TextMessage):
                return self.on_open_text(state, node, text)
            return self.on_question(state, node, key)
        if isinstance(node, MenuNode):
            return self.on_menu(state, node, key)
        if isinstance(node, LanguageMenuNode):
            return self.on_language(state, node, key)
        if isinstance(node, SubscribeNode):
            return self.on_subscribe(state, node, key)
        return self.on_survey_step(state, node, key)

    def on_survey_step(
        self, state: RunState, node: ArticleNode | ConsentNode | ResumeNode | ProfileCheckNode, key: str
    ) -> RunState:
        if isinstance(node, ConsentNode):
            return self.on_consent(state, node, key)
        if isinstance(node, ResumeNode):
            return self.on_resume(state, node, key)
        if isinstance(node, ProfileCheckNode):
            return self.on_profile_check(state, node, key)
        return self.on_article(state, node, key)

    def on_host_input(self, state: RunState, node: WaitingNode, given: Recording | CodeChecked) -> RunState:
        """A recording, or the host's check of a typed code; anywhere else it counts as silence."""
        if isinstance(given, Recording):
            if isinstance(node, QuestionNode) and node.open is not None:
                return self.on_recording(state, node, given)
            if isinstance(node, RecordNode):
                return self.on_recorded(state, node, given)
        elif isinstance(node, AnswersNode):
            return self.on_code_checked(state, node, given)
        return self.retry(state, node, "", Outcome.NO_INPUT)

    def on_case_step(self, state: RunState, node: CaseWaitingNode, key: str) -> RunState:
        if isinstance(node, CaseTopicNode):
            return self.on_topic(state, node, key)
        if isinstance(node, RecordReviewNode):
            return self.on_review(state, node, key)
        if isinstance(node, ReplyChoiceNode):
            return self.on_reply(state, node, key)
        if isinstance(node, AnswersNode):
            return self.on_answers_key(state, node, key)
        return self.retry(state, node, key, Outcome.INVALID)

    def on_menu(self, state: RunState, node: MenuNode, key: str) -> RunState:
        option = node.options.get(key)
        if option is not None:
            return self.go(state, NodeKind.MENU, key, Outcome.CHOSEN, option.next)
        return self.conventions(state, node, key) or self.retry(state, node, key, Outcome.INVALID)

    def on_language(self, state: RunState, node: LanguageMenuNode, key: str) -> RunState:
        language = node.options.get(key)
        if language is None:
            if key == MAIN_MENU_KEY and self.language is not None:
                return self.go(state, NodeKind.LANGUAGE_MENU, key, Outcome.MAIN_MENU, self.flow.main)
            if key == REPEAT_KEY:
                return self.go(state, NodeKind.LANGUAGE_MENU, key, Outcome.REPEAT, state.node)
            return self.retry(state, node, key, Outcome.INVALID)
        self.events.append(InputReceived(state.node, NodeKind.LANGUAGE_MENU, key, Outcome.CHOSEN, node.next))
        self.events.append(LanguageChosen(language))
        self.language = language
        return self.enter(node.next)

    def on_article(self, state: RunState, node: ArticleNode, key: str) -> RunState:
        kind = NodeKind.ARTICLE
        if key == ARTICLE_REPEAT_KEY:
            return self.go(state, kind, key, Outcome.REPEAT, state.node)
        if key == ARTICLE_NEXT_KEY and node.next is not None:
            return self.go(state, kind, key, Outcome.NEXT, node.next)
        if key == ARTICLE_BACK_KEY:
            return self.go(state, kind, key, Outcome.BACK, node.back)
        if key == MAIN_MENU_KEY:
            return self.go(state, kind, key, Outcome.MAIN_MENU, self.flow.main)
        return self.retry(state, node, key, Outcome.INVALID)

    def on_subscribe(self, state: RunState, node: SubscribeNode, key: str) -> RunState:
        kind = NodeKind.SUBSCRIBE
        if key == ACCEPT_KEY and self.language is not None:
            if not self.reachable:
                self.events.append(InputReceived(state.node, kind, key, Outcome.UNAVAILABLE, node.back))
                self.say_system("no_number")
                return self.enter(node.back)
            self.events.append(InputReceived(state.node, kind, key, Outcome.CHOSEN, node.next))
            self.events.append(Subscribed(node.topic, self.language))
            return self.enter(node.next)
        if key == REPEAT_KEY:
            return self.go(state, kind, key, Outcome.BACK, node.back)
        if key == MAIN_MENU_KEY:
            return self.go(state, kind, key, Outcome.MAIN_MENU, self.flow.main)
        return self.retry(state, node, key, Outcome.INVALID)

    def conventions(self, state: RunState, node: MenuNode, key: str) -> RunState | None:
        """The keys every menu understands: 0 repeats, 9 main menu, * language."""
        if key == REPEAT_KEY:
            return self.go(state, NodeKind.MENU, key, Outcome.REPEAT, state.node)
        if key == MAIN_MENU_KEY:
            return self.go(state, NodeKind.MENU, key, Outcome.MAIN_MENU, self.flow.main)
        language_menu = self.flow.language_menu()
        if key == LANGUAGE_KEY and language_menu is not None:
            return self.go(state, NodeKind.MENU, key, Outcome.LANGUAGE_MENU, language_menu)
        return None

    def go(self, state: RunState, kind: NodeKind, key: str, outcome: Outcome, target: str) -> RunState:
        self.events.append(InputReceived(state.node, kind, key, outcome, target))
        return self.enter(target)

    def retry(self, state: RunState, node: WaitingNode, key: str, outcome: Outcome) -> RunState:
        kind = _KINDS[type(node)]
        self.events.append(InputReceived(state.node, kind, key, outcome))
        attempts = state.attempts + 1
        if attempts > MAX_RETRIES:
            self.say_system("goodbye")
            self.events.append(Hangup(EndReason.TOO_MANY_RETRIES))
            return state.model_copy(update={"attempts": attempts, "ended": True})
        self.say_system(_RETRY_PROMPTS.get(outcome, "invalid"))
        self.awaiting = state.awaiting
        if isinstance(node, ArticleNode):
            self.say_system(_after_article(node))
        elif isinstance(node, AnswersNode) and state.awaiting == "feedback":
            self.say_system("answer_feedback")
        else:
            self.say(state.node, node.prompt, every_language=isinstance(node, LanguageMenuNode))
        self.ask(state.node, node)
        return state.model_copy(update={"attempts": attempts})

    def ask(self, node_id: str, node: WaitingNode) -> None:
        if isinstance(node, CaseWaitingNode):
            self.ask_case(node_id, node)
            return
        keys = _keys(self.flow, node_id, node, self.language)
        if isinstance(node, QuestionNode) and node.number is not None:
            # A number of any length, finished with #: e.g. an age or a count.
            self.events.append(Ask(node_id, keys, self.flow.input_timeout, self.language, None, "#"))
            return
        if isinstance(node, QuestionNode) and node.open is not None:
            # Speak after the tone; # ends, * skips.
            ask = Ask(
                node_id, keys, self.flow.input_timeout, self.language, None, "#*", node.open.max_seconds
            )
            self.events.append(ask)
            return
        self.events.append(Ask(node_id, keys, self.flow.input_timeout, self.language))

    def ask_case(self, node_id: str, node: CaseWaitingNode) -> None:
        keys = case_keys(node, self.awaiting)
        timeout, language = self.flow.input_timeout, self.language
        if isinstance(node, RecordNode):
            # Speak after the tone; # ends the recording (by SMS: write it).
            self.events.append(Ask(node_id, keys, timeout, language, None, "#", node.max_seconds))
        elif isinstance(node, AnswersNode) and self.awaiting != "feedback":
            self.events.append(Ask(node_id, keys, timeout, language, CODE_DIGITS, "#"))
        else:
            self.events.append(Ask(node_id, keys, timeout, language))

    def say_system(self, name: str) -> None:
        self.say(system_prompt_key(name), self.flow.system[name])

    def say(self, key: str, text: Text, *, every_language: bool = False) -> None:
        """Say a prompt in the caller's language, or in every language until one is chosen."""
        languages = self.flow.languages if every_language or self.language is None else [self.language]
        for lang in languages:
            self.events.append(Say(Prompt(self.flow.id, key, lang, text[lang])))


def _after_article(node: ArticleNode) -> str:
    return "after_article" if node.next is not None else "after_last_article"


def _keys(  # noqa: PLR0911
    flow: FlowDefinition, node_id: str, node: WaitingNode, language: str | None
) -> tuple[str, ...]:
    """The keys that mean something at a node, for channels that list or restrict them."""
    if isinstance(node, MenuNode):
        extra = [REPEAT_KEY, MAIN_MENU_KEY] + ([LANGUAGE_KEY] if flow.language_menu() else [])
        return (*node.options, *extra)
    if isinstance(node, LanguageMenuNode):
        return (*node.options, REPEAT_KEY, *([MAIN_MENU_KEY] if language else []))
    if isinstance(node, SubscribeNode):
        return (ACCEPT_KEY, REPEAT_KEY, MAIN_MENU_KEY)
    if isinstance(node, QuestionNode):
        if node.open is not None:
            return (SKIP_KEY, REPEAT_KEY)
        if node.number is not None:
            return (*"0123456789", SKIP_KEY)
        return (*flow.choices(node), REPEAT_KEY, MAIN_MENU_KEY, SKIP_KEY)
    if isinstance(node, ConsentNode):
        return ("1",)
    if isinstance(node, ResumeNode):
        # Offered on the way to the main menu, any key but 1 and 0 leads there; 9 says so.
        return (
            ("1", "2", REPEAT_KEY, MAIN_MENU_KEY)
            if offered_by_menu(flow, node_id)
            else ("1", REPEAT_KEY, MAIN_MENU_KEY)
        )
    if isinstance(node, ProfileCheckNode):
        return ("1", "2", REPEAT_KEY)
    keys = [ARTICLE_REPEAT_KEY, *([ARTICLE_NEXT_KEY] if node.next else []), ARTICLE_BACK_KEY, MAIN_MENU_KEY]
    return tuple(keys)
