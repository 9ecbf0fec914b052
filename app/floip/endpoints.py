"""`/api/v1/flow-results/...`: the Flow Results API (JSON:API), for partners with a results key."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from app.apikeys.deps import API_KEY_RESPONSES, ApiKeyRefused, ResultsReader
from app.deps import FlowsDep, SessionDep, SettingsDep
from app.errors import RimayError
from app.floip.descriptor import api_resource, descriptor, summary
from app.floip.documents import ErrorDocument, PackageDocument, PackageList, ResponsesDocument
from app.floip.errors import UnsupportedParameter
from app.floip.keys import CURSOR_PATTERN, FloipKeys
from app.floip.query import MAX_PAGE_SIZE, PAGE_SIZE_PATTERN, parse_query
from app.floip.service import FloipService
from app.floip.surveys import Package
from app.webhooks.routes import GuardedRoute

log = logging.getLogger(__name__)
PREFIX: Final = "/api/v1/flow-results"
JSON_API: Final = "application/vnd.api+json"


class JsonApiResponse(JSONResponse):
    """JSON with the JSON:API media type the Flow Results API requires."""

    media_type = JSON_API


def error_response(
    status: int, code: str, detail: str, headers: Mapping[str, str] | None = None
) -> JsonApiResponse:
    """``{"error", "detail"}`` as the other partner endpoints answer, plus JSON:API's ``errors``."""
    errors = [{"status": str(status), "code": code, "detail": detail}]
    body = {"error": code, "detail": detail, "errors": errors}
    return JsonApiResponse(body, status_code=status, headers=headers)


class FloipRoute(GuardedRoute):
    """Bad input gets a 400 with a stable code, never a 500; every error is a JSON:API error document."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        guarded = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await guarded(request)
            except ApiKeyRefused as refusal:
                # The app's handler answers application/json; JSON:API wants its own media type here too.
                return error_response(refusal.status_code, refusal.code, refusal.detail, refusal.headers)

        return handler

    def malformed(self, request: Request) -> Response:
        """Parameters that do not validate."""
        return error_response(400, "invalid_request", "the request parameters are malformed")

    def refused(self, request: Request, error: RimayError) -> Response:
        """A typed refusal, with its stable code."""
        return error_response(error.status_code, error.code, str(error))

    def failed(self, request: Request) -> Response:
        """An unexpected failure, already logged."""
        return error_response(503, "temporarily_unavailable", "try again later")


ERRORS: dict[int | str, dict[str, Any]] = {
    **{status: {**API_KEY_RESPONSES[status], "model": ErrorDocument} for status in (401, 403)},
    400: {"model": ErrorDocument, "description": "A malformed package id, cursor, page size or timestamp"},
    404: {"model": ErrorDocument, "description": "No package with this id"},
    503: {"model": ErrorDocument, "description": "A failure on our side: try again later"},
}
router = APIRouter(prefix=PREFIX, tags=["flow results (FLOIP)"], route_class=FloipRoute, responses=ERRORS)


def _service(db: SessionDep, flows: FlowsDep, settings: SettingsDep) -> FloipService:
    return FloipService(db, flows, FloipKeys(settings.master_secret))


Floip = Annotated[FloipService, Depends(_service)]
# The schema states each parameter's form, so partners (and schemathesis) know it; the values are still
# checked by `parse_query` and `FloipService.package`, which answer a bad one with its own error code.
PackageId = Annotated[str, Path(json_schema_extra={"format": "uuid"})]
TIMESTAMP = {"format": "date-time", "examples": ["2026-11-25T06:00:00+00:00"]}
SIZE = {"pattern": f"^{PAGE_SIZE_PATTERN.pattern}$", "description": f"1 to {MAX_PAGE_SIZE} (default 100)"}
CURSOR = {"pattern": f"^{CURSOR_PATTERN.pattern}$", "description": "From a previous page's links.next"}


def _package_url(base: str, package: Package) -> str:
    return f"{base}{PREFIX}/packages/{package.id}"


@router.get(
    "/packages",
    response_class=JsonApiResponse,
    summary="List the Flow Results packages",
    responses={200: {"model": PackageList}},
)
async def list_packages(
    _: ResultsReader, service: Floip, db: SessionDep, settings: SettingsDep
) -> JsonApiResponse:
    """One package per survey, with its name, title, created and modified."""
    base = settings.public_base_url
    data = [
        {
            "type": "packages",
            "id": package.id,
            "attributes": summary(package, await service.version(package)),
            "links": {"self": _package_url(base, package)},
        }
        for package in service.packages()
    ]
    await db.commit()  # what was published now stays published: its questions are never removed
    links = {"self": f"{base}{PREFIX}/packages", "next": None, "previous": None}
    return JsonApiResponse({"data": data, "links": links})


@router.get(
    "/packages/{package_id}",
    response_class=JsonApiResponse,
    summary="A package's descriptor",
    responses={200: {"model": PackageDocument}},
)
async def get_package(
    package_id: PackageId, _: ResultsReader, service: Floip, db: SessionDep, settings: SettingsDep
) -> JsonApiResponse:
    """The descriptor, its resource pointing at the paginated responses."""
    package = service.package(package_id)
    version = await service.version(package)
    await db.commit()
    url = _package_url(settings.public_base_url, package)
    resource = api_resource(package, f"{url}/responses")
    data = {
        "type": "packages",
        "id": package.id,
        "attributes": descriptor(package, version, resource),
        "relationships": {"responses": {"links": {"related": f"{url}/responses"}}},
        "links": {"self": url},
    }
    return JsonApiResponse({"data": data, "links": {"self": url}})


@router.get(
    "/packages/{package_id}/responses",
    response_class=JsonApiResponse,
    summary="A package's rows",
    responses={200: {"model": ResponsesDocument}},
)
async def get_responses(
    package_id: PackageId,
    _: ResultsReader,
    service: Floip,
    db: SessionDep,
    settings: SettingsDep,
    start: Annotated[str | None, Query(alias="filter[start-timestamp]", json_schema_extra=TIMESTAMP)] = None,
    end: Annotated[str | None, Query(alias="filter[end-timestamp]", json_schema_extra=TIMESTAMP)] = None,
    size: Annotated[str | None, Query(alias="page[size]", json_schema_extra=SIZE)] = None,
    cursor: Annotated[str | None, Query(alias="page[afterCursor]", json_schema_extra=CURSOR)] = None,
    before: Annotated[str | None, Query(alias="page[beforeCursor]", include_in_schema=False)] = None,
) -> JsonApiResponse:
    """Rows by row id: after `filter[start-timestamp]` (exclusive), up to `filter[end-timestamp]`."""
    package = service.package(package_id)
    if before is not None:
        raise UnsupportedParameter("page[beforeCursor] is not supported: follow links.next from the start")
    query = parse_query(service.keys, package.id, start=start, end=end, size=size, cursor=cursor)
    version = await service.version(package)
    await db.commit()
    page = await service.page(package, version, query)
    url = _package_url(settings.public_base_url, package)
    links = {
        "self": f"{url}/responses?{urlencode(query.params(query.cursor))}",
        "next": f"{url}/responses?{urlencode(query.params(page.next_cursor))}" if page.next_cursor else None,
        "previous": None,
    }
    data = {
        "type": "responses",
        "id": package.id,
        "attributes": {"responses": page.rows},
        "relationships": {"descriptor": {"links": {"related": url}}},
    }
    return JsonApiResponse({"data": data, "links": links})
