"""Synthetic callers and sessions for scripts/bench_stats.py: a seeded, realistic mix over one calendar."""

# ruff: noqa: S311  (seeded random numbers make the synthetic data the same on every run)

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

from app.flows.events import (
    Answered,
    Event,
    InputReceived,
    LanguageChosen,
    NodeEntered,
    NodeKind,
    Outcome,
)
from app.flows.model import SKIPPED, ArticleNode, FlowDefinition
from app.stats import DEFAULT_STATS_ZONE, rollup
from app.stats.dimensions import Grain, next_period

ZONE = ZoneInfo(DEFAULT_STATS_ZONE)
FIRST_DAY = date(2024, 1, 1)
FLOW_ID = "hotline"
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (2_000, 20_000)
KINDS = ("library", "news", "survey", "question", "browse")
KIND_WEIGHTS = (40, 10, 30, 15, 5)


@dataclass(frozen=True)
class Persona:
    """Who a synthetic caller is; a session learns it only when she answers the survey's profile."""

    gender: str
    age_band: str
    community: str
    language: str
    channel: str


@dataclass(frozen=True)
class Planned:
    """One synthetic session, before its steps are built (they are rebuilt from ``seed``)."""

    started_at: datetime
    caller_id: int
    channel: str
    kind: str
    seed: int


@dataclass(frozen=True)
class StepPlan:
    """One webhook step: when (seconds after the start), its engine events, and what it tells about her."""

    at: float
    events: tuple[Event, ...]
    describe: dict[str, str | None]


@dataclass
class Plan:
    """A session's steps, when it ends, and the case it opened if any."""

    steps: list[StepPlan] = field(default_factory=list)
    clock: float = 0.0
    wait: float = 0.0
    topic: str | None = None

    def step(self, *events: Event, describe: dict[str, str | None] | None = None) -> None:
        """Add a step after the pending wait (a message being listened to, or a few seconds of keys)."""
        self.clock += self.wait or 0.0
        self.wait = 6.0
        self.steps.append(StepPlan(self.clock, events, describe or {}))

    @property
    def rows(self) -> int:
        """How many interaction rows the session writes (as app.sessions.service stores them)."""
        return sum(len(_rows(step.events, "es", None)) for step in self.steps)


