"""The Flow Results package descriptor: a Data Package with one resource and its questions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from app.floip.responses import iso639_3, timestamp
from app.floip.surveys import Package
from app.flows.model import FlowDefinition, QuestionNode

PROFILE: Final = "flow-results-package"
SPEC_VERSION: Final = "1.0.0-rc1"
MEDIATYPE: Final = "application/json"
FIELDS: Final = (
    ("timestamp", "Timestamp", "datetime"),
    ("row_id", "Row ID", "string"),
    ("contact_id", "Contact ID", "string"),
    ("session_id", "Session ID", "string"),
    ("question_id", "Question ID", "string"),
    ("response", "Response", "any"),
    ("response_metadata", "Response Metadata", "object"),
)


@dataclass(frozen=True)
class Span:
    """When a package's answers began and last changed (None: no answer yet)."""

    first: datetime | None
    last: datetime | None

    def created(self, now: datetime) -> datetime:
        """The first answer, or now for a package without answers."""
        return self.first or now

    def modified(self, now: datetime) -> datetime:
        """The latest answer; the same as created while there is none."""
        return self.last or self.created(now)


def summary(package: Package, span: Span, now: datetime) -> dict[str, Any]:
    """What the package list shows of each package (the spec leaves the choice to implementations)."""
    return {
        "name": package.name,
        "title": package.title,
        "created": timestamp(span.created(now)),
        "modified": timestamp(span.modified(now)),
    }


def descriptor(package: Package, span: Span, now: datetime, resource: dict[str, Any]) -> dict[str, Any]:
    """The whole descriptor, with ``resource`` saying where the rows are (a file or the API)."""
    return {
        "profile": PROFILE,
        # The descriptor table of the spec names this key; its API examples name the second one.
        "flow_results_specification_version": SPEC_VERSION,
        "flow-results-specification": SPEC_VERSION,
        "id": package.id,
        **summary(package, span, now),
        "resources": [{**resource, "schema": schema(package)}],
    }


def file_resource(package: Package) -> dict[str, Any]:
    """The resource of a file export: the rows are in a file next to the descriptor."""
    return {
        "name": f"{package.name}-responses",
        "path": data_file_name(package),
        "access_method": "file",
        "mediatype": MEDIATYPE,
        "encoding": "utf-8",
    }


def api_resource(package: Package, responses_url: str) -> dict[str, Any]:
    """The resource served by the API: the rows are paginated at ``responses_url``."""
    return {
        "name": f"{package.name}-responses",
        "api-data-url": responses_url,
        "access_method": "api",
        "mediatype": MEDIATYPE,
        "encoding": "utf-8",
    }


def data_file_name(package: Package) -> str:
    """The name of the exported rows file."""
    return f"{package.name}-responses.json"


def schema(package: Package) -> dict[str, Any]:
    """Fields common to every package, the label language, and this survey's questions."""
    flow = package.flow
    return {
        "language": iso639_3(flow.languages[0]),
        "fields": [{"name": name, "title": title, "type": kind} for name, title, kind in FIELDS],
        "questions": {
            question_id: question_schema(flow, node) for question_id, node in package.questions.items()
        },
    }


def question_schema(flow: FlowDefinition, node: QuestionNode) -> dict[str, Any]:
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
