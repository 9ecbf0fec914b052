"""Answers as Flow Results rows: timestamp, row, contact, session, question, response, metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from app.floip.keys import ContactIds
from app.flows.model import SKIPPED, QuestionNode

ISO_639_3: Final = {"es": "spa", "qu": "que", "qvw": "qvw", "quz": "quz", "en": "eng"}
"""The spec names languages in ISO 639-3; flows use the shortest BCP-47 tag."""

Row = list[Any]
Response = str | int | None


@dataclass(frozen=True)
class StoredAnswer:
    """One answer as read for export, with what its run adds (never the caller's number)."""

    id: int
    created_at: datetime
    question_id: str
    value: str
    channel: str
    language: str | None
    caller_id: int | None
    run_public_id: str
    text: str | None = None
    """A written open answer (phone numbers already masked)."""


def timestamp(moment: datetime) -> str:
    """RFC 3339 with an explicit ``+00:00`` (the spec forbids ``Z``) and microseconds."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def iso639_3(language: str) -> str:
    """The ISO 639-3 code of a flow language, or the tag itself when it is not known here."""
    primary = language.split("-", 1)[0]
    return ISO_639_3.get(primary, primary)


def response_value(value: str, question: QuestionNode | None, text: str | None = None) -> Response:
    """A number (numeric), the choice name (select_one), the written text (open); null otherwise."""
    # The spec has no "skipped" value: "skipped" is neither one of the choices (select_one) nor a
    # number (numeric), so a skip is a row whose response is null: the question was asked, not answered.
    if value == SKIPPED:
        return None
    if question is not None and question.open is not None:
        # A spoken answer stays with the case workers: a voice identifies a person, so partners get null.
        return text if value == "text" else None
    if question is not None and question.number is not None and value.isascii() and value.isdigit():
        return int(value)
    return value


def to_row(answer: StoredAnswer, contacts: ContactIds, questions: Mapping[str, QuestionNode]) -> Row:
    """The seven columns of one answer; metadata holds only the channel and the language."""
    metadata: dict[str, str | bool | None] = {
        "channel": answer.channel,
        "language": iso639_3(answer.language) if answer.language else None,
    }
    if answer.value == "recording":
        metadata["spoken"] = True
    return [
        timestamp(answer.created_at),
        str(answer.id),
        contacts.contact_id(answer.caller_id, answer.run_public_id),
        answer.run_public_id,
        answer.question_id,
        response_value(answer.value, questions.get(answer.question_id), answer.text),
        metadata,
    ]
