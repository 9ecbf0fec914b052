"""What the partner statistics API returns: typed, documented, the same bytes for the same data."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Group = dict[str, str | None]


class Figure(BaseModel):
    """One published count: ``value`` is ``null`` when ``suppressed`` (too small, or hiding one that is)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"value": 12, "suppressed": False}]})

    value: int | None = Field(ge=0)
    suppressed: bool


class ReportHeader(BaseModel):
    """What a report covers."""

    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from", description="First local day covered (widened to a whole period)")
    to: date = Field(description="Last local day covered")
    period: str = Field(description="Length of a period: day, week (from Monday) or month")
    group_by: list[str] = Field(description="The dimensions figures are split by")
    min_cell: int = Field(description="Counts below this are suppressed")
    time_zone: str = Field(description="Days, weeks and months are counted in this IANA time zone")
    subject: str | None = Field(default=None, description="The survey question, for survey reports")


def _figure(value: int | None) -> dict[str, Any]:
    return {"value": value, "suppressed": value is None}


HEADER_EXAMPLE: dict[str, Any] = {
    "from": "2025-06-01",
    "to": "2025-06-30",
    "period": "month",
    "min_cell": 5,
    "time_zone": "America/Lima",
    "subject": None,
}
PARTICIPATION_EXAMPLE: dict[str, Any] = {
    **HEADER_EXAMPLE,
    "group_by": ["period", "gender"],
    "rows": [
        {
            "group": {"period": "2025-06-01", "gender": gender},
            "participants": _figure(people),
            "sessions": _figure(sessions),
            "returning": _figure(back),
            "new": _figure(new),
            "returning_share": share,
        }
        for gender, people, sessions, back, new, share in (
            ("mujer", 41, 63, 14, 22, 0.3415),
            ("hombre", 58, 80, 19, 30, 0.3276),
            ("otro", None, None, None, None, None),
            ("unknown", None, None, None, None, None),
            (None, 104, 151, 35, 55, 0.3365),
        )
    ],
}
LIBRARY_EXAMPLE: dict[str, Any] = {
    **HEADER_EXAMPLE,
    "group_by": ["channel"],
    "rows": [
        {
            "message": "eia_1",
            "group": {"channel": channel},
            "plays": _figure(plays),
            "voice_plays": _figure(voice),
            "completions": _figure(done),
            "completion_rate": rate,
        }
        for channel, plays, voice, done, rate in (
            ("voice", 37, 37, 25, 0.6757),
            ("sms", 12, None, None, None),
            (None, 49, 37, 25, 0.6757),
        )
    ],
}
SURVEY_EXAMPLE: dict[str, Any] = {
    **HEADER_EXAMPLE,
    "subject": "agua",
    "group_by": ["gender"],
    "rows": [
        {"answer": answer, "group": {"gender": gender}, "count": _figure(count), "share": share}
        for answer, gender, count, share in (
            ("mucho", "mujer", 18, 0.5),
            ("poco", "mujer", 13, 0.3611),
            ("skipped", "mujer", None, None),
            (None, "mujer", 36, None),
        )
    ],
}
CASES_EXAMPLE: dict[str, Any] = {
    **HEADER_EXAMPLE,
    "group_by": [],
    "rows": [
        {
            "topic": "agua_ambiente",
            "group": {},
            "opened": _figure(23),
            "answered": _figure(19),
            "closed": _figure(15),
            "first_answer_hours_median": 24.0,
            "first_answer_hours_p90": 96.0,
        }
    ],
}


GROUP_DOC = "The group of a row: a value per dimension; null means all values (a total)"


class ParticipationRow(BaseModel):
    """Participation in one period and group."""

    group: Group = Field(description=GROUP_DOC)
    participants: Figure = Field(description="Distinct callers (pseudonyms) who took part in the period")
    sessions: Figure = Field(description="Calls and SMS conversations")
    returning: Figure = Field(description="Participants who took part on two or more different days")
    new: Figure = Field(description="Participants whose first contact ever was in this period")
    returning_share: float | None = Field(description="returning / participants, when both are published")


class ParticipationReport(ReportHeader):
    """Who takes part, per period."""

    model_config = ConfigDict(populate_by_name=True, json_schema_extra={"examples": [PARTICIPATION_EXAMPLE]})

    rows: list[ParticipationRow]


class LibraryRow(BaseModel):
    """Plays of one recorded message in one group."""

    message: str = Field(description="The message's id in the flow")
    group: Group = Field(description=GROUP_DOC)
    plays: Figure = Field(description="Times it was played (voice) or sent (SMS)")
    voice_plays: Figure = Field(description="Times it was played in a call")
    completions: Figure = Field(description="Voice plays heard to the end, judged from the call's timing")
    completion_rate: float | None = Field(description="completions / voice_plays, when both are published")


class LibraryReport(ReportHeader):
    """Which messages are heard, and heard to the end."""

    model_config = ConfigDict(populate_by_name=True, json_schema_extra={"examples": [LIBRARY_EXAMPLE]})

    rows: list[LibraryRow]


class SurveyRow(BaseModel):
    """How many gave one answer in one group."""

    answer: str | None = Field(description="The answer's name (skipped included); null is every answer")
    group: Group = Field(description=GROUP_DOC)
    count: Figure
    share: float | None = Field(description="count / all answers in the group, when both are published")


class SurveyReport(ReportHeader):
    """The distribution of one survey question's answers."""

    model_config = ConfigDict(populate_by_name=True, json_schema_extra={"examples": [SURVEY_EXAMPLE]})

    rows: list[SurveyRow]


class CaseRow(BaseModel):
    """The question line's cases about one topic, in one group."""

    topic: str
    group: Group = Field(description=GROUP_DOC)
    opened: Figure
    answered: Figure = Field(description="Cases that got their first answer in the range")
    closed: Figure
    first_answer_hours_median: float | None = Field(
        description="Half of first answers came within this many hours (a bucket bound); null if unpublished"
    )
    first_answer_hours_p90: float | None = Field(description="Nine in ten first answers came within this")


class CasesReport(ReportHeader):
    """How the question line is used and how fast it answers."""

    model_config = ConfigDict(populate_by_name=True, json_schema_extra={"examples": [CASES_EXAMPLE]})

    rows: list[CaseRow]
