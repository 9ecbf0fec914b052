"""SMS conversations: keywords, opt-out, idle expiry and paging around the same engine as voice."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.broadcasts.service import BroadcastService
from app.callers.models import Caller
from app.contacts.service import ContactService
from app.db.base import utcnow
from app.flows import engine
from app.flows.events import NoInput, RunState, TextMessage
from app.flows.model import FlowDefinition
from app.sessions.models import CallSession
from app.sessions.repository import SessionRepository
from app.sessions.service import Channel, ConversationService, Move, Replay, Turn
from app.sms.keywords import NEWS_LANGUAGES, Keyword, keyword
from app.sms.models import InboundMessage
from app.sms.render import SmsRenderer
from app.sms.segments import paginate

log = logging.getLogger(__name__)

MORE_KEY = "0"


@dataclass(frozen=True)
class SmsContext:
    """What the SMS service needs besides the database: the flow, the idle time and the news service."""

    flow: FlowDefinition
    idle: timedelta
    contacts: ContactService
    news: BroadcastService


class SmsService:
    """Answers one inbound SMS with one reply (or none), exactly once per MessageSid."""

    def __init__(self, db: AsyncSession, conversations: ConversationService, context: SmsContext) -> None:
        self.db = db
        self.conversations = conversations
        self.context = context
        self.flow = context.flow
        self.sessions = SessionRepository(db)
        self.renderer = SmsRenderer(context.flow)

    async def receive(self, message_sid: str, e164: str, body: str) -> str | None:
        """The reply to a message; a redelivered MessageSid gets the stored reply and changes nothing."""
        stored = await self.db.get(InboundMessage, message_sid)
        if stored is not None:
            return stored.reply
        caller = await self.conversations.caller(e164)
        reply, turn = await self._respond(caller, message_sid, e164, body)
        session_id = turn.session.id if turn is not None else None
        self.db.add(
            InboundMessage(message_sid=message_sid, caller_id=caller.id, session_id=session_id, reply=reply)
        )
        try:
            if turn is not None:
                await self.conversations.commit(turn, reply or "")
            else:
                await self.db.commit()
        except IntegrityError:
            await self.db.rollback()
            winner = await self.db.get(InboundMessage, message_sid)
            if winner is None:
                raise
            return winner.reply
        return reply

    async def _respond(
        self, caller: Caller, sid: str, e164: str, body: str
    ) -> tuple[str | None, Turn | None]:
        found = keyword(body)
        word = found[0] if found else None
        if word is Keyword.OPT_OUT:
            return await self._opt_out(caller), None
        if caller.opted_out:
            if word is not Keyword.OPT_IN:
                return None, None  # nothing is sent to an opted-out number, not even a reply
            caller.opted_out = False
            log.info("caller %s opted back in", caller.id)
            return self.renderer.text("opted_in", caller.language), None
        if word is Keyword.HELP:
            return self.renderer.text("help", caller.language), None
        if word is Keyword.NEWS and found is not None:
            return await self._subscribe(caller, e164, found[1]), None
        return await self._converse(caller, sid, e164, word, body)

    async def _converse(
        self, caller: Caller, sid: str, e164: str, word: Keyword | None, body: str
    ) -> tuple[str | None, Turn | None]:
        """Start a conversation, page through the last reply, or take one step in the flow."""
        session = await self._active_session(caller)
        if session is None:
            return await self._start(caller, sid, e164, word)
        if session.pending_pages and body.strip() == MORE_KEY:
            return self._next_page(session), None
        return await self._step(session, self._move(word, body), e164)

    async def _start(
        self, caller: Caller, sid: str, e164: str, word: Keyword | None
    ) -> tuple[str | None, Turn | None]:
        result = await self.conversations.begin_for(caller, Channel.SMS, sid, self.flow.id)
        if isinstance(result, Replay):
            return result.response, None
        if word is Keyword.LANGUAGE:
            return await self._step(result.session, self._move(word, ""), e164)
        return self._reply(result.session, result), result

    async def _step(self, session: CallSession, move: Move, e164: str) -> tuple[str | None, Turn]:
        turn = await self.conversations.apply(session, move, e164)
        if RunState.model_validate(session.state).ended:
            session.status = "completed"
            session.ended_at = utcnow()
        return self._reply(session, turn), turn

    def _move(self, word: Keyword | None, body: str) -> Move:
        if word is Keyword.MENU:
            return lambda flow, state: engine.jump(flow, state, flow.main)
        language_menu = self.flow.language_menu()
        if word is Keyword.LANGUAGE and language_menu is not None:
            return lambda flow, state: engine.jump(flow, state, language_menu)
        given = TextMessage(body) if body.strip() else NoInput()
        return lambda flow, state: engine.resume(flow, state, given)

    def _reply(self, session: CallSession, turn: Turn) -> str:
        """The first page of the rendered reply; later pages wait for the "more" key."""
        pages = paginate(self.renderer.render(turn.events), more=self._more(session.language))
        session.pending_pages = pages[1:] or None
        return pages[0]

    def _next_page(self, session: CallSession) -> str:
        pages: list[str] = list(session.pending_pages or [])
        session.pending_pages = pages[1:] or None
        session.updated_at = utcnow()
        return pages[0]

    def _more(self, language: str | None) -> Callable[[int, int], str]:
        more = self.renderer.text("more", language)
        return lambda page, pages: f"\n({page}/{pages}) {more}"

    async def _active_session(self, caller: Caller) -> CallSession | None:
        """The caller's open conversation, unless it has been idle too long (then it ends)."""
        session = await self.sessions.latest_active(caller.id, Channel.SMS)
        if session is None:
            return None
        if session.updated_at < utcnow() - self.context.idle:
            session.status = "expired"
            session.ended_at = utcnow()
            return None
        return session

    async def _subscribe(self, caller: Caller, e164: str, word: str) -> str:
        """Texting NOTICIAS is consent to news by SMS, in the keyword's or the caller's language."""
        language = NEWS_LANGUAGES.get(word) or caller.language or self.flow.languages[0]
        if language not in self.flow.languages:
            language = self.flow.languages[0]
        await self.context.news.subscribe(caller.id, e164, language, Channel.SMS)
        return self.renderer.text("news_subscribed", language)

    async def _opt_out(self, caller: Caller) -> str | None:
        """Confirm once, forget how to reach the caller, and end their conversations."""
        if caller.opted_out:
            return None  # already confirmed once; say nothing more
        caller.opted_out = True
        await self.context.contacts.forget(caller.id)
        await self.context.news.unsubscribe(caller.id)
        open_sessions = await self.db.scalars(
            select(CallSession).where(
                CallSession.caller_id == caller.id,
                CallSession.channel == Channel.SMS,
                CallSession.status == "active",
            )
        )
        for session in open_sessions:
            session.status = "opted_out"
            session.ended_at = utcnow()
            session.pending_pages = None
        log.info("caller %s opted out", caller.id)
        return self.renderer.text("opted_out", caller.language)
