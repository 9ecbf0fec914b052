"""Admin page for news broadcasts: past ones with their delivery counts, and a form to send one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from app.broadcasts.deps import NewsDep
from app.broadcasts.service import BroadcastService, BroadcastTooLong, QueuedBroadcast
from app.deps import FlowsDep, SessionDep, SettingsDep
from app.flows.model import FlowDefinition
from app.sms.segments import capacity, encoding, fits, length_units
from app.staff.sessions import SignedIn
from app.web.deps import CurrentAdmin, audit, check_csrf
from app.web.pages import render

router = APIRouter(prefix="/admin", include_in_schema=False)

BROADCAST_CREATED: Final = "broadcast_created"
HISTORY: Final = 50
COMMUNITY_MAX: Final = 64
"""The length of `Subscription.community`."""
NOT_STORED: Final = frozenset({"prefiero_no_decir"})
"""Choices the survey never stores as a community, so no subscriber could match them."""
PENDING: Final = ("pending", "sending")
FAILED: Final = ("failed", "undelivered")


@dataclass(frozen=True)
class NewsForm:
    """What the form offers: the flow's languages and its communities (empty: free text)."""

    languages: list[tuple[str, str]]
    communities: dict[str, str]


class Refused(Exception):
    """The form was refused with a message for the admin; nothing was queued."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def news_form(flow: FlowDefinition) -> NewsForm:
    """Languages by their own names, and the community question's choices by name and label."""
    languages = [(language, flow.language_name(language)) for language in flow.languages]
    question = flow.profile_questions().get("community")
    communities: dict[str, str] = {}
    if question is not None:
        label_language = flow.languages[0]
        for choice in flow.choices(flow.questions()[question]).values():
            if choice.name not in NOT_STORED:
                communities[choice.name] = choice.label.get(label_language, choice.name)
    return NewsForm(languages, communities)


async def _page(
    request: Request,
    news: BroadcastService,
    flow: FlowDefinition,
    signed_in: SignedIn,
    *,
    status: int = 200,
    **context: object,
) -> Response:
    reports = await news.reports(HISTORY)
    rows = [
        {
            "report": report,
            "pending": sum(report.counts.get(name, 0) for name in PENDING),
            "failed": sum(report.counts.get(name, 0) for name in FAILED),
        }
        for report in reports
    ]
    form = news_form(flow)
    return render(
        request,
        "admin_broadcasts.html",
        signed_in=signed_in,
        status=status,
        rows=rows,
        form=form,
        latest=reports[0].id if reports else 0,
        community_max=COMMUNITY_MAX,
        **context,
    )


@router.get("/broadcasts", response_class=HTMLResponse)
async def broadcasts(
    request: Request, news: NewsDep, flows: FlowsDep, settings: SettingsDep, signed_in: CurrentAdmin
) -> Response:
    """Past broadcasts with queued, sent, delivered and failed counts, and the form for a new one."""
    return await _page(request, news, flows[settings.default_flow], signed_in)


@router.post("/broadcasts", dependencies=[Depends(check_csrf)])
async def create_broadcast(
    request: Request,
    db: SessionDep,
    news: NewsDep,
    flows: FlowsDep,
    settings: SettingsDep,
    signed_in: CurrentAdmin,
    community: Annotated[str, Form(max_length=1000)] = "",
    latest: Annotated[int, Form(ge=0)] = 0,
) -> Response:
    """Queue the news for every subscriber with a text in their language; the worker sends it."""
    flow = flows[settings.default_flow]
    form = await request.form()
    fields = {language: form.get(f"text_{language}") for language, _ in news_form(flow).languages}
    texts = {language: value.strip() for language, value in fields.items() if isinstance(value, str)}
    try:
        queued, chosen = await _queue(news, flow, texts, community, latest)
    except Refused as refusal:  # the form comes back as it was typed
        kept = {"texts": texts, "community": community.strip(), "error": refusal.message}
        return await _page(request, news, flow, signed_in, status=refusal.status, **kept)
    languages = "/".join(language for language, text in sorted(texts.items()) if text)
    detail = f"#{queued.id} {languages}, {chosen or 'todas'}, {queued.recipients} SMS"
    await audit(db).record(signed_in.user, BROADCAST_CREATED, detail=detail)
    await db.commit()
    # Shown on this response: the left-out counts exist only now, at creation.
    return await _page(request, news, flow, signed_in, status=201, queued=queued)


async def _queue(
    news: BroadcastService, flow: FlowDefinition, texts: dict[str, str], community: str, latest: int
) -> tuple[QueuedBroadcast, str | None]:
    """Check the form and queue the news, or refuse it with nothing queued."""
    chosen = _community(community, news_form(flow))
    await _check_not_stale(news, latest)
    entered = {language: text for language, text in texts.items() if text}
    if not entered:
        raise Refused("Escriba la noticia en al menos un idioma.")
    try:
        return await news.create(entered, chosen), chosen
    except BroadcastTooLong as error:  # refused before anything was added
        raise Refused(_too_long(entered)) from error


def _community(value: str, form: NewsForm) -> str | None:
    """None for everyone; one of the flow's communities, or (with none defined) short free text."""
    value = value.strip()
    if not value:
        return None
    if form.communities and value not in form.communities:
        raise Refused("Esa comunidad no está en la lista de la encuesta. Elija una de la lista.")
    if len(value) > COMMUNITY_MAX:
        raise Refused(f"El nombre de la comunidad puede tener hasta {COMMUNITY_MAX} caracteres.")
    return value


async def _check_not_stale(news: BroadcastService, latest: int) -> None:
    """Refuse a form older than the newest broadcast: a resubmitted page must not send twice."""
    newest = await news.reports(1)
    if newest and newest[0].id > latest:
        raise Refused(
            f"Se creó la noticia #{newest[0].id} después de abrir este formulario, así que no se envió "
            "nada. Revise la lista y, si aún hace falta, envíe de nuevo.",
            status=409,
        )


def _too_long(texts: dict[str, str]) -> str:
    """Which texts need more than two SMS, with their length and the limit for their alphabet."""
    parts = [
        f"{language}: {length_units(text)} de {capacity(encoding(text))} caracteres"
        for language, text in texts.items()
        if not fits(text)
    ]
    return f"El texto no cabe en 2 SMS ({'; '.join(parts)}). Acórtelo; no se envió nada."
