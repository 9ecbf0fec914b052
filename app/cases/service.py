"""Cases from the caller's side (open, follow up, hear) and the staff's (assign, note, answer, close)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from app.audit.service import AuditService
from app.cases.audio import ANSWER_MEDIA_TYPE, answer_path, new_audio_id, store_answer, transcode
from app.cases.errors import CaseChanged, CaseClosed, CaseNotFound, InvalidAnswer
from app.cases.models import AnswerKind, Case, CaseAnswer, CaseMessage, CaseNote, CaseStatus, ReplyBy
from app.cases.repository import CaseRepository
from app.contacts.crypto import ContactCipher
from app.contacts.models import ContactPurpose
from app.contacts.service import ContactService
from app.db.base import utcnow
from app.flows.model import FlowDefinition
from app.outbox.service import Outbox
from app.privacy.masking import mask_caller_text
from app.recordings.models import Recording
from app.recordings.service import recording_path
from app.sessions.models import CallSession
from app.settings import Settings
from app.staff.models import StaffUser
from app.stats.cases import CaseStats
from app.voice.twiml import SAY_VOICES

log = logging.getLogger(__name__)
CODE_DIGITS = 6
MAX_TEXT = 1000
"""A text answer or note; an SMS answer is sent as several concatenated segments."""
CALLER = "caller"
SYSTEM = "system"


class CaseService:
    """Only flushes; the request's unit of work commits, so an answer and its SMS land together."""

    def __init__(
        self,
        db: AsyncSession,
        settings: Settings,
        cipher: ContactCipher,
        flow: FlowDefinition,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.settings = settings
        self.flow = flow
        self.clock = clock
        self.cases = CaseRepository(db)
        self.audit = AuditService(db, clock=clock)
        self.contacts = ContactService(db, cipher, clock=clock)
        self.outbox = Outbox(db, settings, clock=clock)
        self.stats = CaseStats(db, ZoneInfo(settings.stats_time_zone))

    # ------------------------------------------------------------------ the caller's side

    async def open(
        self,
        session: CallSession,
        topic: str,
        *,
        text: str | None = None,
        recording_id: int | None = None,
    ) -> Case:
        """A new case from a session, with the session's coarse demographics and a fresh code."""
        now = self.clock()
        case = Case(
            code=await self._new_code(),
            caller_id=session.caller_id,
            session_id=session.id,
            channel=session.channel,
            language=session.language or "es",
            topic=topic,
            status=CaseStatus.NEW,
            reply_by=ReplyBy.CALL,
            gender=session.gender,
            age_band=session.age_band,
            community=session.community,
            created_at=now,
            updated_at=now,
        )
        self.db.add(case)
        await self.db.flush()
        await self._add_message(case, session.channel, text, recording_id)
        self.stats.opened(case)
        await self.audit.record(CALLER, "case_opened", case_id=case.id, detail=f"{case.channel}, {topic}")
        return case

    async def follow_up(
        self, case: Case, channel: str, *, text: str | None = None, recording_id: int | None = None
    ) -> CaseMessage:
        """The caller adds to her question (after hearing an answer): the case is open again."""
        message = await self._add_message(case, channel, text, recording_id)
        if case.reply_by == ReplyBy.SMS and not await self.reaches_by_sms(case):
            case.reply_by = ReplyBy.CALL  # her number went when the case closed: she calls again
        case.status = CaseStatus.NEW
        case.closed_at = None
        case.updated_at = self.clock()
        await self.db.flush()
        await self.audit.record(CALLER, "follow_up", case_id=case.id, detail=channel)
        return message

    async def reply_by_sms(self, case: Case, number: str) -> bool:
        """The caller consented to an SMS answer: keep her number encrypted until the case closes."""
        if case.caller_id is None:
            return False
        await self.contacts.remember(case.caller_id, number, ContactPurpose.SMS_REPLIES)
        case.reply_by = ReplyBy.SMS
        case.updated_at = self.clock()
        await self.db.flush()
        await self.audit.record(CALLER, "reply_by_sms", case_id=case.id)
        return True

    async def unheard(self, caller_id: int) -> Sequence[tuple[Case, CaseAnswer]]:
        """Answers waiting for the caller, oldest first."""
        return await self.cases.unheard_for_caller(caller_id)

    async def heard(self, answer: CaseAnswer) -> None:
        """The caller listened to an answer (once is enough to stop announcing it)."""
        if answer.heard_at is None:
            answer.heard_at = self.clock()
            await self.db.flush()
            await self.audit.record(CALLER, "answer_heard", case_id=answer.case_id)

    async def feedback(self, answer: CaseAnswer, value: str) -> None:
        """After hearing it: "answered" closes nothing by itself; it tells the manager it helped."""
        answer.feedback = value
        await self.db.flush()
        await self.audit.record(CALLER, f"feedback_{value}", case_id=answer.case_id)

    # ------------------------------------------------------------------ the staff's side

    async def get(self, case_id: int) -> Case:
        """A case, or CaseNotFound."""
        case = await self.cases.get(case_id)
        if case is None:
            raise CaseNotFound(f"case {case_id} does not exist")
        return case

    async def viewed(self, case: Case, staff: StaffUser) -> None:
        """Every look at a case is in the audit log."""
        await self.audit.record(staff, "case_viewed", case_id=case.id)

    async def assign(self, case: Case, staff: StaffUser, version: int) -> None:
        """Take the case: it moves to "in progress"."""
        self._check(case, version)
        case.assigned_to = staff.id
        if case.status == CaseStatus.NEW:
            case.status = CaseStatus.IN_PROGRESS
        await self._changed(case)
        await self.audit.record(staff, "case_assigned", case_id=case.id)

    async def note(self, case: Case, staff: StaffUser, text: str) -> CaseNote:
        """An internal note; notes never reach the caller."""
        note = CaseNote(
            case_id=case.id, author_id=staff.id, text=_bounded(text, "note"), created_at=self.clock()
        )
        self.db.add(note)
        await self.db.flush()
        await self.audit.record(staff, "note_added", case_id=case.id)
        return note

    async def answer_text(self, case: Case, staff: StaffUser, text: str, version: int) -> CaseAnswer:
        """A written answer: by SMS if she chose it, and read out when she calls (Spanish has a voice)."""
        self._check(case, version)
        text = _bounded(text, "answer")
        by_sms = await self.reaches_by_sms(case)
        if not by_sms and case.language not in SAY_VOICES:
            # She will hear it on the line, and no Twilio voice speaks her language: text would be lost.
            raise InvalidAnswer(
                f"the caller speaks {case.language!r}, which the line cannot read aloud, and will call "
                "back to hear the answer: record a voice answer instead"
            )
        answer = self._new_answer(case, staff, AnswerKind.TEXT, text=text)
        queued = None
        if by_sms and case.caller_id is not None:
            body = self._sms(case, "case_text_answer", text=text)
            queued = await self.outbox.enqueue_sms(case.caller_id, body, case_id=case.id)
            if queued is not None:
                answer.heard_at = self.clock()  # sent: she is not told again that it waits for her
        await self._answered(case, staff, answer, "sent by SMS" if queued else "waits for her call")
        return answer

    async def reaches_by_sms(self, case: Case) -> bool:
        """She chose SMS and her number is still kept for it (not after STOP, nor after closing)."""
        if case.reply_by != ReplyBy.SMS or case.caller_id is None:
            return False
        return await self.contacts.consents(case.caller_id, ContactPurpose.SMS_REPLIES)

    async def text_heard(self, case: Case) -> bool:
        """Whether a written answer can reach her: by SMS, or read aloud in her language."""
        return case.language in SAY_VOICES or await self.reaches_by_sms(case)

    async def answer_voice(self, case: Case, staff: StaffUser, upload: bytes, version: int) -> CaseAnswer:
        """A spoken answer, recorded in the browser or uploaded: any caller can hear it, in any language."""
        self._check(case, version)
        if len(upload) > self.settings.answer_upload_max_bytes:
            raise InvalidAnswer(f"the file is larger than {self.settings.answer_upload_max_bytes} bytes")
        mp3 = await transcode(upload)
        answer = self._new_answer(case, staff, AnswerKind.VOICE, audio_id=new_audio_id())
        answer.media_type = ANSWER_MEDIA_TYPE
        notice = None
        if await self.reaches_by_sms(case) and case.caller_id is not None:
            # A voice cannot go by text: the SMS tells her an answer waits on the line.
            notice = await self.outbox.enqueue_sms(
                case.caller_id, self._sms(case, "case_voice_answer"), case_id=case.id
            )
        await self._answered(case, staff, answer, "announced by SMS" if notice else "waits for her call")
        # Written once the version check passed, so a manager who lost a race leaves no stray file.
        store_answer(self.settings.data_dir, str(answer.audio_id), mp3)
        return answer

    async def close(self, case: Case, staff: StaffUser, version: int) -> None:
        """Close the case; her number goes as soon as no open case needs it."""
        self._check(case, version)
        case.status = CaseStatus.CLOSED
        case.closed_at = self.clock()
        await self._changed(case)
        self.stats.closed(case, case.closed_at)
        await self.audit.record(staff, "case_closed", case_id=case.id)
        await self._forget_number_if_done(case)

    def audio_path(self, answer: CaseAnswer) -> Path:
        """Where a voice answer's file is."""
        if answer.audio_id is None:
            raise CaseNotFound("this answer has no audio")
        return answer_path(self.settings.data_dir, answer.audio_id)

    # ------------------------------------------------------------------ retention

    async def purge(self, now: datetime) -> int:
        """Close long-idle answered cases; delete closed ones past retention, audio too; how many went."""
        await self._close_idle(now)
        cutoff = now - timedelta(days=self.settings.case_retention_days)
        expired = await self.cases.closed_before(cutoff)
        for case in expired:
            for answer in await self.cases.answers(case.id):
                if answer.audio_id is not None:
                    self.audio_path(answer).unlink(missing_ok=True)
            for recording in (await self.cases.recordings(case.id)).values():
                await self._purge_recording(recording)
            await self.audit.record(SYSTEM, "case_purged", case_id=case.id)
        await self.cases.delete([case.id for case in expired])
        await self.db.flush()
        return len(expired)

    async def _close_idle(self, now: datetime) -> None:
        """An answer nobody followed up for weeks: the case closes, so her number and its data can go."""
        idle = await self.cases.answered_idle_since(now - timedelta(days=self.settings.case_close_idle_days))
        for case in idle:
            case.status = CaseStatus.CLOSED
            case.closed_at = now
            case.updated_at = now
            await self.db.flush()
            self.stats.closed(case, now)
            await self.audit.record(SYSTEM, "case_auto_closed", case_id=case.id)
            await self._forget_number_if_done(case)
        if idle:
            log.info(
                "closed %s answered case(s) idle for %s days", len(idle), self.settings.case_close_idle_days
            )

    async def _purge_recording(self, recording: Recording) -> None:
        """The file goes; the row too once Twilio's copy is known to be deleted (else it stays listed)."""
        recording_path(self.settings, recording.public_id).unlink(missing_ok=True)
        if recording.remote_deleted_at is not None:
            await self.db.delete(recording)
        else:
            log.warning("recording %s purged here but not known deleted at Twilio", recording.id)

    # ------------------------------------------------------------------ helpers

    async def _new_code(self) -> str:
        """A random code with no leading zero (0 is "repeat" on the keypad), unused by any case."""
        while True:
            code = str(secrets.randbelow(9 * 10 ** (CODE_DIGITS - 1)) + 10 ** (CODE_DIGITS - 1))
            if not await self.cases.code_taken(code):
                return code

    async def _add_message(
        self, case: Case, channel: str, text: str | None, recording_id: int | None
    ) -> CaseMessage:
        stored = mask_caller_text(text.strip()) if text and text.strip() else None
        message = CaseMessage(
            case_id=case.id, channel=channel, text=stored, recording_id=recording_id, created_at=self.clock()
        )
        self.db.add(message)
        await self.db.flush()
        return message

    def _new_answer(self, case: Case, staff: StaffUser, kind: AnswerKind, **values: str) -> CaseAnswer:
        answer = CaseAnswer(case_id=case.id, author_id=staff.id, kind=kind, created_at=self.clock(), **values)
        self.db.add(answer)
        return answer

    async def _answered(self, case: Case, staff: StaffUser, answer: CaseAnswer, how: str) -> None:
        now = self.clock()
        first = case.first_answered_at is None
        case.status = CaseStatus.ANSWERED
        case.first_answered_at = case.first_answered_at or now
        case.assigned_to = case.assigned_to or staff.id
        await self._changed(case)
        if first:
            self.stats.answered(case, now)
        await self.audit.record(staff, f"answered_{answer.kind}", case_id=case.id, detail=how)

    def _sms(self, case: Case, name: str, **values: str) -> str:
        """A text from the flow in the case's language (the flow linter makes sure it exists)."""
        texts = self.flow.sms[name]
        template = texts.get(case.language) or texts[self.flow.languages[0]]
        return template.format(code=case.code, **values)

    def _check(self, case: Case, version: int) -> None:
        """Refuse to act on a case that changed since the manager loaded it, or is closed."""
        if case.version != version:
            raise CaseChanged("this case changed since you opened it; look at it again before acting")
        if case.status == CaseStatus.CLOSED:
            raise CaseClosed("this case is closed")

    async def _changed(self, case: Case) -> None:
        """Flush with the version check: a concurrent change makes the second writer's flush fail."""
        case.updated_at = self.clock()
        try:
            await self.db.flush()
        except StaleDataError as error:
            raise CaseChanged("this case changed while you were acting on it; look at it again") from error

    async def _forget_number_if_done(self, case: Case) -> None:
        if case.caller_id is None or case.reply_by != ReplyBy.SMS:
            return
        if await self.cases.open_sms_cases(case.caller_id) == 0:
            await self.contacts.drop_purpose(case.caller_id, ContactPurpose.SMS_REPLIES)


def _bounded(text: str, what: str) -> str:
    """A stripped, non-empty text of at most MAX_TEXT characters."""
    text = text.strip()
    if not text:
        raise InvalidAnswer(f"the {what} is empty")
    if len(text) > MAX_TEXT:
        raise InvalidAnswer(f"the {what} is longer than {MAX_TEXT} characters")
    return text
