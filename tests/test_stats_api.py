"""The partner statistics API: keys, bad input, rate limit, same bytes, and figures from simulated callers."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI

from app.apikeys.service import ApiKeyService
from app.flows.model import FlowDefinition
from app.settings import Settings
from app.simulator import Call, TextPhone, TwilioSigner
from app.stats.errors import RateLimited
from app.stats.params import Rules, build_query, default_first
from app.stats.ratelimit import RateLimit
from app.stats.schemas import CasesReport, LibraryReport, ParticipationReport, SurveyReport
from app.throttle.service import ThrottleKeys
from tests.outbound import Clock, Sessions, sessions_for

STATS = "/api/v1/stats"
ENDPOINTS = ["/participation", "/library", "/survey/agua", "/cases"]
Params = dict[str, str | list[str]]


@pytest.fixture
async def maker(database_url: str) -> AsyncIterator[Sessions]:
    """Sessions on the test database, on an engine of their own."""
    async with sessions_for(database_url) as made:
        yield made


async def issue(maker: Sessions, *scopes: str) -> str:
    """A committed key with these scopes; returns the plaintext."""
    async with maker() as db:
        _, token = await ApiKeyService(db).create("Test agency", scopes)
        await db.commit()
        return token


@pytest.fixture
async def token(maker: Sessions) -> str:
    """A `stats:read` key."""
    return await issue(maker, "stats:read")


async def get(client: httpx.AsyncClient, path: str, token: str | None, params: Params | None = None) -> Any:
    """GET a statistics endpoint with the key (if any)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await client.get(STATS + path, params=params or {}, headers=headers)


