"""Which surveys the flows hold and which questions each asks: one Flow Results package per survey."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from app.floip.errors import SurveyNotFound
from app.floip.keys import FloipKeys
from app.flows.model import (
    AnyNode,
    ConsentNode,
    FlowDefinition,
    MessageNode,
    ProfileCheckNode,
    QuestionNode,
    ResumeNode,
    question_id,
)
from app.flows.validate import targets

QuestionSchema = dict[str, Any]
"""A question as the descriptor lists it: ``type``, ``label`` and ``type_options``."""


@dataclass(frozen=True)
class Package:
    """A survey of a flow (the survey of its consent node) with its questions, in the order asked."""

    id: str
    flow: FlowDefinition
    survey: str
    questions: Mapping[str, QuestionNode]

    @property
    def name(self) -> str:
        """A url-usable, lower-case name (flow ids and survey names are already [a-z0-9_])."""
        return f"rimay-{self.flow.id}-{self.survey}"

    @property
    def title(self) -> str:
        """A human-readable title."""
        return f"{self.flow.title or self.flow.id}: {self.survey}"


def question_schema(flow: FlowDefinition, node: QuestionNode) -> QuestionSchema:
    """A question's type, label (its prompt in the flow's first language) and options."""
    label = node.prompt.get(flow.languages[0]) or next(iter(node.prompt.values()), "")
    if node.open is not None:
        return {"type": "open", "label": label, "type_options": {}}
    if node.number is not None:
        return {
            "type": "numeric",
            "label": label,
            "type_options": {"range": [node.number.min, node.number.max]},
        }
    choices = [choice.name for choice in flow.choices(node).values()]
    return {"type": "select_one", "label": label, "type_options": {"choices": choices}}


def survey_names(flow: FlowDefinition) -> list[str]:
    """The surveys a flow asks consent for, in node order."""
    names = (node.survey for node in flow.nodes.values() if isinstance(node, ConsentNode))
    return list(dict.fromkeys(names))


def survey_questions(flow: FlowDefinition, survey: str) -> dict[str, QuestionNode]:
    """The questions reachable from the survey's consent node(s), in the order a caller meets them."""
    # Depth first, each node's own `next` before its other exits: breadth first would interleave the
    # profile branch of a profile check with the questions its `same` exit skips to.
    starts = [
        node_id
        for node_id, node in flow.nodes.items()
        if isinstance(node, ConsentNode) and node.survey == survey
    ]
    pending, seen = list(reversed(starts)), set[str]()
    found: dict[str, QuestionNode] = {}
    while pending:
        node_id = pending.pop()
        if node_id in seen or node_id not in flow.nodes:
            continue
        seen.add(node_id)
        node = flow.node(node_id)
        if isinstance(node, QuestionNode):
            found.setdefault(question_id(node_id, node), node)
        pending.extend(reversed(list(_within_survey(node, survey))))
    return found


def survey_schemas(flow: FlowDefinition, survey: str) -> dict[str, QuestionSchema]:
    """The survey's questions in this version of the flow, as the descriptor lists them."""
    return {key: question_schema(flow, node) for key, node in survey_questions(flow, survey).items()}


def _within_survey(node: AnyNode, survey: str) -> Iterable[str]:
    """Where a node leads while still inside the survey; menus, ends and completions close it."""
    # `back` of consent and resume leaves the survey, so only their `next` is walked; another survey's
    # consent, a menu or a completing message would otherwise pull in questions that are not this one's.
    if isinstance(node, ConsentNode | ResumeNode):
        return (node.next,) if node.survey == survey else ()
    if isinstance(node, ProfileCheckNode):
        return (node.next, node.same)
    if isinstance(node, QuestionNode):
        return targets(node)
    if isinstance(node, MessageNode) and node.completes is None and node.ineligible_for is None:
        return targets(node)
    return ()


def packages(flows: Mapping[str, FlowDefinition], keys: FloipKeys) -> list[Package]:
    """Every survey of every flow as a package, by flow id then survey order."""
    return [
        _package(flows[flow_id], survey, keys)
        for flow_id in sorted(flows)
        for survey in survey_names(flows[flow_id])
    ]


def find_package(
    flows: Mapping[str, FlowDefinition], keys: FloipKeys, flow_id: str, survey: str | None
) -> Package:
    """The package of a flow's survey; without a name, the flow's only survey."""
    flow = flows.get(flow_id)
    if flow is None:
        known = ", ".join(sorted(flows)) or "none"
        raise SurveyNotFound(f"no flow {flow_id!r} (flows: {known})")
    names = survey_names(flow)
    if not names:
        raise SurveyNotFound(f"flow {flow_id!r} has no survey (no consent node)")
    if survey is None and len(names) == 1:
        survey = names[0]
    if survey is None:
        raise SurveyNotFound(f"flow {flow_id!r} has several surveys, choose one: {', '.join(names)}")
    if survey not in names:
        raise SurveyNotFound(f"flow {flow_id!r} has no survey {survey!r} (surveys: {', '.join(names)})")
    return _package(flow, survey, keys)


def _package(flow: FlowDefinition, survey: str, keys: FloipKeys) -> Package:
    return Package(keys.package_id(flow.id, survey), flow, survey, survey_questions(flow, survey))