class Synthetic:
    """Seeded synthetic callers and sessions over the hotline flow."""

    def __init__(self, flow: FlowDefinition, months: int) -> None:
        self.flow = flow
        self.last_day = FIRST_DAY
        for _ in range(months):
            self.last_day = next_period(Grain.MONTH, self.last_day)
        self.last_day -= timedelta(days=1)
        self.articles = {
            service: [
                n
                for n, node in flow.nodes.items()
                if isinstance(node, ArticleNode) and node.service == service
            ]
            for service in ("library", "news")
        }
        self.questions = [
            (node_id, qid, node)
            for qid, node in flow.questions().items()
            for node_id in [_node_of(flow, qid)]
        ]
        self.topics = sorted({c.name for n in flow.nodes.values() for c in getattr(n, "topics", {}).values()})

    def persona(self, rng: Random) -> Persona:
        """About 40% women, es/qu, mostly one channel per caller, several communities."""
        return Persona(
            gender=rng.choices(("mujer", "hombre", "otro", "prefiero_no_decir"), (40, 52, 2, 6))[0],
            age_band=rng.choices(
                ("menor_18", "18_29", "30_44", "45_59", "60_mas", "prefiero_no_decir"), (3, 25, 30, 22, 15, 5)
            )[0],
            community=rng.choices(
                (
                    "la_oroya",
                    "morococha",
                    "yauli",
                    "santa_rosa_de_sacco",
                    "huay_huay",
                    "otra",
                    "prefiero_no_decir",
                ),
                (30, 15, 15, 12, 10, 13, 5),
            )[0],
            language=rng.choices(("es", "qu"), (65, 35))[0],
            channel=rng.choices(("voice", "sms"), (60, 40))[0],
        )

    def world(self, size: int, seed: int) -> tuple[list[Persona], list[Planned], int]:
        """Callers and their sessions until ``size`` interactions; a third come back on other days."""
        rng = Random(seed)
        personas: list[Persona] = []
        sessions: list[Planned] = []
        days = (self.last_day - FIRST_DAY).days + 1
        total = 0
        while total < size:
            persona = self.persona(rng)
            personas.append(persona)
            visits = 1 if rng.random() < 0.65 else rng.randint(2, 6)
            for _ in range(visits):
                day = FIRST_DAY + timedelta(days=rng.randrange(days))
                local = datetime.combine(day, clock_time(rng.randint(6, 20), rng.randrange(60)), ZONE)
                channel = (
                    persona.channel
                    if rng.random() < 0.85
                    else ("sms" if persona.channel == "voice" else "voice")
                )
                kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
                planned = Planned(local.astimezone(UTC), len(personas), channel, kind, rng.getrandbits(32))
                sessions.append(planned)
                total += self.plan(persona, planned).rows
                if total >= size:
                    break
        sessions.sort(key=lambda planned: planned.started_at)
        return personas, sessions, total

    def plan(self, persona: Persona, planned: Planned) -> Plan:
        """The steps the engine would produce for this session."""
        rng, plan = Random(planned.seed), Plan()
        plan.step(NodeEntered("greeting", NodeKind.MESSAGE), NodeEntered("language", NodeKind.LANGUAGE_MENU))
        digit = "1" if persona.language == "es" else "2"
        plan.step(
            InputReceived("language", NodeKind.LANGUAGE_MENU, digit, Outcome.CHOSEN, "main"),
            LanguageChosen(persona.language),
            NodeEntered("main", NodeKind.MENU),
        )
        if planned.kind in ("library", "news"):
            self._listen(rng, plan, planned, persona, planned.kind)
        elif planned.kind == "survey":
            self._survey(rng, plan, persona)
        elif planned.kind == "question":
            self._question(rng, plan)
        return plan

    def _listen(self, rng: Random, plan: Plan, planned: Planned, persona: Persona, service: str) -> None:
        plan.step(
            _choose("main", "1" if service == "library" else "2", service),
            NodeEntered(service, NodeKind.MENU),
        )
        for node in rng.sample(self.articles[service], rng.choices((1, 2, 3), (55, 30, 15))[0]):
            plan.step(_choose(service, "1", node), NodeEntered(node, NodeKind.ARTICLE))
            seconds = rollup.message_seconds(self.flow, node, persona.language)
            # About two thirds stay to the end; the others leave (or move on) part-way.
            heard = rng.uniform(0.95, 1.3) if rng.random() < 0.65 else rng.uniform(0.1, 0.8)
            plan.wait = seconds * heard if planned.channel == "voice" else rng.uniform(20, 300)

    def _survey(self, rng: Random, plan: Plan, persona: Persona) -> None:
        first = self.questions[0][0]
        plan.step(_choose("main", "3", "survey_consent"), NodeEntered("survey_consent", NodeKind.CONSENT))
        plan.step(_choose("survey_consent", "1", first), NodeEntered(first, NodeKind.QUESTION))
        for index, (node_id, qid, node) in enumerate(self.questions):
            choices = {choice.name: key for key, choice in self.flow.choices(node).items()}
            if node.profile is not None:
                value = getattr(persona, node.profile)
            elif node.open is not None:
                value = "recorded"
            else:
                value = rng.choices(list(choices), [1 + i for i in range(len(choices))])[0]
            value = SKIPPED if rng.random() < 0.06 else value
            kind = "open" if node.open is not None else "select_one"
            described = None if value in (SKIPPED, "prefiero_no_decir") else value
            following = self.questions[index + 1][0] if index + 1 < len(self.questions) else "survey_thanks"
            outcome = Outcome.SKIPPED if value == SKIPPED else Outcome.CHOSEN
            plan.step(
                InputReceived(node_id, NodeKind.QUESTION, choices.get(value, "*"), outcome, following),
                Answered(qid, value, kind, node.profile),
                NodeEntered(
                    following, NodeKind.QUESTION if following != "survey_thanks" else NodeKind.MESSAGE
                ),
                describe={node.profile: described} if node.profile else None,
            )
            if value == "menor_18" or rng.random() < 0.04:
                return  # under 18: the survey closes as ineligible; others hang up part-way

    def _question(self, rng: Random, plan: Plan) -> None:
        plan.topic = rng.choice(self.topics)
        plan.step(_choose("main", "4", "ask_topic"), NodeEntered("ask_topic", NodeKind.CASE_TOPIC))
        plan.step(_choose("ask_topic", "1", "ask_record"), NodeEntered("ask_record", NodeKind.RECORD))
        plan.wait = rng.uniform(15, 90)
        plan.step(_choose("ask_record", "#", "ask_review"), NodeEntered("ask_review", NodeKind.RECORD_REVIEW))
        plan.step(_choose("ask_review", "1", "ask_code"), NodeEntered("ask_code", NodeKind.CASE_CODE))


def _node_of(flow: FlowDefinition, question_id: str) -> str:
    node = flow.questions()[question_id]
    return next(node_id for node_id, candidate in flow.nodes.items() if candidate is node)


def _choose(node: str, key: str, target: str) -> InputReceived:
    return InputReceived(node, NodeKind.MENU, key, Outcome.CHOSEN, target)


def _rows(events: Sequence[Event], language: str | None, node: str | None) -> list[dict[str, Any]]:
    """Interaction rows of one step, as ConversationService stores them (consent and answers unlinked)."""
    rows: list[dict[str, Any]] = []
    for event in events:
        if isinstance(event, NodeEntered) and event.kind != NodeKind.CONSENT:
            node = event.node
            row = {"node": node, "kind": event.kind, "event": "entered", "value": None, "outcome": None}
        elif isinstance(event, InputReceived):
            row = {"node": event.node, "kind": event.kind, "event": "input", "value": event.value}
            row["outcome"] = event.outcome
        elif isinstance(event, LanguageChosen):
            language = event.language
            row = {"node": node or "language", "kind": "language", "event": "language", "value": language}
            row["outcome"] = None
        else:
            continue
        rows.append(row | {"language": language})
    return rows
