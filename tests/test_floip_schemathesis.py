"""Schemathesis against the Flow Results API: generated requests never get a 5xx or a body off-schema."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis.strategies import SearchStrategy
from schemathesis import Case, GenerationMode
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from app.apikeys.service import ApiKeyService
from app.callers.models import Caller
from app.floip.keys import FloipKeys
from app.floip.surveys import Package, packages
from app.flows.loader import load_flows
from app.flows.model import SKIPPED, QuestionNode
from app.privacy.pseudonym import Pseudonymizer
from app.settings import Settings
from app.survey.models import Answer, SurveyRun
from tests.outbound import NUMBER, Sessions, sessions_for
from tests.schemathesis_support import bearer, run, served_schema

PACKAGES = "/api/v1/flow-results/packages"
PACKAGE = f"{PACKAGES}/{{package_id}}"
RESPONSES = f"{PACKAGE}/responses"
T0 = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
Operation = APIOperation[Any, Any, Any, Any]
Strategy = SearchStrategy[Case[Any]]
StrategyOf = Callable[[Operation, str], Strategy]
"""Builds the strategy of an operation, given the package id of a shipped survey with answers."""
Excluded = Sequence[Any]


def value_of(package: Package, node: QuestionNode) -> tuple[str, str | None]:
    """A stored value (and written text) of the question's kind: a choice, a number or a written answer."""
    if node.open is not None:
        return "text", "Una respuesta escrita"
    if node.number is not None:
        return str(node.number.min), None
    return next(iter(package.flow.choices(node).values())).name, None


def answers_of(survey_run: SurveyRun, package: Package, skipped: str) -> list[Answer]:
    """The run's answer to every question of the package, ``skipped`` skipped."""
    answers = []
    for minute, (question, node) in enumerate(package.questions.items()):
        value, text = value_of(package, node)
        kind = "open" if node.open else "numeric" if node.number else "select_one"
        answers.append(
            Answer(
                run_id=survey_run.id,
                flow_id=package.flow.id,
                question_id=question,
                value=SKIPPED if question == skipped else value,
                kind=kind,
                text=None if question == skipped else text,
                channel="sms" if text else "voice",
                language="qu" if survey_run.caller_id else "es",
                created_at=T0 + timedelta(minutes=minute),
            )
        )
    return answers


async def store_answers(settings: Settings) -> list[Package]:
    """Two runs of each shipped survey (a known caller's, an unknown one's), each skipping one question."""
    found = packages(load_flows(settings.flows_dir), FloipKeys(settings.master_secret))
    async with sessions_for(settings.sqlalchemy_url) as maker, maker() as db:
        caller = Caller(pseudonym=Pseudonymizer(settings.master_secret).pseudonym(NUMBER))
        db.add(caller)
        await db.flush()
        for number, package in enumerate(found):
            questions = list(package.questions)
            for owner, skipped in ((caller.id, questions[0]), (None, questions[-1])):
                survey_run = SurveyRun(
                    public_id=f"{number:02d}{owner or 0:02d}" + "a" * 28,
                    caller_id=owner,
                    flow_id=package.flow.id,
                    survey=package.survey,
                )
                db.add(survey_run)
                await db.flush()
                db.add_all(answers_of(survey_run, package, skipped))
        await db.commit()
    return found


def responses_of(
    settings: Settings, path: str, strategy_of: StrategyOf, excluded: Excluded = ()
) -> Counter[int]:
    """Statuses of generated GET requests to ``path`` after the shipped surveys got answers."""
    stored = asyncio.run(store_answers(settings))
    assert stored, "the shipped flows hold at least one survey"
    with served_schema(settings) as schema:
        return run(strategy_of(schema[path]["GET"], stored[0].id), excluded)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("path", "package", "query", "answered"),
    [
        (PACKAGES, False, {}, True),
        (PACKAGE, True, {}, True),
        (PACKAGE, False, {}, False),  # generated UUIDs: no such package, a 404 document
        (RESPONSES, True, {}, True),
        (RESPONSES, True, {"page[size]": "2"}, True),  # pages with a next link
        (RESPONSES, False, {}, False),
    ],
)
def test_generated_requests_get_no_5xx_and_match_the_schema(
    settings: Settings, path: str, package: bool, query: dict[str, str], answered: bool
) -> None:
    """Valid key, stored answers, generated parameters: 200 documents or documented JSON:API errors."""
    headers = bearer(settings.sqlalchemy_url, "results:read")

    def strategy_of(operation: Operation, package_id: str) -> Strategy:
        fixed = {"package_id": package_id} if package else {}
        return operation.as_strategy(headers=headers, path_parameters=fixed, query=query)

    # A cursor is signed and a package must exist, which no schema can say: a schema-valid request may
    # rightly get a documented 400 or 404. Every other default check applies, the bodies' schemas too.
    statuses = responses_of(settings, path, strategy_of, excluded=[positive_data_acceptance])
    assert statuses[500] == statuses[503] == 0
    if answered:
        assert statuses[200], f"some generated requests are answered, so documents are checked: {statuses}"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("path", [PACKAGE, RESPONSES])
def test_generated_malformed_parameters_get_a_400_document(settings: Settings, path: str) -> None:
    """Parameters off the schema (not a UUID, not a page size, not a date-time, not a cursor) are refused."""
    headers = bearer(settings.sqlalchemy_url, "results:read")

    def strategy_of(operation: Operation, package_id: str) -> Strategy:
        return operation.as_strategy(GenerationMode.NEGATIVE, headers=headers)

    statuses = responses_of(settings, path, strategy_of)
    assert set(statuses) <= {400, 404}, statuses  # 404: a negative query beside a well-formed unknown id
    assert statuses[400], statuses


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("path", [PACKAGES, PACKAGE, RESPONSES])
@pytest.mark.parametrize("key", ["none", "malformed", "statistics"])
def test_refused_keys_get_a_documented_json_api_error(settings: Settings, path: str, key: str) -> None:
    """No key, a malformed key or a statistics key: every generated request gets its 401 or 403 document."""
    headers = {
        "none": {},
        "malformed": {"Authorization": "Bearer rimay_not_a_key"},
        "statistics": bearer(settings.sqlalchemy_url, "stats:read"),
    }[key]

    def strategy_of(operation: Operation, package_id: str) -> Strategy:
        return operation.as_strategy(headers=headers, path_parameters={"package_id": package_id})

    # ignored_auth would replay each request with the generated key removed or changed: here there is none.
    statuses = responses_of(settings, path, strategy_of, excluded=[positive_data_acceptance, ignored_auth])
    assert set(statuses) == {403 if key == "statistics" else 401}, statuses


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("key", "status"), [(None, 401), ("rimay_not_a_key", 401), ("stats", 403)])
async def test_a_refused_key_is_answered_in_json_api(
    client: httpx.AsyncClient, sessions: Sessions, key: str | None, status: int
) -> None:
    """Found by schemathesis: refusals came as application/json, off the documented JSON:API media type."""
    if key == "stats":
        async with sessions() as db:
            _, key = await ApiKeyService(db).create("Statistics partner", ["stats:read"])
            await db.commit()
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = await client.get(PACKAGES, headers=headers)
    assert (response.status_code, response.headers["content-type"]) == (status, "application/vnd.api+json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    code = "insufficient_scope" if status == 403 else "invalid_api_key"
    assert body == {
        "error": code,
        "detail": body["detail"],
        "errors": [{"status": str(status), "code": code, "detail": body["detail"]}],
    }
