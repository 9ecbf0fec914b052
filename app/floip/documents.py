"""The JSON:API documents of the Flow Results API, for the OpenAPI schema (partners and schemathesis)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# Only documentation: the endpoints build their bodies themselves, and the schemathesis tests check that
# every body they serve matches these models, so a drift between the two fails a test.


class Strict(BaseModel):
    """A document part whose keys are all listed: an unlisted key in a served body is a schema violation."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Links(Strict):
    """Pagination links; this server never offers ``previous``."""

    self: str
    next: str | None
    previous: None


class SelfLink(Strict):
    """A document's own URL."""

    self: str


class Summary(Strict):
    """What the package list shows of each package."""

    name: str
    title: str
    created: str
    modified: str


class PackageItem(Strict):
    """One package in the list."""

    type: Literal["packages"]
    id: str
    attributes: Summary
    links: SelfLink


class PackageList(Strict):
    """`GET /packages`: every survey of every flow."""

    data: list[PackageItem]
    links: Links


class Column(Strict):
    """One of the seven columns of a row."""

    name: str
    title: str
    type: str


class Question(Strict):
    """A question as published: its type, its label and its type options."""

    type: Literal["select_one", "numeric", "open"]
    label: str
    type_options: dict[str, Any]


class Schema(Strict):
    """The columns, the label language (ISO 639-3) and every question the package ever had."""

    language: str
    fields: list[Column]
    questions: dict[str, Question]


class Resource(Strict):
    """The package's one resource: its rows are paginated at ``api-data-url``."""

    name: str
    api_data_url: str = Field(alias="api-data-url")
    access_method: Literal["api"]
    mediatype: str
    encoding: str
    schema_: Schema = Field(alias="schema")


class Descriptor(Summary):
    """The Flow Results package descriptor."""

    profile: Literal["flow-results-package"]
    flow_results_specification_version: str
    flow_results_specification: str = Field(alias="flow-results-specification")
    id: str
    resources: list[Resource] = Field(min_length=1, max_length=1)


class Related(Strict):
    """A link to a related document."""

    related: str


class RelatedLinks(Strict):
    """A relationship: only its link."""

    links: Related


class ResponsesRelationship(Strict):
    """A package's rows."""

    responses: RelatedLinks


class DescriptorRelationship(Strict):
    """The descriptor of a page's rows."""

    descriptor: RelatedLinks


class PackageData(Strict):
    """The package resource object."""

    type: Literal["packages"]
    id: str
    attributes: Descriptor
    relationships: ResponsesRelationship
    links: SelfLink


class PackageDocument(Strict):
    """`GET /packages/{id}`: the descriptor."""

    data: PackageData
    links: SelfLink


class RowMetadata(Strict):
    """A row's channel and language; an open row also says whether it is text or audio."""

    channel: Literal["voice", "sms"]
    language: str | None
    type: Literal["text", "audio"] | None = None
    type_options: dict[str, Any] | None = None


Row = tuple[str, str, str, str, str, str | int | None, RowMetadata]
"""timestamp, row id, contact id, session id, question id, response, response metadata."""


class Rows(Strict):
    """One page of rows."""

    responses: list[Row]


class ResponsesData(Strict):
    """The responses resource object."""

    type: Literal["responses"]
    id: str
    attributes: Rows
    relationships: DescriptorRelationship


class ResponsesDocument(Strict):
    """`GET /packages/{id}/responses`: a page of rows and the link to the next one."""

    data: ResponsesData
    links: Links


class ErrorObject(Strict):
    """One JSON:API error object."""

    status: str
    code: str
    detail: str


class ErrorDocument(Strict):
    """A refused request: ``error`` and ``detail`` as on the other partner endpoints, and JSON:API's."""

    error: str
    detail: str
    errors: list[ErrorObject] = Field(min_length=1, max_length=1)
