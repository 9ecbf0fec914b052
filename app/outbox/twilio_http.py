"""The twilio SDK over httpx: an async `HttpClient`, so the worker awaits Twilio without threads."""

from __future__ import annotations

import logging

import httpx
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from app.settings import ConfigurationError, Settings

log = logging.getLogger(__name__)
DEFAULT_TIMEOUT = 20.0
JSON_TYPES = frozenset({"application/json", "application/scim+json"})


NOTHING_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
)
"""Failures before a byte of the request left: no connection (DNS, refused, TLS), no pooled one, no proxy."""


class TwilioTransportError(Exception):
    """Twilio could not be reached or did not answer in time; the send may be retried later.

    ``ambiguous``: the request may have reached Twilio (a read or write timeout, a connection dropped
    after sending), so Twilio may have acted on it although we never saw its answer.
    """

    def __init__(self, message: str, *, ambiguous: bool) -> None:
        super().__init__(message)
        self.ambiguous = ambiguous


class HttpxTwilioClient(AsyncHttpClient):  # type: ignore[misc]  # the SDK is untyped
    """`twilio.http.AsyncHttpClient` on `httpx.AsyncClient`; it never logs bodies (they hold numbers)."""

    def __init__(self, http: httpx.AsyncClient | None = None, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(logger=log, is_async=True, timeout=timeout)
        self.http = http or httpx.AsyncClient(timeout=timeout)

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the SDK's signature
        allow_redirects: bool = False,
    ) -> Response:
        """Send one request; timeouts and connection failures become TwilioTransportError."""
        if timeout is not None and timeout <= 0:
            raise ValueError(timeout)
        body = {"json": data} if (headers or {}).get("Content-Type") in JSON_TYPES else {"data": data}
        try:
            answer = await self.http.request(
                method.upper(),
                url,
                params=params,  # type: ignore[arg-type]
                headers=headers,
                auth=auth,
                timeout=timeout or self.timeout,
                follow_redirects=allow_redirects,
                **body,  # type: ignore[arg-type]
            )
        except httpx.TransportError as error:  # timeouts included
            # Anything not known to fail before sending counts as ambiguous: a needless check with
            # Twilio costs one lookup, a wrong "nothing was sent" costs a duplicate message.
            ambiguous = not isinstance(error, NOTHING_SENT)
            message = f"{type(error).__name__} calling Twilio"
            raise TwilioTransportError(message, ambiguous=ambiguous) from error
        return Response(answer.status_code, answer.text, answer.headers)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.http.aclose()


def client_factory(settings: Settings) -> Client:
    """A Twilio REST client for the worker; refuses to build one without real credentials."""
    token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
    if not settings.twilio_account_sid or not token:
        raise ConfigurationError(
            "sending needs Twilio credentials: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN "
            "(the console's Account Info)"
        )
    return Client(settings.twilio_account_sid, token, http_client=HttpxTwilioClient())
