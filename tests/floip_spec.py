"""Checks of the FLOIP Flow Results spec (1.0.0-rc1): a package descriptor and its response rows."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

FIELDS = ["timestamp", "row_id", "contact_id", "session_id", "question_id", "response", "response_metadata"]
"""The spec's seven columns of a response row, in order."""
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}:\d{2}")
"""A date-time with an explicit offset: the spec wants +00:00, not Z, for UTC."""
SEMVER = re.compile(r"\d+\.\d+\.\d+(-[0-9A-Za-z.]+)?")
QUESTION_TYPES = {"select_one", "select_many", "numeric", "open", "text", "image", "video", "audio"}
QUESTION_TYPES |= {"geo_point", "date", "time", "datetime"}
ROW_TYPES = QUESTION_TYPES - {"open"}
"""What an open question's row may say it is."""


def check_timestamp(value: Any) -> datetime:
    """An RFC 3339 date-time with an explicit numeric offset."""
    assert isinstance(value, str)
    assert RFC3339.fullmatch(value), value
    moment = datetime.fromisoformat(value)
    assert moment.tzinfo is not None
    return moment


def check_descriptor(descriptor: dict[str, Any]) -> None:
    """Every property the Flow Results spec requires, with the right type."""
    for key in ("profile", "flow_results_specification_version", "created", "modified", "id", "resources"):
        assert key in descriptor, key
    assert descriptor["profile"] == "flow-results-package"
    version = descriptor["flow_results_specification_version"]
    assert SEMVER.fullmatch(version)
    assert version == descriptor["flow-results-specification"] == "1.0.0-rc1"
    assert check_timestamp(descriptor["created"]) <= check_timestamp(descriptor["modified"])
    assert str(uuid.UUID(descriptor["id"])) == descriptor["id"]
    assert uuid.UUID(descriptor["id"]).version == 4
    assert re.fullmatch(r"[a-z0-9._-]+", descriptor["name"])
    assert isinstance(descriptor["title"], str)
    [resource] = descriptor["resources"]
    assert (resource["mediatype"], resource["encoding"]) == ("application/json", "utf-8")
    assert "data" not in resource  # the spec forbids inline data
    assert ("path" in resource) != ("api-data-url" in resource)
    assert isinstance(resource.get("path", resource.get("api-data-url")), str)
    check_schema(resource["schema"])


def check_schema(schema: dict[str, Any]) -> None:
    """The seven fields, the label language, and each question's type, label and options."""
    fields = schema["fields"]
    assert [field["name"] for field in fields] == FIELDS
    assert [field["type"] for field in fields] == ["datetime", *["string"] * 4, "any", "object"]
    assert all(isinstance(field["title"], str) and field["title"] for field in fields)
    assert re.fullmatch(r"[a-z]{3}", schema["language"])
    assert isinstance(schema["questions"], dict)
    assert schema["questions"]
    for question in schema["questions"].values():
        assert set(question) == {"type", "label", "type_options"}
        assert question["type"] in {"select_one", "numeric", "open"}  # all this service asks
        assert isinstance(question["label"], str)
        assert question["label"]
        options = question["type_options"]
        if question["type"] == "select_one":
            choices = options["choices"]
            assert choices
            assert all(isinstance(choice, str) and choice for choice in choices)
            assert len(set(choices)) == len(choices)
        elif question["type"] == "numeric":
            low, high = options["range"]
            assert isinstance(low, int | float)
            assert isinstance(high, int | float)
            assert low <= high
        else:
            assert options == {}  # "None used at the schema level"


def check_rows(descriptor: dict[str, Any], rows: Any) -> None:
    """Rows as the spec's data resource wants them, each one described by the descriptor."""
    questions = descriptor["resources"][0]["schema"]["questions"]
    assert isinstance(rows, list)
    row_ids = [str(row[1]) for row in rows]
    assert len(set(row_ids)) == len(row_ids)  # unique, compared as strings
    for row in rows:
        assert isinstance(row, list)
        assert len(row) == len(FIELDS)
        when, row_id, contact_id, session_id, question_id, response, metadata = row
        check_timestamp(when)
        for identifier in (row_id, contact_id):
            assert isinstance(identifier, str | int)
            assert not isinstance(identifier, bool)
            assert str(identifier)
        assert isinstance(session_id, str)
        assert session_id
        assert question_id in questions
        assert isinstance(metadata, dict)
        check_response(questions[question_id], response, metadata)


def check_response(question: dict[str, Any], response: Any, metadata: dict[str, Any]) -> None:
    """A response of the question's type; null only where the caller skipped (or spoke, for an open one)."""
    options = question["type_options"]
    if question["type"] == "select_one":
        assert response is None or response in options["choices"]
    elif question["type"] == "numeric":
        if response is not None:
            assert isinstance(response, int | float)
            assert not isinstance(response, bool)
            low, high = options["range"]
            assert low <= response <= high
    else:
        assert metadata["type"] in ROW_TYPES
        assert metadata["type"] in {"text", "audio"}  # what a call and a text message can carry
        assert isinstance(metadata["type_options"], dict)
        assert response is None or isinstance(response, str)