def refused(response: httpx.Response, status: int, code: str) -> None:
    """The response is our JSON error with this status and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] == code
    assert isinstance(body["detail"], str)
    assert body["detail"]


# --- keys ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_a_missing_key_is_refused(client: httpx.AsyncClient, path: str) -> None:
    """No Authorization header: 401 with the Bearer challenge, even with bad parameters."""
    response = await get(client, path, None, {"group_by": "income"})
    refused(response, 401, "invalid_api_key")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_revoked_and_unknown_keys_are_refused(client: httpx.AsyncClient, maker: Sessions) -> None:
    """A revoked key and a made-up one both get 401."""
    token = await issue(maker, "stats:read")
    assert (await get(client, "/participation", token)).status_code == 200
    async with maker() as db:
        await ApiKeyService(db).revoke(token)
        await db.commit()
    refused(await get(client, "/participation", token), 401, "invalid_api_key")
    refused(await get(client, "/participation", "rimay_abcdefgh_" + "x" * 32), 401, "invalid_api_key")


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_a_key_without_the_stats_scope_is_refused(
    client: httpx.AsyncClient, maker: Sessions, path: str
) -> None:
    """A results-only key gets 403 insufficient_scope."""
    response = await get(client, path, await issue(maker, "results:read"))
    refused(response, 403, "insufficient_scope")
    assert 'scope="stats:read"' in response.headers["www-authenticate"]


# --- bad input ----------------------------------------------------------------------------------------

BAD: list[tuple[str, Params, int, str]] = [
    ("/participation", {"group_by": "income"}, 422, "unknown_dimension"),
    ("/library", {"group_by": ["gender", "Gender"]}, 422, "unknown_dimension"),
    ("/library", {"group_by": "gender,channel,language,community"}, 422, "too_many_dimensions"),
    ("/cases", {"group_by": ["gender", "channel", "language", "service"]}, 422, "too_many_dimensions"),
    ("/survey/agua", {"group_by": "gender,channel,language"}, 422, "too_many_dimensions"),
    ("/participation", {"group_by": "gender,channel,language,community"}, 422, "too_many_dimensions"),
    ("/participation", {"group_by": ["gender", "channel,gender"]}, 422, "duplicate_dimension"),
    ("/participation", {"group_by": "period,period"}, 422, "duplicate_dimension"),
    ("/participation", {"from": "2025-13-01"}, 422, "invalid_date"),
    ("/participation", {"from": "2025-02-30"}, 422, "invalid_date"),
    ("/library", {"from": "yesterday"}, 422, "invalid_date"),
    ("/cases", {"to": "2025-1-5"}, 422, "invalid_date"),
    ("/cases", {"to": "20250105"}, 422, "invalid_date"),
    ("/survey/agua", {"from": "2025-01-01T00:00:00"}, 422, "invalid_date"),
    ("/participation", {"from": ""}, 422, "invalid_date"),
    ("/participation", {"from": "1999-12-31", "to": "2000-01-05"}, 422, "invalid_date"),
    ("/participation", {"from": "3000-01-01", "to": "3000-01-05"}, 422, "invalid_date"),
    ("/participation", {"from": "2025-03-02", "to": "2025-03-01"}, 422, "range_reversed"),
    ("/library", {"from": "2024-01-01", "to": "2025-01-01"}, 422, "range_too_long"),
    ("/survey/agua", {"from": "2020-01-01", "to": "2025-01-01"}, 422, "range_too_long"),
    ("/participation", {"period": "year"}, 422, "invalid_period"),
    ("/participation", {"period": "day", "from": "2025-01-01", "to": "2025-03-04"}, 422, "too_many_periods"),
    ("/library", {"group_by": "period", "period": "day", "to": "2025-03-31"}, 422, "too_many_periods"),
    ("/library", {"group_by": "gender,age_band,community"}, 422, "too_many_cells"),
    (
        "/participation",
        {"group_by": "gender,age_band,community", "from": "2025-01-01", "to": "2025-06-30"},
        422,
        "too_many_cells",
    ),
    ("/participation", {"groupby": "gender"}, 422, "unknown_parameter"),
    ("/cases", {"from": ["2025-01-01", "2025-02-01"]}, 422, "unknown_parameter"),
    ("/survey/no_such_question", {}, 404, "unknown_question"),
    ("/survey/Agua%20OR%201=1", {}, 404, "unknown_question"),
    ("/survey/" + "a" * 65, {}, 404, "unknown_question"),
    ("/nothing_here", {}, 404, "not_found"),
]


@pytest.mark.parametrize(("path", "params", "status", "code"), BAD)
async def test_bad_input_gets_a_json_error_with_a_stable_code(
    client: httpx.AsyncClient, token: str, path: str, params: Params, status: int, code: str
) -> None:
    """Each refusal names what was wrong; nothing is a 500."""
    refused(await get(client, path, token, params), status, code)


async def test_other_methods_and_other_paths_keep_their_own_error_shapes(
    client: httpx.AsyncClient, token: str
) -> None:
    """405 under the stats prefix is ours; outside it FastAPI's `detail` body is unchanged."""
    response = await client.post(STATS + "/participation", headers={"Authorization": f"Bearer {token}"})
    refused(response, 405, "method_not_allowed")
    assert (await client.get("/no/such/page")).json() == {"detail": "Not Found"}


async def test_the_limits_on_dimensions_and_periods_are_exact(client: httpx.AsyncClient, token: str) -> None:
    """Three dimensions (plus period on participation), two on a survey, 62 periods: all answered."""
    three = "gender,channel,language"
    june: Params = {"from": "2025-06-01", "to": "2025-06-30"}
    assert (await get(client, "/library", token, {**june, "group_by": three})).status_code == 200
    assert (await get(client, "/cases", token, {**june, "group_by": f" {three}, "})).status_code == 200
    response = await get(client, "/participation", token, {**june, "group_by": f"period,{three}"})
    assert response.status_code == 200
    assert response.json()["group_by"] == ["period", "gender", "channel", "language"]
    by_week: Params = {**june, "group_by": ["gender", "period"], "period": "week"}
    response = await get(client, "/survey/agua", token, by_week)
    assert response.status_code == 200
    assert response.json()["group_by"] == ["gender", "period"]
    sixty_two: Params = {"from": "2025-01-01", "to": "2025-03-03", "period": "day"}
    assert (await get(client, "/participation", token, sixty_two)).status_code == 200
    by_day: Params = {"period": "day", "to": "2025-03-31"}
    assert (await get(client, "/cases", token, by_day)).status_code == 200, "not split by period: one table"


