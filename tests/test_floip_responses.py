"""FLOIP Flow Results responses over the JSON:API: rows, pages, filters, keys, refusals and privacy."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from app.floip.responses import StoredAnswer, open_type
from app.flows.model import SKIPPED
from tests.floip_support import (
    BASE,
    T0,
    Partner,
    Stored,
    bearer,
    environment,
    export,
    partner,
    stored,
)
from tests.outbound import NEEDLES, Sessions

__all__ = ["environment", "partner", "stored"]  # fixtures shared from floip_support


async def test_rows_are_what_was_stored(partner: Partner, stored: Stored) -> None:
    """Order, ids, typed responses (a skip is null), metadata; contact ids are per package pseudonyms."""
    response = await partner.get(f"{BASE}/{stored.package}/responses")
    assert response.headers["content-type"] == "application/vnd.api+json"
    body = response.json()
    assert (body["data"]["type"], body["data"]["id"]) == ("responses", stored.package)
    assert body["links"]["next"] is None
    rows = body["data"]["attributes"]["responses"]
    contact, spoken_contact = rows[0][2], rows[-1][2]
    written = {"type": "text", "type_options": {}}
    audio = {"type": "audio", "type_options": {}}
    expected = [
        ("06:00", contact, stored.run, "agua", "si", {"channel": "voice", "language": "que"}),
        ("06:01", contact, stored.run, "hijos", 3, {"channel": "sms", "language": "spa"}),
        ("06:02", contact, stored.run, "confianza", None, {"channel": "voice", "language": None}),
        (
            "06:03",
            contact,
            stored.run,
            "comentario",
            "Me preocupa el agua",
            {"channel": "sms", "language": "spa", **written},
        ),
        # Spoken: a voice identifies a person, so the recording stays here and the response is null.
        (
            "06:04",
            spoken_contact,
            stored.spoken_run,
            "comentario",
            None,
            {"channel": "voice", "language": "que", **audio},
        ),
    ]
    assert rows == [
        [f"2026-11-25T{at}:00.000000+00:00", str(a.id), who, run.public_id, question, value, metadata]
        for a, (at, who, run, question, value, metadata) in zip(stored.answers, expected, strict=True)
    ]
    assert datetime.fromisoformat(rows[0][0]).utcoffset() == timedelta(0)
    assert contact not in {stored.caller.pseudonym, str(stored.caller.id), spoken_contact}
    assert re.fullmatch(r"[0-9a-f]{32}", contact)
    [[_, _, other_contact, *_]] = await partner.rows(f"{BASE}/{stored.other_package}/responses")
    assert other_contact != contact
    assert await partner.rows(f"{BASE}/{stored.package}/responses") == rows


@pytest.mark.parametrize(
    ("value", "channel", "expected"),
    [
        ("recording", "voice", "audio"),
        ("text", "sms", "text"),
        (SKIPPED, "voice", "audio"),
        (SKIPPED, "sms", "text"),
    ],
)
def test_an_open_row_says_what_the_caller_was_asked_for(value: str, channel: str, expected: str) -> None:
    """Spoken is audio, written is text; a skip takes its channel's type, as the spec wants one per row."""
    stored = StoredAnswer(1, T0, "comentario", value, channel, "es", None, "r" * 32)
    assert open_type(stored) == expected


async def test_an_under_18s_answers_never_reach_partners(
    partner: Partner, stored: Stored, environment: Path
) -> None:
    """A run closed as ineligible is in no row, no page, no export, and not in `created`."""
    descriptor = (await partner.get(f"{BASE}/{stored.package}")).json()["data"]["attributes"]
    assert descriptor["created"] == "2026-11-25T06:00:00.000000+00:00"
    rows = await partner.rows(f"{BASE}/{stored.package}/responses", **{"page[size]": "1000"})
    assert stored.minor_run.public_id not in {row[3] for row in rows}
    assert "menor_18" not in {row[5] for row in rows}
    assert len(rows) == len(stored.answers)
    _, exported = await export(environment)
    assert exported == rows


