"""What the partner statistics API returns: typed, documented, the same bytes for the same data."""

from __future__ import annotations

from datetime import date

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

    rows: list[LibraryRow]


class SurveyRow(BaseModel):
    """How many gave one answer in one group."""

    answer: str | None = Field(description="The answer's name (skipped included); null is every answer")
    group: Group = Field(description=GROUP_DOC)
    count: Figure
    share: float | None = Field(description="count / all answers in the group, when both are published")


class SurveyReport(ReportHeader):
    """The distribution of one survey question's answers."""

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

    rows: list[CaseRow]
