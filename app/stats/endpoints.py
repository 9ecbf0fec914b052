"""`/api/v1/stats/...`: disaggregated statistics, small cells suppressed, for keys with `stats:read`."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, FastAPI, Path, Response
from pydantic import BaseModel

from app.deps import FlowsDep, SessionDep, SettingsDep
from app.stats import reports as stats_reports
from app.stats import schemas
from app.stats.errors import NOT_FOUND, PREFIX, RESPONSES, QuestionNotFound, StatsRoute
from app.stats.params import QUESTION_ID, Rules, check_question, report_query
from app.stats.ratelimit import StatsPartner
from app.stats.reading import MAX_GROUP_BY
from app.stats.reading import Query as StatsQuery
from app.stats.reports import Reports
from app.stats.schemas import CasesReport, LibraryReport, ParticipationReport, SurveyReport

router = APIRouter(prefix=PREFIX, tags=["partner statistics"], route_class=StatsRoute, responses=RESPONSES)

PARTICIPATION_RULES: Final = Rules(MAX_GROUP_BY, frozenset({"period"}))
REPORT_RULES: Final = Rules(MAX_GROUP_BY)
SURVEY_RULES: Final = Rules(MAX_GROUP_BY - 1)  # the answer is the table's third dimension
DISCLOSURE = (
    " Counts below the minimum cell size come back as `null` with `suppressed: true`, and enough others "
    "with them that no hidden count can be worked out from the totals (a `null` group value is a total)."
)


EXAMPLES: Final = {
    "ParticipationReport": schemas.PARTICIPATION_EXAMPLE,
    "LibraryReport": schemas.LIBRARY_EXAMPLE,
    "SurveyReport": schemas.SURVEY_EXAMPLE,
    "CasesReport": schemas.CASES_EXAMPLE,
}


def document_examples(app: FastAPI) -> None:
    """Put the report examples back whole: FastAPI drops every null from its OpenAPI document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        for name, example in EXAMPLES.items():
            schema["components"]["schemas"][name]["examples"] = [example]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _reports(db: SessionDep, flows: FlowsDep, settings: SettingsDep) -> Reports:
    return Reports(db, flows[settings.default_flow], settings.stats_min_cell, settings.stats_time_zone)


ReportsDep = Annotated[Reports, Depends(_reports)]


def publish(report: BaseModel) -> Response:
    """The report as JSON: fields in a fixed order, `from` by its name, no timestamp, so the same bytes."""
    return Response(report.model_dump_json(by_alias=True), media_type="application/json")


@router.get(
    "/participation",
    response_model=ParticipationReport,
    summary="Participants, sessions, returning and new participants per period",
    description="Participants are distinct people within a period, so `period` is always part of the group."
    + DISCLOSURE,
)
async def participation(
    _: StatsPartner,
    query: Annotated[StatsQuery, Depends(report_query(PARTICIPATION_RULES))],
    reports: ReportsDep,
) -> Response:
    """Participants are distinct people within a period, so `period` is always part of the group."""
    return publish(await reports.participation(query))


@router.get(
    "/library",
    response_model=LibraryReport,
    summary="Plays and completions of each recorded message",
    description="Completions are voice plays heard to the end, judged from the call's timing." + DISCLOSURE,
)
async def library(
    _: StatsPartner,
    query: Annotated[StatsQuery, Depends(report_query(REPORT_RULES))],
    reports: ReportsDep,
) -> Response:
    """Completions are voice plays heard to the end, judged from the call's timing."""
    return publish(await reports.library(query))


@router.get(
    "/survey/{question_id}",
    response_model=SurveyReport,
    summary="The distribution of one survey question's answers",
    description="Skips are an answer of their own; `group_by` takes at most 2 dimensions, the answer being "
    "the third." + DISCLOSURE,
    responses=NOT_FOUND,
)
async def survey(
    _: StatsPartner,
    query: Annotated[StatsQuery, Depends(report_query(SURVEY_RULES))],
    reports: ReportsDep,
    question_id: Annotated[
        str, Path(description=f"The question's id in the flow ({QUESTION_ID.pattern}), e.g. agua")
    ],
) -> Response:
    """Skips are an answer of their own; `group_by` takes at most 2 dimensions, the answer being the third."""
    try:
        report = await reports.survey(check_question(question_id), query)
    except stats_reports.UnknownQuestion as error:
        raise QuestionNotFound("no survey question has this id") from error
    return publish(report)


@router.get(
    "/cases",
    response_model=CasesReport,
    summary="Question-line cases by topic, and time to answer",
    description="Cases opened, answered and closed per topic, and the median and 90th percentile hours to "
    "the first answer (bucket bounds)." + DISCLOSURE,
)
async def cases(
    _: StatsPartner,
    query: Annotated[StatsQuery, Depends(report_query(REPORT_RULES))],
    reports: ReportsDep,
) -> Response:
    """Cases opened, answered and closed per topic; median and 90th percentile hours to the first answer."""
    return publish(await reports.cases(query))
