"""Staff accounts: argon2id passwords, TOTP seeds at rest, sessions, settings and `rimay user`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from argon2 import PasswordHasher
from pydantic import ValidationError
from typer.testing import CliRunner

from app.cli import app as cli
from app.settings import Settings, get_settings
from app.staff.errors import DuplicateEmail, InvalidStaffInput, LoginFailed, SessionExpired, StaffNotFound
from app.staff.models import StaffUser
from app.staff.passwords import Passwords
from app.staff.service import StaffSecrets, StaffService
from app.staff.sessions import StaffSessions, session_id
from app.staff.totp import TotpCipher, matching_step, new_seed
from tests.conftest import count_rows
from tests.outbound import Clock, Sessions, sessions_for

MASTER = b"test-master-secret-" + b"m" * 32
PASSWORD = "correct horse battery"
FAST = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
async def maker(database_url: str) -> AsyncIterator[Sessions]:
    """Sessions on the test database."""
    async with sessions_for(database_url) as made:
        yield made


async def create(maker: Sessions, email: str = "Ana@Example.org", passwords: Passwords = FAST) -> StaffUser:
    """A committed manager."""
    async with maker() as db:
        user = await StaffService(db, StaffSecrets.from_master(MASTER, passwords)).create(
            email, PASSWORD, "manager"
        )
        await db.commit()
        return user


async def test_create_normalizes_the_address_and_stores_an_argon2id_hash(maker: Sessions) -> None:
    """The e-mail is lower-cased; the password is kept only as an argon2id hash."""
    user = await create(maker, passwords=Passwords())
    assert user.email == "ana@example.org"
    assert user.role == "manager"
    assert user.active
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


@pytest.mark.parametrize(
    ("email", "password", "role", "error"),
    [
        ("ana@example.org", "short", "manager", "at least 12 characters"),
        ("not-an-address", PASSWORD, "manager", "not an e-mail address"),
        ("ana@example.org", PASSWORD, "owner", "unknown role"),
        ("ANA@example.org", PASSWORD, "manager", "already exists"),
    ],
    ids=["short-password", "bad-email", "bad-role", "duplicate"],
)
async def test_create_refuses_bad_input(
    maker: Sessions, email: str, password: str, role: str, error: str
) -> None:
    """Each refusal says what is wrong, and no second account appears."""
    await create(maker)
    async with maker() as db:
        with pytest.raises(InvalidStaffInput, match=error) as raised:
            await StaffService(db, StaffSecrets.from_master(MASTER, FAST)).create(email, password, role)
    assert isinstance(raised.value, DuplicateEmail) == (error == "already exists")


async def test_an_outdated_hash_is_replaced_at_the_next_login(maker: Sessions) -> None:
    """A hash made with weaker parameters is upgraded once the password is verified."""
    user = await create(maker)
    async with maker() as db:
        service = StaffService(db, StaffSecrets.from_master(MASTER, Passwords()))
        checked = await service.check_password("ana@example.org", PASSWORD)
        await db.commit()
    assert checked.password_hash != user.password_hash
    assert "m=65536" in checked.password_hash


@pytest.mark.parametrize(
    ("email", "password"),
    [("ana@example.org", "wrong password!"), ("nobody@example.org", PASSWORD), ("ana@example.org", "")],
    ids=["wrong-password", "unknown", "empty"],
)
async def test_check_password_refuses(maker: Sessions, email: str, password: str) -> None:
    """Wrong, unknown and empty all give the same LoginFailed."""
    await create(maker)
    async with maker() as db:
        with pytest.raises(LoginFailed, match="wrong e-mail or password"):
            await StaffService(db, StaffSecrets.from_master(MASTER, FAST)).check_password(email, password)


async def test_deactivate_ends_the_sessions(maker: Sessions, database_url: str) -> None:
    """A deactivated account keeps its row but loses its sessions and its login."""
    user = await create(maker)
    async with maker() as db:
        await StaffSessions(db, idle=timedelta(minutes=30), lifetime=timedelta(hours=12)).start(
            user, second_factor_done=True, replacing=None
        )
        service = StaffService(db, StaffSecrets.from_master(MASTER, FAST))
        assert not (await service.deactivate("ANA@example.org")).active
        with pytest.raises(StaffNotFound):
            await service.deactivate("nobody@example.org")
        with pytest.raises(StaffNotFound):
            await service.deactivate(999)
        await db.commit()
    assert count_rows(database_url, "staff_sessions") == 0


async def test_sessions_expire_when_idle_or_old(maker: Sessions, database_url: str) -> None:
    """Use keeps a session alive until its lifetime; idleness or age ends it and deletes the row."""
    user, clock = await create(maker), Clock()
    async with maker() as db:
        sessions = StaffSessions(db, idle=timedelta(minutes=30), lifetime=timedelta(hours=1), clock=clock)
        token = await sessions.start(user, second_factor_done=True, replacing=None)
        for _ in range(5):
            clock.advance(minutes=11)
            assert (await sessions.resolve(token)).session.id == session_id(token)
        clock.advance(minutes=11)
        with pytest.raises(SessionExpired):
            await sessions.resolve(token)  # used 11 minutes ago, but 66 minutes old
        idle = await sessions.start(user, second_factor_done=True, replacing=None)
        clock.advance(minutes=31)
        with pytest.raises(SessionExpired):
            await sessions.resolve(idle)
        for missing in (None, "", "no-such-token"):
            with pytest.raises(SessionExpired):
                await sessions.resolve(missing)
        await db.commit()
    assert count_rows(database_url, "staff_sessions") == 0


def test_totp_seeds_are_sealed_to_their_account_and_key() -> None:
    """A sealed seed opens only for the same user and master secret, and not after tampering."""
    seed, cipher = new_seed(), TotpCipher(MASTER)
    blob = cipher.seal(7, seed)
    assert seed.encode() not in blob
    assert cipher.open(7, blob) == seed
    assert cipher.open(8, blob) is None
    assert TotpCipher(b"another-master-secret-" + b"z" * 32).open(7, blob) is None
    assert cipher.open(7, blob[:-1] + bytes([blob[-1] ^ 1])) is None
    assert "<key hidden>" in repr(cipher)


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "000000"])
def test_malformed_or_wrong_codes_match_no_step(code: str) -> None:
    """Only the six digits of a current step match."""
    seed, clock = new_seed(), Clock()
    assert matching_step(seed, code, clock()) is None or code == pyotp.TOTP(seed).at(clock())
    good = pyotp.TOTP(seed).at(clock())
    assert matching_step(seed, f"{good[:3]} {good[3:]}", clock()) is not None


def test_session_settings_defaults_environment_and_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """30 minutes idle and 12 hours at most by default; set from the environment; nonsense refused."""
    assert (Settings().staff_session_idle_minutes, Settings().staff_session_max_hours) == (30, 12)
    monkeypatch.setenv("RIMAY_STAFF_SESSION_IDLE_MINUTES", "10")
    monkeypatch.setenv("RIMAY_STAFF_SESSION_MAX_HOURS", "2")
    assert (Settings().staff_session_idle_minutes, Settings().staff_session_max_hours) == (10, 2)
    for name in ("RIMAY_STAFF_SESSION_IDLE_MINUTES", "RIMAY_STAFF_SESSION_MAX_HOURS"):
        monkeypatch.setenv(name, "0")
        with pytest.raises(ValidationError):
            Settings()
        monkeypatch.setenv(name, "5")


@pytest.fixture
def environment(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An operator's shell: a fresh data dir and the test database."""
    monkeypatch.setenv("RIMAY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RIMAY_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield database_url
    get_settings.cache_clear()


def test_user_cli_creates_lists_and_deactivates(environment: str) -> None:
    """Prompted twice (hidden) or read from stdin; listed without secrets; deactivated by e-mail."""
    runner = CliRunner()
    prompted = runner.invoke(cli, ["user", "create", "--email", "Ana@example.org"], input=f"{PASSWORD}\n" * 2)
    assert prompted.exit_code == 0, prompted.output
    assert "created manager ana@example.org" in prompted.output
    assert PASSWORD not in prompted.output
    piped = runner.invoke(
        cli,
        ["user", "create", "--email", "root@example.org", "--role", "admin", "--password-stdin"],
        input=f"{PASSWORD}\n",
    )
    assert piped.exit_code == 0
    assert "admins enrol a TOTP" in piped.output
    listing = runner.invoke(cli, ["user", "list"]).output.splitlines()
    assert listing[0].startswith("ID\tEMAIL")
    assert len(listing) == 3
    assert "$argon2" not in "\n".join(listing)
    done = runner.invoke(cli, ["user", "deactivate", "--email", "ana@example.org"])
    assert done.exit_code == 0
    assert "\tmanager\tno\t" in runner.invoke(cli, ["user", "list"]).output


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["create", "--email", "a@example.org", "--password-stdin"], "short\n", "at least 12 characters"),
        (["create", "--email", "a@example.org"], f"{PASSWORD}\nsomething else!!\n", "do not match"),
        (["create", "--email", "a@example.org", "--role", "owner", "--password-stdin"], "", "owner"),
        (["create", "--email", "bad", "--password-stdin"], f"{PASSWORD}\n", "not an e-mail address"),
        (["create", "--email", "USER@example.org", "--password-stdin"], f"{PASSWORD}\n", "already exists"),
        (["deactivate", "--email", "nobody@example.org"], "", "no account for nobody@example.org"),
    ],
    ids=["short", "mismatch", "bad-role", "bad-email", "duplicate", "unknown"],
)
def test_user_cli_refuses_bad_input(environment: str, args: list[str], stdin: str, message: str) -> None:
    """Each refusal exits non-zero with a clear message."""
    runner = CliRunner()
    first = ["user", "create", "--email", "user@example.org", "--password-stdin"]
    assert runner.invoke(cli, first, input=f"{PASSWORD}\n").exit_code == 0
    result = runner.invoke(cli, ["user", *args], input=stdin)
    assert result.exit_code != 0
    assert message in result.output
    assert count_rows(environment, "staff_users") == 1
