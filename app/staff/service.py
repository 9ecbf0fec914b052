"""Staff accounts: create, list, deactivate, check passwords and TOTP codes. The service only flushes."""

from __future__ import annotations

import builtins
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.staff.errors import DuplicateEmail, InvalidStaffInput, LoginFailed, StaffNotFound
from app.staff.models import Role, StaffUser
from app.staff.passwords import Passwords, check_strength
from app.staff.repository import StaffRepository
from app.staff.totp import STEP_SECONDS, TotpCipher, matching_step, new_seed, provisioning_uri
from app.throttle.service import ThrottleKeys, ThrottleService

log = logging.getLogger(__name__)

EMAIL_PATTERN: Final = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
TOTP_USED_BUCKET: Final = "totp_used"
TOTP_REPLAY_WINDOW: Final = timedelta(seconds=4 * STEP_SECONDS)
"""Longer than the three steps a code is accepted in, so an accepted code never works twice."""


@dataclass(frozen=True)
class StaffSecrets:
    """What account checks need, built once per app from the master secret."""

    passwords: Passwords
    totp: TotpCipher
    throttle_keys: ThrottleKeys

    @classmethod
    def from_master(cls, master: bytes, passwords: Passwords | None = None) -> StaffSecrets:
        """Derive every sub-key from the master secret."""
        return cls(passwords or Passwords(), TotpCipher(master), ThrottleKeys(master))


@dataclass(frozen=True)
class Enrolment:
    """A seed waiting for its first code: shown as text and as an otpauth:// URI."""

    seed: str
    uri: str


def normalize_email(email: str) -> str:
    """The e-mail trimmed and lower-cased, or InvalidStaffInput."""
    email = email.strip().lower()
    if len(email) > 254 or not EMAIL_PATTERN.fullmatch(email):
        raise InvalidStaffInput(f"not an e-mail address: {email!r}")
    return email


def parse_role(role: str) -> Role:
    """A known role, or InvalidStaffInput naming the known ones."""
    try:
        return Role(role.strip().lower())
    except ValueError as error:
        known = ", ".join(r.value for r in Role)
        raise InvalidStaffInput(f"unknown role {role!r}; use one of: {known}") from error


class StaffService:
    """Accounts; plaintext passwords and seeds exist only in arguments and return values."""

    def __init__(
        self, db: AsyncSession, secrets: StaffSecrets, *, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.secrets = secrets
        self.clock = clock
        self.users = StaffRepository(db)
        self.throttle = ThrottleService(db, secrets.throttle_keys, clock=clock)

    async def create(self, email: str, password: str, role: str) -> StaffUser:
        """A new active account; refuses a short password, a bad e-mail or role, a taken e-mail."""
        email, granted = normalize_email(email), parse_role(role)
        check_strength(password)
        if await self.users.by_email(email) is not None:
            raise DuplicateEmail(f"an account for {email} already exists")
        user = StaffUser(
            email=email,
            password_hash=self.secrets.passwords.hash(password),
            role=granted.value,
            active=True,
            created_at=self.clock(),
        )
        await self.users.add(user)
        log.info("created staff account %s (%s)", user.id, granted.value)
        return user

    async def list(self) -> builtins.list[StaffUser]:
        """Every account, oldest first."""
        return await self.users.all()

    async def get(self, user_id: int) -> StaffUser:
        """The account with this id, or StaffNotFound."""
        user = await self.users.by_id(user_id)
        if user is None:
            raise StaffNotFound(f"no account with id {user_id}")
        return user

    async def deactivate(self, email_or_id: str | int) -> StaffUser:
        """Deactivate an account and end its sessions; doing it again changes nothing."""
        if isinstance(email_or_id, int):
            user = await self.get(email_or_id)
        else:
            found = await self.users.by_email(email_or_id.strip().lower())
            if found is None:
                raise StaffNotFound(f"no account for {email_or_id.strip()}")
            user = found
        user.active = False
        await self.users.delete_sessions_of(user.id)
        await self.db.flush()
        return user

    async def find(self, email: str) -> StaffUser | None:
        """The account for a typed e-mail, if any (active or not)."""
        return await self.users.by_email(email.strip().lower())

    async def check_password(self, email: str, password: str) -> StaffUser:
        """The active account if the password matches, else LoginFailed; upgrades an old hash."""
        user = await self.find(email)
        ok, rehashed = self.secrets.passwords.verify(user.password_hash if user else None, password)
        if user is None or not ok or not user.active:
            raise LoginFailed("wrong e-mail or password")
        if rehashed is not None:
            user.password_hash = rehashed
            await self.db.flush()
        return user

    async def start_enrolment(self, user: StaffUser) -> Enrolment:
        """Store a new, unconfirmed seed (replacing an unconfirmed one); refused once confirmed."""
        if user.totp_confirmed_at is not None:
            raise InvalidStaffInput("this account already has a confirmed second factor")
        seed = new_seed()
        user.totp_secret = self.secrets.totp.seal(user.id, seed)
        await self.db.flush()
        return Enrolment(seed, provisioning_uri(seed, user.email))

    def pending_enrolment(self, user: StaffUser) -> Enrolment | None:
        """The unconfirmed seed, to show again, or None."""
        if user.totp_confirmed_at is not None or user.totp_secret is None:
            return None
        seed = self.secrets.totp.open(user.id, user.totp_secret)
        return None if seed is None else Enrolment(seed, provisioning_uri(seed, user.email))

    async def confirm_enrolment(self, user: StaffUser, code: str) -> None:
        """Confirm the pending seed with a valid code, else LoginFailed."""
        if self.pending_enrolment(user) is None:
            raise LoginFailed("start the enrolment first")
        await self.check_code(user, code)
        user.totp_confirmed_at = self.clock()
        await self.db.flush()

    async def check_code(self, user: StaffUser, code: str) -> None:
        """Accept a current code once: a replayed or wrong code raises LoginFailed."""
        seed = self.secrets.totp.open(user.id, user.totp_secret) if user.totp_secret else None
        step = None if seed is None else matching_step(seed, code, self.clock())
        if step is None:
            raise LoginFailed("wrong code")
        used = f"{user.id}:{step}"
        if await self.throttle.count(TOTP_USED_BUCKET, used, TOTP_REPLAY_WINDOW):
            raise LoginFailed("this code was already used; wait for the next one")
        await self.throttle.prune(TOTP_USED_BUCKET, TOTP_REPLAY_WINDOW)
        await self.throttle.record(TOTP_USED_BUCKET, used)
