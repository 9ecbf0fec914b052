"""How the engine walks the two-way line: leaving a question, hearing answers, following up.

The engine never sees a case. It reports what the caller did (`CaseOpened`, `CodeEntered`...) and the
host answers what only the database knows: the new case's code (filled into `SayCode`), whether a typed
code is right (the `CodeChecked` input), and what an answer says (filled into `PlayAnswer`).
"""

from __future__ import annotations

from app.flows.events import (
    AnswerFeedback,
    CaseDraft,
    CaseOpened,
    CodeChecked,
    CodeEntered,
    Event,
    FollowedUp,
    InputReceived,
    NodeKind,
    Outcome,
    PlayAnswer,
    PlayRecording,
    Prompt,
    Recording,
    ReplyChosen,
    RunState,
    SayCode,
)
from app.flows.model import (
    MAIN_MENU_KEY,
    REPEAT_KEY,
    AnswersNode,
    CaseCodeNode,
    CaseTopicNode,
    FlowDefinition,
    RecordNode,
    RecordReviewNode,
    ReplyChoiceNode,
    Text,
    system_prompt_key,
)

KEEP_KEY, LISTEN_KEY, AGAIN_KEY = "1", "2", "3"
CALL_KEY, SMS_KEY = "1", "2"
ANSWERED_KEY, FOLLOW_UP_KEY = "1", "2"
FEEDBACK_KEYS = frozenset({ANSWERED_KEY, FOLLOW_UP_KEY, REPEAT_KEY})
CODE_DIGITS = 6
CaseWaitingNode = CaseTopicNode | RecordNode | RecordReviewNode | ReplyChoiceNode | AnswersNode


