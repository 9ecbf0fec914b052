"""The Flow Results package descriptor: a Data Package with one resource and its questions."""

from __future__ import annotations

from typing import Any, Final

from app.floip.catalogue import Version
from app.floip.responses import iso639_3, timestamp
from app.floip.surveys import Package

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


def summary(package: Package, version: Version) -> dict[str, Any]:
    """What the package list shows of each package (the spec leaves the choice to implementations)."""
    return {
        "name": package.name,
        "title": package.title,
        "created": timestamp(version.created),
        "modified": timestamp(version.modified),
    }


def descriptor(package: Package, version: Version, resource: dict[str, Any]) -> dict[str, Any]:
    """The whole descriptor, with ``resource`` saying where the rows are (a file or the API)."""
    return {
        "profile": PROFILE,
        # The descriptor table of the spec names this key; its API examples name the second one.
        "flow_results_specification_version": SPEC_VERSION,
        "flow-results-specification": SPEC_VERSION,
        "id": package.id,
        **summary(package, version),
        "resources": [{**resource, "schema": schema(package, version)}],
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


def schema(package: Package, version: Version) -> dict[str, Any]:
    """Fields common to every package, the label language, and every question the package ever had."""
    return {
        "language": iso639_3(package.flow.languages[0]),
        "fields": [{"name": name, "title": title, "type": kind} for name, title, kind in FIELDS],
        "questions": version.questions,
    }
