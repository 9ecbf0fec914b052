"""Security headers on every web-view response; /docs and the Twilio routes are left as they are."""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

WEB_PREFIXES: Final = ("/login", "/logout", "/account", "/admin", "/cases", "/dashboard", "/static/web")
"""Paths served by the web view; the case pages live under /cases."""
STATIC_PREFIX: Final = "/static/web"
CSP: Final = (
    "default-src 'self'; media-src 'self' blob:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
HEADERS: Final = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
)


def is_web_path(path: str) -> bool:
    """True for a path of the web view."""
    return any(path == prefix or path.startswith(prefix + "/") for prefix in WEB_PREFIXES)


class SecurityHeaders:
    """ASGI middleware: adds the headers (and no-store on pages) to web-view responses only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_web_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        page = not scope["path"].startswith(STATIC_PREFIX + "/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in HEADERS if name not in names]
                if page:
                    # Pages show personal case data: no browser or proxy may keep a copy.
                    kept = [(n, v) for n, v in message.get("headers", []) if n.lower() != b"cache-control"]
                    message["headers"] = [*kept, (b"cache-control", b"no-store")]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