class CaseSteps:
    """Two-way line moves for the engine's run; the run provides entering, asking and re-asking."""

    flow: FlowDefinition
    events: list[Event]
    language: str | None
    reachable: bool
    draft: CaseDraft | None
    unheard: tuple[str, ...]
    new_answers: int
    case_code: str | None
    awaiting: str | None

    def enter(self, node_id: str) -> RunState:
        """Enter a node (provided by the run)."""
        raise NotImplementedError

    def go(self, state: RunState, kind: NodeKind, key: str, outcome: Outcome, target: str) -> RunState:
        """Record an input and enter its target (provided by the run)."""
        raise NotImplementedError

    def retry(self, state: RunState, node: CaseWaitingNode, key: str, outcome: Outcome) -> RunState:
        """Re-ask after a wrong key (provided by the run)."""
        raise NotImplementedError

    def ask(self, node_id: str, node: CaseWaitingNode) -> None:
        """Wait for input at a node (provided by the run)."""
        raise NotImplementedError

    def state_at(self, node_id: str, *, ended: bool = False) -> RunState:
        """The state waiting at a node (provided by the run)."""
        raise NotImplementedError

    def say(self, key: str, text: Text, *, every_language: bool = False) -> None:
        """Say a prompt (provided by the run)."""
        raise NotImplementedError

    def say_system(self, name: str) -> None:
        """Say a system prompt (provided by the run)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ entering nodes

    def passes_case(self, node: object) -> str | None:
        """A written question needs no review; an announcement with nothing to announce is passed."""
        if isinstance(node, RecordReviewNode) and self.draft is not None and self.draft.text is not None:
            return node.next
        if isinstance(node, AnswersNode) and node.announce and not self.unheard:
            return node.next
        return None

    def open_case(self, node_id: str, node: CaseCodeNode) -> str:
        """Report the question (a new case, or a follow-up) and read the new case's code."""
        draft, self.draft = self.draft, None
        if draft is None or (draft.text is None and draft.recording_sid is None):
            return self.flow.main  # reached without a question (the flow was edited mid-call)
        recording = _recording(draft)
        if self.case_code is not None and draft.topic is None:
            # A follow-up keeps its case and code: the node's prompt just thanks her.
            self.events.append(FollowedUp(self.case_code, recording, draft.text))
            self.say(node_id, node.prompt)
            return node.next
        self.events.append(CaseOpened(draft.topic or "other", recording, draft.text))
        language = self.language or self.flow.languages[0]
        self.events.append(SayCode(Prompt(self.flow.id, node_id, language, node.prompt[language])))
        return node.next

    def offer_answers(self, node_id: str, node: AnswersNode) -> RunState:
        """New answers are played at once; without any, a case code is asked for."""
        if self.unheard:
            self.say_system("answers_new")
            # How many, digit by digit, the first time only (e.g. "New answers to your questions: two").
            for digit in str(self.new_answers) if self.new_answers else "":
                self.say_system(f"digit_{digit}")
            self.new_answers = 0
            return self.play_next(node_id)
        self.say(node_id, node.prompt)
        return self.wait_for_code(node_id, node)

    def play_next(self, node_id: str) -> RunState:
        """Play the first waiting case's answers, then ask whether they answered her question."""
        self.case_code = self.unheard[0]
        self.events.append(PlayAnswer(self.flow.id, self.case_code, self.language))
        return self.ask_feedback(node_id)

    def ask_feedback(self, node_id: str) -> RunState:
        """After an answer: 1 it answered, 2 a follow-up, 0 again."""
        node = self.flow.nodes[node_id]
        self.say_system("answer_feedback")
        self.awaiting = "feedback"
        if isinstance(node, AnswersNode):
            self.ask(node_id, node)
        return self.state_at(node_id)

    def wait_for_code(self, node_id: str, node: AnswersNode) -> RunState:
        self.awaiting = "code"
        self.ask(node_id, node)
        return self.state_at(node_id)

    def wait(self, node_id: str, awaiting: str) -> RunState:
        self.awaiting = awaiting
        return self.state_at(node_id)

    # ------------------------------------------------------------------ inputs

    def on_topic(self, state: RunState, node: CaseTopicNode, key: str) -> RunState:
        choice = node.topics.get(key)
        if choice is not None:
            self.draft = CaseDraft(topic=choice.name)
            self.case_code = None  # a new question, not a follow-up
            return self.go(state, NodeKind.CASE_TOPIC, key, Outcome.CHOSEN, node.next)
        return self.common_keys(state, node, key)

    def on_recorded(self, state: RunState, node: RecordNode, given: Recording) -> RunState:
        """A recording: an empty one is asked for again, a real one goes to be reviewed."""
        if given.duration <= 0:
            return self.retry(state, node, "", Outcome.NO_INPUT)
        self.draft = (state.draft or CaseDraft()).model_copy(
            update={
                "recording_sid": given.sid,
                "recording_url": given.url,
                "recording_duration": given.duration,
                "text": None,
            }
        )
        self.events.append(InputReceived(state.node, NodeKind.RECORD, "recording", Outcome.CHOSEN, node.next))
        return self.enter(node.next)

    def on_written(self, state: RunState, node: RecordNode, text: str) -> RunState:
        """A written question (SMS): kept whole up to the node's limit; the host masks numbers."""
        self.draft = (state.draft or CaseDraft()).model_copy(update={"text": text.strip()[: node.max_chars]})
        self.events.append(InputReceived(state.node, NodeKind.RECORD, "text", Outcome.CHOSEN, node.next))
        return self.enter(node.next)

    def on_review(self, state: RunState, node: RecordReviewNode, key: str) -> RunState:
        kind = NodeKind.RECORD_REVIEW
        if key == KEEP_KEY:
            return self.go(state, kind, key, Outcome.KEPT, node.next)
        if key == LISTEN_KEY and state.draft is not None and state.draft.recording_url is not None:
            self.events.append(InputReceived(state.node, kind, key, Outcome.LISTEN))
            self.events.append(PlayRecording(state.draft.recording_url))
            self.say(state.node, node.prompt)
            self.ask(state.node, node)
            return self.state_at(state.node)
        if key == AGAIN_KEY:
            return self.go(state, kind, key, Outcome.AGAIN, node.again)
        return self.common_keys(state, node, key)

    def on_reply(self, state: RunState, node: ReplyChoiceNode, key: str) -> RunState:
        kind = NodeKind.REPLY_CHOICE
        if key == CALL_KEY:
            self.events.append(InputReceived(state.node, kind, key, Outcome.CHOSEN, node.next))
            self.events.append(ReplyChosen("call"))
            return self.enter(node.next)
        if key == SMS_KEY:
            if not self.reachable:
                # A withheld number cannot get an SMS: she hears why, and her answer waits for her call.
                self.events.append(InputReceived(state.node, kind, key, Outcome.UNAVAILABLE, node.next))
                self.say_system("no_number")
                self.events.append(ReplyChosen("call"))
                return self.enter(node.next)
            self.events.append(InputReceived(state.node, kind, key, Outcome.CHOSEN, node.next))
            self.events.append(ReplyChosen("sms"))
            return self.enter(node.next)
        return self.common_keys(state, node, key)

    def on_answers_key(self, state: RunState, node: AnswersNode, key: str) -> RunState:
        kind = NodeKind.ANSWERS
        if state.awaiting == "feedback" and self.case_code is not None and key in FEEDBACK_KEYS:
            return self.on_feedback(state, node, self.case_code, key)
        if state.awaiting == "code" and len(key) == CODE_DIGITS and key.isdigit():
            self.events.append(InputReceived(state.node, kind, "code", Outcome.CHOSEN))
            self.events.append(CodeEntered(key))
            # Attempts carry over: a wrong code counts towards the call's re-asks.
            return self.wait(state.node, "lookup").model_copy(update={"attempts": state.attempts})
        if key == MAIN_MENU_KEY:
            return self.go(state, kind, key, Outcome.MAIN_MENU, self.flow.main)
        if key == REPEAT_KEY and state.awaiting == "code":
            return self.go(state, kind, key, Outcome.REPEAT, state.node)
        return self.retry(state, node, key, Outcome.INVALID)

    def on_feedback(self, state: RunState, node: AnswersNode, code: str, key: str) -> RunState:
        """1: it answered her question; 2: she asks more (a follow-up); 0: hear it again."""
        kind = NodeKind.ANSWERS
        if key == REPEAT_KEY:
            self.events.append(InputReceived(state.node, kind, key, Outcome.REPEAT))
            self.events.append(PlayAnswer(self.flow.id, code, self.language))
            return self.ask_feedback(state.node)
        self.unheard = tuple(c for c in self.unheard if c != code)
        if key == FOLLOW_UP_KEY:
            self.events.append(InputReceived(state.node, kind, key, Outcome.CHOSEN, node.follow_up))
            self.events.append(AnswerFeedback(code, "follow_up"))
            self.draft = CaseDraft()
            return self.enter(node.follow_up)
        self.events.append(InputReceived(state.node, kind, key, Outcome.CHOSEN))
        self.events.append(AnswerFeedback(code, "answered"))
        self.say_system("answer_thanks")
        return self.play_next(state.node) if self.unheard else self.enter(node.next)

    def on_code_checked(self, state: RunState, node: AnswersNode, given: CodeChecked) -> RunState:
        """The host says whether the typed code names a case, and whether it has an answer."""
        if state.awaiting != "lookup":
            return self.retry(state, node, "", Outcome.INVALID)
        if given.status == "answered":
            self.unheard = (given.code, *(c for c in self.unheard if c != given.code))
            return self.play_next(state.node)
        if given.status == "waiting":
            self.say_system("no_answer_yet")
            return self.enter(node.next)
        if given.status == "locked":
            self.say_system("code_locked")
            return self.enter(node.next)
        # A wrong code counts as a wrong key: re-asked twice, then the call ends politely.
        return self.retry(state.model_copy(update={"awaiting": "code"}), node, "", Outcome.UNAVAILABLE)

    def common_keys(self, state: RunState, node: CaseWaitingNode, key: str) -> RunState:
        """0 repeats and 9 goes to the main menu, as on every menu; anything else is re-asked."""
        kind = _kind(node)
        if key == REPEAT_KEY:
            return self.go(state, kind, key, Outcome.REPEAT, state.node)
        if key == MAIN_MENU_KEY:
            self.draft = None  # leaving drops the unfinished question
            return self.go(state, kind, key, Outcome.MAIN_MENU, self.flow.main)
        return self.retry(state, node, key, Outcome.INVALID)


