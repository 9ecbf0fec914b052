"""Schemathesis against the statistics endpoints: generated queries never get a 5xx or a body off-schema."""

from __future__ import annotations

import pytest
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.settings import Settings
from tests.schemathesis_support import bearer, run, served_schema


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
    headers = bearer(settings.sqlalchemy_url, "stats:read")
    # Generated calls are many: the rate limit has tests of its own, and short ranges keep each call quick.
    limits = {"stats_requests_per_minute": 10_000, "stats_max_days": 31, "stats_max_periods": 12}
    with served_schema(settings.model_copy(update=limits)) as schema:
        # The schema cannot say "from before to" or "at most 366 days", so schema-valid queries may rightly
        # get a documented 422; every other default check (5xx, status, content type, body) applies.
        strategy = schema[path]["GET"].as_strategy(headers=headers, path_parameters=fixed)
        statuses = run(strategy, excluded=[positive_data_acceptance])
    assert statuses[500] == statuses[503] == 0
    if answered:
        assert statuses[200], f"some generated queries are answered, so report bodies are checked: {statuses}"
