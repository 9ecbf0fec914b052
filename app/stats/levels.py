"""The values each dimension can take, known in advance from the flow, so a table's shape reveals nobody."""

from __future__ import annotations

from collections.abc import Iterable

from app.flows.model import ArticleNode, CaseTopicNode, FlowDefinition
from app.stats.dimensions import UNKNOWN, Dimension, Service

CHANNELS = ("voice", "sms")


def declared(flow: FlowDefinition, dimension: str) -> tuple[str, ...]:
    """The values the flow declares for a dimension, in the flow's order (``unknown`` last where it fits)."""
    fixed = {Dimension.CHANNEL: CHANNELS, Dimension.SERVICE: tuple(service.value for service in Service)}
    if dimension in fixed:
        return fixed[Dimension(dimension)]
    if dimension == Dimension.LANGUAGE:
        return (*flow.languages, UNKNOWN)
    if dimension in {Dimension.GENDER, Dimension.AGE_BAND, Dimension.COMMUNITY}:
        question = flow.questions().get(flow.profile_questions().get(dimension, ""))
        names = [choice.name for choice in flow.choices(question).values()] if question else []
        return (*names, UNKNOWN)
    if dimension == "message":
        return tuple(node_id for node_id, node in flow.nodes.items() if isinstance(node, ArticleNode))
    if dimension == "topic":
        return tuple(
            dict.fromkeys(
                choice.name
                for node in flow.nodes.values()
                if isinstance(node, CaseTopicNode)
                for choice in node.topics.values()
            )
        )
    return ()


def answers(flow: FlowDefinition, question_id: str) -> tuple[str, ...]:
    """The answers a survey question can get: its choices (or ``answered`` for open ones), then skipped."""
    question = flow.questions().get(question_id)
    if question is None:
        return ()
    if question.open is not None:
        names: list[str] = ["answered"]
    else:
        names = [choice.name for choice in flow.choices(question).values()]
    return (*names, "skipped")


def merged(first: Iterable[str], seen: Iterable[str]) -> tuple[str, ...]:
    """Declared values in order, then any value seen in the data but no longer declared, sorted."""
    ordered = list(dict.fromkeys(first))
    extra = sorted(set(seen) - set(ordered))
    return (*ordered, *extra)