def spoken_code(flow: FlowDefinition, prompt: Prompt, code: str) -> list[Prompt]:
    """A `SayCode` as prompts: the node's words, the digits one by one, "again", the digits again."""
    language = prompt.language

    def system(name: str) -> Prompt:
        return Prompt(flow.id, system_prompt_key(name), language, flow.system[name][language])

    digits = [system(f"digit_{digit}") for digit in code if digit.isdigit()]
    return [prompt, *digits, system("code_again"), *digits]


def answer_intro(flow: FlowDefinition, language: str | None) -> Prompt:
    """What is said before the answers of a case are played."""
    language = language if language in flow.languages else flow.languages[0]
    return Prompt(flow.id, system_prompt_key("answer_intro"), language, flow.system["answer_intro"][language])


def case_keys(node: CaseWaitingNode, awaiting: str | None) -> tuple[str, ...]:
    """The keys that mean something at a two-way line node."""
    if isinstance(node, CaseTopicNode):
        return (*node.topics, REPEAT_KEY, MAIN_MENU_KEY)
    if isinstance(node, RecordNode):
        return ("#",)
    if isinstance(node, RecordReviewNode):
        return (KEEP_KEY, LISTEN_KEY, AGAIN_KEY, REPEAT_KEY, MAIN_MENU_KEY)
    if isinstance(node, ReplyChoiceNode):
        return (CALL_KEY, SMS_KEY, REPEAT_KEY, MAIN_MENU_KEY)
    if awaiting == "feedback":
        return (ANSWERED_KEY, FOLLOW_UP_KEY, REPEAT_KEY, MAIN_MENU_KEY)
    return (*"0123456789", "#")


def _kind(node: CaseWaitingNode) -> NodeKind:
    kinds = {
        CaseTopicNode: NodeKind.CASE_TOPIC,
        RecordNode: NodeKind.RECORD,
        RecordReviewNode: NodeKind.RECORD_REVIEW,
        ReplyChoiceNode: NodeKind.REPLY_CHOICE,
        AnswersNode: NodeKind.ANSWERS,
    }
    return kinds[type(node)]


def _recording(draft: CaseDraft) -> Recording | None:
    if draft.recording_sid is None or draft.recording_url is None:
        return None
    return Recording(draft.recording_sid, draft.recording_url, draft.recording_duration or 0)