async def test_split_by_period_each_period_is_a_table_of_its_own(
    client: httpx.AsyncClient, token: str
) -> None:
    """By week over June: every week touching June has its own rows and its own grand total."""
    june: Params = {"from": "2025-06-01", "to": "2025-06-30", "group_by": "gender,period", "period": "week"}
    body = (await get(client, "/survey/agua", token, june)).json()
    weeks = ["2025-05-26", "2025-06-02", "2025-06-09", "2025-06-16", "2025-06-23", "2025-06-30"]
    assert sorted({row["group"]["period"] for row in body["rows"]}) == weeks
    totals = [row for row in body["rows"] if row["answer"] is None and row["group"]["gender"] is None]
    assert [row["group"]["period"] for row in totals] == weeks
    assert (body["from"], body["to"]) == ("2025-05-26", "2025-07-06"), "whole weeks are reported"


def test_default_range_is_twelve_months_and_never_over_the_maximum() -> None:
    """`from` defaults to the first of the month 11 months before `to`, cut to the maximum length."""
    assert default_first(date(2025, 1, 15), 366) == date(2024, 2, 1)
    assert default_first(date(2025, 12, 31), 366) == date(2025, 1, 1)
    assert default_first(date(2025, 1, 31), 100) == date(2024, 10, 24)
    query = build_query(
        None, None, [], None, Rules(3), today=date(2024, 12, 31), max_days=366, max_periods=62
    )
    assert (query.first, query.last, query.group_by, query.period.value) == (
        date(2024, 1, 1),
        date(2024, 12, 31),
        (),
        "month",
    )


