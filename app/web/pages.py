"""Rendering: Jinja2 templates with autoescaping, and the web view's refusals as pages."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from app.staff.sessions import SignedIn

HERE: Final = Path(__file__).resolve().parent
HOME: Final = "/cases"
"""Where a completed login lands: the case queue."""
SESSION_COOKIE: Final = "rimay_staff"
MESSAGES: Final = {
    "expired": "Su sesión terminó. Ingrese de nuevo.",
    "logged_out": "Cerró su sesión.",
    "created": "Cuenta creada.",
    "deactivated": "Cuenta desactivada.",
    "enrolled": "Segundo factor activado.",
    "assigned": "El caso ahora es suyo.",
    "noted": "Nota guardada.",
    "answered": "Respuesta guardada. La persona la escuchará cuando llame.",
    "answered_sms": "Respuesta guardada; la persona recibirá un SMS.",
    "closed": "Caso cerrado.",
}
"""Notices chosen by a short code in the URL, so no free text travels in a link."""

templates = Jinja2Templates(directory=HERE / "templates")  # autoescapes .html


class WebRefusal(Exception):
    """A request the web view refuses; shown as a page with this status, title and message."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


class CsrfRefused(WebRefusal):
    """A form came without this session's token: possibly a forged request."""

    def __init__(self) -> None:
        super().__init__(
            403,
            "Formulario rechazado",
            "El formulario no tenía un código de seguridad válido, así que no se cambió nada. "
            "Vuelva a la página, recárguela e intente de nuevo.",
        )


class Forbidden(WebRefusal):
    """The account's role does not allow this page."""

    def __init__(self) -> None:
        super().__init__(403, "Acceso denegado", "Su cuenta no tiene permiso para abrir esta página.")


class LoginRedirect(Exception):
    """Send the browser to a sign-in step; ``clear`` also drops a dead session cookie."""

    def __init__(self, target: str, *, clear: bool = False) -> None:
        super().__init__(target)
        self.target, self.clear = target, clear


def render(
    request: Request, name: str, *, signed_in: SignedIn | None = None, status: int = 200, **context: Any
) -> HTMLResponse:
    """A page; signed-in pages get the user and the session's CSRF token."""
    if signed_in is not None:
        context["user"] = signed_in.user
        context["complete"] = signed_in.complete  # no links to pages a pending login cannot open
        context["csrf_token"] = request.app.state.web.csrf.for_session(signed_in.session.id)
    notice = MESSAGES.get(request.query_params.get("m", ""))
    return templates.TemplateResponse(request, name, {"notice": notice, **context}, status_code=status)


def redirect(target: str) -> RedirectResponse:
    """303 See Other, so a POST is followed by a GET."""
    return RedirectResponse(target, status_code=303)


async def _refusal(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WebRefusal)  # noqa: S101 - registered for WebRefusal only
    return render(request, "error.html", status=exc.status, title=exc.title, message=exc.message)


async def _login_redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRedirect)  # noqa: S101 - registered for LoginRedirect only
    response = redirect(exc.target)
    if exc.clear:
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def add_web_error_handlers(app: FastAPI) -> None:
    """Turn refusals into pages and sign-in needs into redirects."""
    app.add_exception_handler(WebRefusal, _refusal)
    app.add_exception_handler(LoginRedirect, _login_redirect)
