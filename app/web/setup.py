"""Wire the web view into the app: routers, static CSS, error pages and security headers."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.settings import Settings
from app.web import account, admin, admin_broadcasts, admin_keys, auth, case_actions, cases, dashboard
from app.web.deps import WebState
from app.web.pages import HERE, add_web_error_handlers
from app.web.security import STATIC_PREFIX, SecurityHeaders


def add_web(app: FastAPI, settings: Settings) -> None:
    """Call once in the app factory."""
    app.state.web = WebState.from_settings(settings)
    app.include_router(auth.router)
    app.include_router(account.router)
    app.include_router(admin.router)
    app.include_router(admin_keys.router)
    app.include_router(admin_broadcasts.router)
    app.include_router(cases.router)
    app.include_router(case_actions.router)
    app.include_router(dashboard.router)
    app.mount(STATIC_PREFIX, StaticFiles(directory=HERE / "static"), name="web-static")
    add_web_error_handlers(app)
    app.add_middleware(SecurityHeaders)
