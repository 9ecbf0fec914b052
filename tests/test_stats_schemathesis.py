"""Schemathesis against the statistics endpoints: generated queries never get a 5xx or a body off-schema."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.strategies import SearchStrategy
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.apikeys.service import ApiKeyService
from app.main import create_app
from app.settings import Settings
from tests.outbound import sessions_for

EXAMPLES = 30


async def stats_key(database_url: str) -> str:
    """A committed `stats:read` key."""
    async with sessions_for(database_url) as maker, maker() as db:
        _, token = await ApiKeyService(db).create("Schemathesis", ["stats:read"])
        await db.commit()
        return token


def run(strategy: SearchStrategy[schemathesis.Case[Any]]) -> Counter[int]:
    """Call the app with each generated case, apply the default checks, and count the statuses."""
    statuses: Counter[int] = Counter()

    @given(case=strategy)
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case: schemathesis.Case[Any]) -> None:
        # The schema cannot say "from before to" or "at most 366 days", so schema-valid queries may rightly
        # get a documented 422; every other default check (5xx, status, content type, body) applies.
        response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
        statuses[response.status_code] += 1

    check()
    return statuses


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("path", "fixed", "answered"),
    [
        ("/api/v1/stats/participation", {}, True),
        ("/api/v1/stats/library", {}, True),
        ("/api/v1/stats/survey/{question_id}", {"question_id": "agua"}, True),
        ("/api/v1/stats/survey/{question_id}", {}, False),  # generated ids: unknown, never a 5xx
        ("/api/v1/stats/cases", {}, True),
    ],
)
def test_generated_queries_get_no_5xx_and_match_the_schema(
    settings: Settings, path: str, fixed: dict[str, str], answered: bool
) -> None:
    """Valid key, generated parameters: answers are 200 reports or documented JSON errors."""
    token = asyncio.run(stats_key(settings.sqlalchemy_url))
    # Generated calls are many: the rate limit has tests of its own, and short ranges keep each call quick.
    limits = {"stats_requests_per_minute": 10_000, "stats_max_days": 31, "stats_max_periods": 12}
    app = create_app(settings.model_copy(update=limits))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {token}"}
    try:
        statuses = run(schema[path]["GET"].as_strategy(headers=headers, path_parameters=fixed))
    finally:
        asyncio.run(app.state.engine.dispose())
    assert statuses[500] == statuses[503] == 0
    if answered:
        assert statuses[200], f"some generated queries are answered, so report bodies are checked: {statuses}"
