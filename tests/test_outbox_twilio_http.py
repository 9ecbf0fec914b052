"""The httpx-backed twilio HttpClient: forms or JSON as the SDK asks, transport errors made retryable."""

from __future__ import annotations

import json

import httpx
import pytest
import respx
from twilio.base.exceptions import TwilioException
from twilio.http.response import Response

from app.outbox.retry import Backoff, SendFailure, classify
from app.outbox.twilio_http import HttpxTwilioClient, TwilioTransportError

URL = "https://api.twilio.com/2010-04-01/Accounts/AC1/Things.json"


async def test_form_and_json_bodies_and_basic_auth() -> None:
    """Form-encoded by default, JSON when the SDK says so; the response keeps status, text and headers."""
    client = HttpxTwilioClient(timeout=5)
    try:
        with respx.mock() as mock:
            route = mock.post(URL).mock(return_value=httpx.Response(201, json={"sid": "X"}))
            answer = await client.request("post", URL, data={"To": "a", "Body": "b"}, auth=("AC1", "token"))
            assert (answer.status_code, json.loads(answer.text)) == (201, {"sid": "X"})
            assert route.calls.last.request.content == b"To=a&Body=b"
            assert route.calls.last.request.headers["authorization"].startswith("Basic ")
            headers = {"Content-Type": "application/json"}
            await client.request("POST", URL, data={"a": 1}, headers=headers)
            assert json.loads(route.calls.last.request.content) == {"a": 1}
    finally:
        await client.aclose()
    assert client.is_async


async def test_transport_errors_become_retryable_and_bad_timeouts_are_refused() -> None:
    """A timeout is a TwilioTransportError that `classify` retries; a non-positive timeout is a bug."""
    client = HttpxTwilioClient()
    try:
        with respx.mock() as mock:
            mock.post(URL).mock(side_effect=httpx.ConnectTimeout("slow"))
            with pytest.raises(TwilioTransportError) as raised:
                await client.request("POST", URL, data={})
        failure = classify(raised.value)
        assert failure is not None
        assert failure.retryable
        with pytest.raises(ValueError, match="0"):
            await client.request("POST", URL, timeout=0)
    finally:
        await client.aclose()
    assert classify(RuntimeError("bug")) is None


def test_full_jitter_backoff_grows_and_is_capped() -> None:
    """Each wait is uniform in [0, min(cap, base x 2^(n-1))]."""
    backoff = Backoff(base=30, cap=3600)
    for attempt, ceiling in [(1, 30), (2, 60), (3, 120), (8, 3600), (30, 3600)]:
        waits = [backoff.delay(attempt).total_seconds() for _ in range(200)]
        assert all(0 <= wait <= ceiling for wait in waits)
        assert max(waits) > ceiling / 2


@pytest.mark.parametrize(
    ("error", "ambiguous"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("slow"), False),
        (httpx.PoolTimeout("busy"), False),
        (httpx.ReadTimeout("slow"), True),
        (httpx.WriteTimeout("slow"), True),
        (httpx.ReadError("reset"), True),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), True),
    ],
)
async def test_only_failures_before_sending_are_sure(error: Exception, ambiguous: bool) -> None:
    """A request that may have reached Twilio is ambiguous: the worker asks Twilio before sending again."""
    client = HttpxTwilioClient()
    try:
        with respx.mock() as mock:
            mock.post(URL).mock(side_effect=error)
            with pytest.raises(TwilioTransportError) as raised:
                await client.request("POST", URL, data={})
    finally:
        await client.aclose()
    failure = classify(raised.value)
    assert failure is not None
    assert (failure.retryable, failure.ambiguous) == (True, ambiguous)


@pytest.mark.parametrize(
    ("status", "retryable", "ambiguous"), [(429, True, False), (503, True, True), (401, False, False)]
)
def test_a_list_page_that_did_not_come_is_classified_by_status(
    status: int, retryable: bool, ambiguous: bool
) -> None:
    """The SDK's list raises a bare TwilioException holding the response; its text is never kept."""
    error = TwilioException("Unable to fetch page", Response(status, "The 'To' +51964555123 ...", {}))
    failure = classify(error)
    assert failure == SendFailure(retryable, f"HTTP {status}: Unable to fetch page", ambiguous)
    assert classify(TwilioException("something else")) is None
