"""How the engine walks survey nodes: questions, consent, resuming a run and checking the profile.

What the engine knows of the caller's survey changes during a call, and is kept in the state: the
questions answered in the open run (``answered``, never asked again), whether that run has answers
(``open_run``: a resume node offers it) and whether this phone's last profile can be offered again
(``has_profile``: never after an under-18 answer, never an unfinished profile).
"""

from __future__ import annotations

from app.flows.events import (
    Answered,
    ConsentGiven,
    Event,
    InputReceived,
    NodeKind,
    Outcome,
    ProfileReused,
    Recording,
    RunRestarted,
    RunState,
    SurveyClosed,
)
from app.flows.model import (
    MAIN_MENU_KEY,
    REPEAT_KEY,
    SKIP_KEY,
    SKIPPED,
    AnyNode,
    ConsentNode,
    FlowDefinition,
    MenuNode,
    MessageNode,
    ProfileCheckNode,
    QuestionNode,
    ResumeNode,
    question_id,
)

CONTINUE_KEY = "1"
RESTART_KEY = "2"
SAME_PERSON_KEY = "1"
OTHER_PERSON_KEY = "2"
START_KEY = "1"
MAX_NUMBER_DIGITS = 6


class SurveySteps:
    """Survey moves for the engine's run; the run provides entering nodes, re-asking and the events."""

    flow: FlowDefinition
    events: list[Event]
    answered: tuple[str, ...]
    open_run: bool
    has_profile: bool

    def enter(self, node_id: str) -> RunState:
        """Enter a node (provided by the run)."""
        raise NotImplementedError

    def go(self, state: RunState, kind: NodeKind, key: str, outcome: Outcome, target: str) -> RunState:
        """Record an input and enter its target (provided by the run)."""
        raise NotImplementedError

    def retry(
        self,
        state: RunState,
        node: QuestionNode | ResumeNode | ConsentNode | ProfileCheckNode,
        key: str,
        outcome: Outcome,
    ) -> RunState:
        """Re-ask after a wrong key (provided by the run)."""
        raise NotImplementedError

    def passes(self, node_id: str, node: AnyNode) -> str | None:
        """Where to go instead of stopping at a node the caller must not be asked, or None to stop."""
        if isinstance(node, QuestionNode) and question_id(node_id, node) in self.answered:
            return node.next
        if isinstance(node, ResumeNode) and not self.open_run:
            return node.next if offered_by_menu(self.flow, node_id) else self.flow.main
        if isinstance(node, ProfileCheckNode):
            if not self.has_profile:
                return node.next
            if any(q in self.answered for q in self.flow.profile_questions().values()):
                return node.next  # a continued run: its profile questions left are asked, not re-checked
        return None

    def closes(self, node: MessageNode) -> None:
        """A thank-you that ends a survey run, as completed or as ineligible."""
        if node.completes is not None:
            self.events.append(SurveyClosed(node.completes, "completed"))
            self.run_ended()
        if node.ineligible_for is not None:
            self.events.append(SurveyClosed(node.ineligible_for, "ineligible"))
            self.run_ended()
            self.has_profile = False  # an under-18 profile is never offered again: ask who is calling

    def run_ended(self) -> None:
        """No run is open any more: a later survey in this call starts afresh."""
        self.answered = ()
        self.open_run = False

    def took(self, question: str, profile: str | None) -> None:
        """An answer (or skip) is stored in the open run: it is never asked again in this run."""
        self.answered = (*self.answered, question)
        self.open_run = True
        if profile is not None:
            # The run now holds the phone's latest profile; only a complete one is offered again.
            self.has_profile = set(self.flow.profile_questions().values()) <= set(self.answered)

    def on_question(self, state: RunState, node: QuestionNode, key: str) -> RunState:
        question = question_id(state.node, node)
        if key == SKIP_KEY:
            return self.answer(state, node, question, SKIPPED, key, node.next)
        if node.number is not None:
            if _number_in(key, node.number.min, node.number.max):
                return self.answer(state, node, question, str(int(key)), key, node.next)
        else:
            choice = self.flow.choices(node).get(key)
            if choice is not None:
                return self.answer(state, node, question, choice.name, key, choice.next or node.next)
        if key == REPEAT_KEY:
            return self.go(state, NodeKind.QUESTION, key, Outcome.REPEAT, state.node)
        if key == MAIN_MENU_KEY and node.number is None:
            return self.go(state, NodeKind.QUESTION, key, Outcome.MAIN_MENU, self.flow.main)
        return self.retry(state, node, key, Outcome.INVALID)

    def answer(
        self, state: RunState, node: QuestionNode, question: str, value: str, key: str, target: str
    ) -> RunState:
        outcome = Outcome.SKIPPED if key == SKIP_KEY else Outcome.CHOSEN
        kind = "numeric" if node.number is not None and key != SKIP_KEY else "select_one"
        self.events.append(InputReceived(state.node, NodeKind.QUESTION, key, outcome, target))
        self.events.append(Answered(question, value, kind, node.profile))
        self.took(question, node.profile)
        return self.enter(target)

    def on_open_text(self, state: RunState, node: QuestionNode, text: str) -> RunState:
        """A written answer; the conventional keys alone still skip, repeat or leave."""
        if text.strip() in {SKIP_KEY, REPEAT_KEY, MAIN_MENU_KEY}:
            return self.on_question(state, node, text.strip())
        limit = node.open.max_chars if node.open is not None else len(text)
        return self.open_answer(
            state,
            node,
            Answered(question_id(state.node, node), "text", "open", node.profile, text=text.strip()[:limit]),
        )

    def on_recording(self, state: RunState, node: QuestionNode, recording: Recording) -> RunState:
        """A spoken answer; ended with * (or empty), it is a skip, but the host still takes the audio."""
        question = question_id(state.node, node)
        skipped = recording.finished_with == SKIP_KEY or recording.duration < 1
        value = SKIPPED if skipped else "recording"
        return self.open_answer(
            state, node, Answered(question, value, "open", node.profile, recording=recording)
        )

    def open_answer(self, state: RunState, node: QuestionNode, answered: Answered) -> RunState:
        outcome = Outcome.SKIPPED if answered.value == SKIPPED else Outcome.CHOSEN
        self.events.append(InputReceived(state.node, NodeKind.QUESTION, answered.value, outcome, node.next))
        self.events.append(answered)
        self.took(answered.question, answered.profile)
        return self.enter(node.next)

    def on_consent(self, state: RunState, node: ConsentNode, key: str) -> RunState:
        """1 starts; any other key goes back. Silence asks again: the caller may still be deciding."""
        accepted = key == START_KEY
        self.events.append(ConsentGiven(node.survey, accepted))
        if accepted:
            self.run_ended()  # the host closes any run left open and starts a new one
        return self.enter(node.next if accepted else node.back)

    def on_resume(self, state: RunState, node: ResumeNode, key: str) -> RunState:
        """1 continues, 0 repeats; 2 restarts and 9 leaves (from a menu), or any other key leaves."""
        kind = NodeKind.RESUME
        consent_next = consent_after(self.flow, node)
        if key == CONTINUE_KEY and consent_next is not None:
            return self.go(state, kind, key, Outcome.CONTINUE, consent_next)
        if key == REPEAT_KEY:
            return self.go(state, kind, key, Outcome.REPEAT, state.node)
        if not offered_by_menu(self.flow, state.node):
            return self.go(state, kind, key, Outcome.MAIN_MENU, self.flow.main)
        if key == RESTART_KEY:
            self.events.append(RunRestarted(node.survey))
            self.run_ended()
            return self.go(state, kind, key, Outcome.RESTART, node.next)
        if key == MAIN_MENU_KEY:
            return self.go(state, kind, key, Outcome.MAIN_MENU, self.flow.main)
        return self.retry(state, node, key, Outcome.INVALID)

    def on_profile_check(self, state: RunState, node: ProfileCheckNode, key: str) -> RunState:
        kind = NodeKind.PROFILE_CHECK
        if key == SAME_PERSON_KEY:
            self.events.append(ProfileReused())
            # The host copies the stored profile's answers into this run: none is asked in it.
            profile = tuple(self.flow.profile_questions().values())
            self.answered = (*self.answered, *(q for q in profile if q not in self.answered))
            return self.go(state, kind, key, Outcome.SAME, node.same)
        if key == OTHER_PERSON_KEY:
            return self.go(state, kind, key, Outcome.DIFFERENT, node.next)
        if key == REPEAT_KEY:
            return self.go(state, kind, key, Outcome.REPEAT, state.node)
        return self.retry(state, node, key, Outcome.INVALID)


def _number_in(key: str, low: int, high: int) -> bool:
    """A whole number typed on the keypad (ASCII digits only), within the range."""
    return key.isascii() and key.isdigit() and len(key) <= MAX_NUMBER_DIGITS and low <= int(key) <= high


def offered_by_menu(flow: FlowDefinition, node_id: str) -> bool:
    """A resume node a menu option leads to is the survey's own door; elsewhere it is an offer on the way
    to the main menu (e.g. right after the greeting), which only a caller with an open run hears."""
    return any(
        option.next == node_id
        for node in flow.nodes.values()
        if isinstance(node, MenuNode)
        for option in node.options.values()
    )


def consent_after(flow: FlowDefinition, node: ResumeNode) -> str | None:
    """Where a continued run picks up: just past the survey's consent (answered questions are passed)."""
    consent = flow.nodes.get(node.next)
    if isinstance(consent, ConsentNode):
        return consent.next
    return None