async def test_a_range_of_exactly_the_maximum_is_answered(
    app: FastAPI, client: httpx.AsyncClient, token: str, settings: Settings
) -> None:
    """RIMAY_STATS_MAX_DAYS days pass; one more day is refused."""
    app.state.settings = settings.model_copy(update={"stats_max_days": 31})
    ok = await get(client, "/participation", token, {"from": "2025-01-01", "to": "2025-01-31"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["from"] == "2025-01-01"
    refused(
        await get(client, "/participation", token, {"from": "2025-01-01", "to": "2025-02-01"}),
        422,
        "range_too_long",
    )


# --- rate limit ---------------------------------------------------------------------------------------


async def test_a_flood_from_one_key_is_refused_while_another_key_works(
    app: FastAPI, client: httpx.AsyncClient, maker: Sessions, settings: Settings
) -> None:
    """Over RIMAY_STATS_REQUESTS_PER_MINUTE: 429 with Retry-After; other keys and missing keys unaffected."""
    app.state.settings = settings.model_copy(update={"stats_requests_per_minute": 3})
    flooding, other = await issue(maker, "stats:read"), await issue(maker, "stats:read")
    statuses = [
        (await get(client, "/participation", flooding, {"group_by": "x"})).status_code for _ in range(3)
    ]
    assert statuses == [422, 422, 422], "bad requests count too"
    for _ in range(3):
        response = await get(client, "/cases", flooding)
        refused(response, 429, "rate_limited")
        assert 1 <= int(response.headers["retry-after"]) <= 60
    assert (await get(client, "/cases", other)).status_code == 200
    refused(await get(client, "/cases", None), 401, "invalid_api_key")


async def test_the_window_slides_and_holds_across_workers(
    app: FastAPI, client: httpx.AsyncClient, maker: Sessions, settings: Settings, token: str
) -> None:
    """Requests counted by the app refuse another worker's check; Retry-After is when the oldest leaves."""
    app.state.settings = settings.model_copy(update={"stats_requests_per_minute": 2})
    assert (await get(client, "/library", token)).status_code == 200
    async with maker() as db:
        [key] = [k for k in await ApiKeyService(db).list() if token.startswith(f"rimay_{k.prefix}_")]
    clock = Clock()
    keys = ThrottleKeys(settings.master_secret)
    async with maker() as db:  # a second worker: its own engine and session
        await RateLimit(db, keys, 2, clock=clock).admit(key.id)
        await db.commit()
    clock.advance(seconds=20)
    async with maker() as db:
        with pytest.raises(RateLimited) as refusal:
            await RateLimit(db, keys, 2, clock=clock).admit(key.id)
    assert 39 <= refusal.value.retry_after <= 41, "the app's request, about 20 s old, leaves in about 40 s"
    for _ in range(2):  # both earlier requests have left the window: two more fit, a second apart
        clock.advance(seconds=41 if _ == 0 else 1)
        async with maker() as db:
            await RateLimit(db, keys, 2, clock=clock).admit(key.id)
            await db.commit()
    clock.advance(seconds=1)
    async with maker() as db:
        with pytest.raises(RateLimited) as again:
            await RateLimit(db, keys, 2, clock=clock).admit(key.id)
    assert again.value.retry_after == 58, "the older of the two is 2 s old"


# --- output -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_the_same_query_gives_the_same_bytes(client: httpx.AsyncClient, token: str, path: str) -> None:
    """No timestamp or random order: two answers to one query are byte-identical."""
    params: Params = {
        "from": "2025-01-01",
        "to": "2025-03-31",
        "group_by": "gender,period",
        "period": "month",
    }
    first, second = await get(client, path, token, params), await get(client, path, token, params)
    assert first.status_code == 200, first.text
    assert first.content == second.content
    body = first.json()
    assert (body["from"], body["to"], body["period"]) == ("2025-01-01", "2025-03-31", "month")
    assert "from_" not in body


# --- done when: simulated callers, then a partner pulls the figures ----------------------------------

GENDERS = {"1": "mujer", "2": "hombre", "3": "otro"}
WATER = {"5": "mucho", "4": "bastante"}
# (gender key, channel, answer to "agua"): 26 people; men by SMS (3) and "otro" (1) are small cells.
PEOPLE = (
    [("1", "voice", "5")] * 8
    + [("2", "voice", "4")] * 7
    + [("1", "sms", "5")] * 7
    + [("2", "sms", "4")] * 3
    + [("3", "voice", "5")]
)
Key = tuple[str | None, ...]


async def take_part(
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    number: str,
    person: tuple[str, str, str],
) -> None:
    """Language, survey, consent, profile (this gender, 30-44, Morococha), then answer "agua" and leave."""
    gender, channel, water = person
    keys = ["1", "2", "1", gender, "3", "2", water]
    if channel == "sms":
        phone = TextPhone(client=client, signer=signer, sender=number)
        for body in ["hola", *keys]:
            await phone.text(body)
        return
    script = iter(keys)
    call = Call(client=client, signer=signer, flows=flows, caller=number)
    async for _ in call.screens(lambda _: next(script, None)):
        pass


def truth(dimensions: list[str], people: list[dict[str, str]]) -> Counter[Key]:
    """True counts of every cell and margin (``None`` = all values) over these dimensions."""
    counts: Counter[Key] = Counter()
    for person in people:
        values = [person[name] for name in dimensions]
        for mask in range(2 ** len(values)):
            counts[tuple(None if mask >> i & 1 else v for i, v in enumerate(values))] += 1
    return counts


def assert_protected(cells: dict[Key, dict[str, Any]], expected: Counter[Key], k: int) -> None:
    """Published figures are true; small ones hidden; no line leaves exactly one hidden figure to subtract."""
    for key, figure in cells.items():
        if figure["suppressed"]:
            assert figure["value"] is None
        else:
            assert figure["value"] == expected[key], key
        if expected[key] < k:
            assert figure["suppressed"], f"{key} = {expected[key]} is below {k} and must be hidden"
    for total in cells:
        for axis, part in enumerate(total):
            if part is not None:
                continue
            members = [key for key in cells if key[axis] is not None and _same_but(key, total, axis)]
            hidden = [key for key in [total, *members] if cells[key]["suppressed"]]
            assert len(hidden) != 1, f"{hidden[0]} = total - published members, along {total}"


def _same_but(key: Key, total: Key, axis: int) -> bool:
    return all(a == b for i, (a, b) in enumerate(zip(key, total, strict=True)) if i != axis)


async def test_a_partner_pulls_protected_figures_after_simulated_calls_and_texts(
    client: httpx.AsyncClient,
    signer: TwilioSigner,
    flows: dict[str, FlowDefinition],
    settings: Settings,
    token: str,
) -> None:
    """Participation by gender x channel and the survey by gender: true where published, safe where not."""
    numbers = [f"+5198761{index:04d}" for index in range(len(PEOPLE))]
    for number, person in zip(numbers, PEOPLE, strict=True):
        await take_part(client, signer, flows, number, person)
    today = datetime.now(ZoneInfo(settings.stats_time_zone)).date()
    params: Params = {"from": str(today - timedelta(days=1)), "to": str(today), "group_by": "gender,channel"}
    participation = await get(client, "/participation", token, params)
    water = await get(client, "/survey/agua", token, {**params, "group_by": "gender"})
    assert participation.status_code == water.status_code == 200, participation.text + water.text
    people = [{"gender": GENDERS[g], "channel": c, "answer": WATER[w]} for g, c, w in PEOPLE]
    month = str(today.replace(day=1))
    rows = [row for row in participation.json()["rows"] if row["group"]["period"] == month]
    by_cell = {(row["group"]["gender"], row["group"]["channel"]): row for row in rows}
    expected = truth(["gender", "channel"], people)
    for metric, wanted in [("participants", expected), ("sessions", expected), ("new", expected)]:
        assert_protected({key: row[metric] for key, row in by_cell.items()}, wanted, settings.stats_min_cell)
    assert_protected({key: row["returning"] for key, row in by_cell.items()}, Counter(), 5)
    assert by_cell[("hombre", "sms")]["participants"] == {"value": None, "suppressed": True}
    assert by_cell[("otro", "voice")]["participants"] == {"value": None, "suppressed": True}
    published = [key for key, row in by_cell.items() if not row["participants"]["suppressed"]]
    # Which large figures go as complements is the disclosure module's choice; some are always published.
    assert published, "the partner gets figures"
    answers: dict[Key, dict[str, Any]] = {
        (row["answer"], row["group"]["gender"]): row["count"] for row in water.json()["rows"]
    }
    assert_protected(answers, truth(["answer", "gender"], people), settings.stats_min_cell)
    assert [key for key, figure in answers.items() if not figure["suppressed"]], "the partner gets figures"
    assert answers[("bastante", "otro")]["suppressed"]
    for body in (participation.text, water.text):
        assert not [n for n in numbers if n in body or n[1:] in body or n[3:] in body], "no phone number"


async def test_every_report_is_documented_with_a_valid_example(client: httpx.AsyncClient) -> None:
    """/docs shows each endpoint's typed report with an example that the model itself accepts."""
    schema = (await client.get("/openapi.json")).json()
    models = {
        "ParticipationReport": ParticipationReport,
        "LibraryReport": LibraryReport,
        "SurveyReport": SurveyReport,
        "CasesReport": CasesReport,
    }
    for path, model in zip(ENDPOINTS, models, strict=True):
        route = "/survey/{question_id}" if path.startswith("/survey") else path
        ok = schema["paths"][STATS + route]["get"]["responses"]["200"]["content"]["application/json"]
        assert ok["schema"]["$ref"].endswith("/" + model)
        [example] = schema["components"]["schemas"][model]["examples"]
        assert models[model].model_validate(example).model_dump(mode="json", by_alias=True) == example
        for status in ("401", "403", "422", "429"):
            assert status in schema["paths"][STATS + route]["get"]["responses"], (route, status)