async def test_only_results_keys_are_let_in(partner: Partner, stored: Stored, sessions: Sessions) -> None:
    """401 without a key, 403 with a statistics key, 200 with a results key, on every route."""
    stats = await bearer(sessions, "stats:read")
    for url in (BASE, f"{BASE}/{stored.package}", f"{BASE}/{stored.package}/responses"):
        assert (await partner.client.get(url)).status_code == 401
        assert (await partner.client.get(url, headers=stats)).status_code == 403
        assert (await partner.get(url)).status_code == 200


async def test_pages_of_one_walk_every_row(partner: Partner, stored: Stored) -> None:
    """links.next leads through all rows once, then is null."""
    url: str | None = f"{BASE}/{stored.package}/responses?page%5Bsize%5D=1"
    seen: list[str] = []
    while url is not None and len(seen) <= len(stored.answers):
        body = (await partner.get(url)).json()
        seen += [row[1] for row in body["data"]["attributes"]["responses"]]
        url = body["links"]["next"]
    assert seen == [str(a.id) for a in stored.answers]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2026-11-25T06:00:00+00:00", None, ["hijos", "confianza", "comentario", "comentario"]),
        (None, "2026-11-25T01:01:00-05:00", ["agua", "hijos"]),
        ("2026-11-25T06:00:30Z", "2026-11-25T06:01:00Z", ["hijos"]),
    ],
)
async def test_timestamp_filters(
    partner: Partner, stored: Stored, start: str | None, end: str | None, expected: list[str]
) -> None:
    """Start is exclusive and end inclusive, as the spec says; offsets are honoured."""
    given = {"filter[start-timestamp]": start, "filter[end-timestamp]": end}
    params = {name: value for name, value in given.items() if value is not None}
    rows = await partner.rows(f"{BASE}/{stored.package}/responses", **params)
    assert [row[4] for row in rows] == expected


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"page[afterCursor]": "not-a-cursor"}, "invalid_cursor"),
        ({"page[afterCursor]": "A" * 27}, "invalid_cursor"),
        ({"page[size]": "0"}, "invalid_page_size"),
        ({"page[size]": "1001"}, "invalid_page_size"),
        ({"page[size]": "ten"}, "invalid_page_size"),
        ({"filter[start-timestamp]": "yesterday"}, "invalid_timestamp"),
        ({"filter[end-timestamp]": "2026-11-25T06:00:00"}, "invalid_timestamp"),
        ({"filter[end-timestamp]": "0001-01-01T00:00:00+14:00"}, "invalid_timestamp"),
        ({"page[beforeCursor]": "x"}, "unsupported_parameter"),
    ],
)
async def test_bad_parameters_are_400(
    partner: Partner, stored: Stored, params: dict[str, str], code: str
) -> None:
    """A stable error code, never a 500."""
    response = await partner.get(f"{BASE}/{stored.package}/responses", **params)
    assert (response.status_code, response.json()["error"]) == (400, code)


async def test_unknown_and_malformed_packages(partner: Partner) -> None:
    """404 for a UUID no survey has, 400 for something that is not a UUID."""
    for url in (f"{BASE}/{uuid.uuid4()}", f"{BASE}/{uuid.uuid4()}/responses"):
        response = await partner.get(url)
        assert (response.status_code, response.json()["error"]) == (404, "package_not_found")
    response = await partner.get(f"{BASE}/not-a-uuid/responses")
    assert (response.status_code, response.json()["error"]) == (400, "invalid_package_id")


async def test_no_phone_number_leaves(partner: Partner, stored: Stored) -> None:
    """Neither the number nor the caller's pseudonym is anywhere in the API output."""
    urls = [BASE, f"{BASE}/{stored.package}", *(f"{BASE}/{p}/responses" for p in stored.packages)]
    dump = "\n".join([(await partner.get(url)).text for url in urls])
    assert not [needle for needle in (*NEEDLES, stored.caller.pseudonym) if needle in dump]
