"""Answers as Flow Results rows: timestamp, row, contact, session, question, response, metadata."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from app.floip.keys import ContactIds
from app.floip.surveys import QuestionSchema
from app.flows.model import SKIPPED

ISO_639_3: Final = {"es": "spa", "qu": "que", "qvw": "qvw", "quz": "quz", "en": "eng"}
"""The spec names languages in ISO 639-3; flows use the shortest BCP-47 tag."""

Row = list[Any]
Response = str | int | None
SPOKEN: Final = "recording"
WRITTEN: Final = "text"
"""The stored value of an open answer spoken by voice, and of one written by SMS."""


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


def response_value(value: str, kind: str | None, text: str | None = None) -> Response:
    """A number (numeric), the choice name (select_one), the written text (open); null otherwise."""
    # The spec has no "skipped" value: "skipped" is neither one of the choices (select_one) nor a
    # number (numeric), so a skip is a row whose response is null: the question was asked, not answered.
    if value == SKIPPED:
        return None
    if kind == "open":
        # A spoken answer stays with the case workers: a voice identifies a person, so partners get null.
        return text if value == WRITTEN else None
    if kind == "numeric" and value.isascii() and value.isdigit():
        return int(value)
    return value


def open_type(answer: StoredAnswer) -> str:
    """The spec's per-row type of an open answer: audio when spoken by voice, text when written by SMS."""
    # A skip has no content, so its channel says what the caller was asked for: a recording or a text.
    if answer.value in {SPOKEN, WRITTEN}:
        return "audio" if answer.value == SPOKEN else "text"
    return "audio" if answer.channel == "voice" else "text"


def to_row(answer: StoredAnswer, contacts: ContactIds, questions: Mapping[str, QuestionSchema]) -> Row:
    """The seven columns of one answer; metadata holds the channel, the language and an open row's type."""
    kind = questions[answer.question_id]["type"] if answer.question_id in questions else None
    metadata: dict[str, Any] = {
        "channel": answer.channel,
        "language": iso639_3(answer.language) if answer.language else None,
    }
    if kind == "open":
        # Required by the spec for every open row; neither text nor audio takes type options.
        metadata |= {"type": open_type(answer), "type_options": {}}
    return [
        timestamp(answer.created_at),
        str(answer.id),
        contacts.contact_id(answer.caller_id, answer.run_public_id),
        answer.run_public_id,
        answer.question_id,
        response_value(answer.value, kind, answer.text),
        metadata,
    ]
