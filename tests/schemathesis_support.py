"""What the schemathesis tests of the partner APIs share: a key, the app's own schema, one hypothesis run."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.strategies import SearchStrategy
from schemathesis.specs.openapi.schemas import OpenApiSchema

from app.apikeys.service import ApiKeyService
from app.main import create_app
from app.settings import Settings
from tests.outbound import sessions_for

EXAMPLES = 30


async def _create_key(database_url: str, scope: str) -> str:
    async with sessions_for(database_url) as maker, maker() as db:
        _, token = await ApiKeyService(db).create("Schemathesis", [scope])
        await db.commit()
        return token


def bearer(database_url: str, scope: str) -> dict[str, str]:
    """The Authorization header of a new, committed key with this scope."""
    return {"Authorization": f"Bearer {asyncio.run(_create_key(database_url, scope))}"}


@contextmanager
def served_schema(settings: Settings) -> Iterator[OpenApiSchema]:
    """The real app's OpenAPI schema, calling that app in process; its engine is disposed afterwards."""
    app = create_app(settings)
    try:
        yield schemathesis.openapi.from_asgi("/openapi.json", app)
    finally:
        asyncio.run(app.state.engine.dispose())


def run(strategy: SearchStrategy[schemathesis.Case[Any]], excluded: Sequence[Any] = ()) -> Counter[int]:
    """Call the app with each generated case, apply the default checks but ``excluded``, count statuses."""
    statuses: Counter[int] = Counter()

    @given(case=strategy)
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case: schemathesis.Case[Any]) -> None:
        response = case.call_and_validate(excluded_checks=list(excluded))
        statuses[response.status_code] += 1

    check()
    return statuses
