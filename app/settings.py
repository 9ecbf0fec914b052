"""Settings from the environment (prefix ``RIMAY_``) and an optional ``.env``; fail fast on bad secrets."""

from __future__ import annotations

import logging
import os
import secrets
from enum import StrEnum
from functools import cached_property, lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.db.engine import is_sqlite
from app.stats import DEFAULT_STATS_ZONE

log = logging.getLogger(__name__)

PLACEHOLDERS = frozenset({"", "changeme", "change-me", "secret", "placeholder", "dev", "test", "xxx"})
MIN_SECRET_LENGTH = 32
TWILIO_TIMEOUT_SECONDS = 15
"""Twilio waits this long for a webhook's answer, then plays its own (English) error."""
WEBHOOK_SLOTS = 8
SQLITE_WEBHOOK_SLOTS = 2
"""Webhooks a worker works on at once by default (RIMAY_WEBHOOK_CONCURRENCY): SQLite has one writer."""


class Environment(StrEnum):
    """Where the service runs; production refuses unsafe defaults."""

    DEVELOPMENT = "development"
    PRODUCTION = "production"


class ConfigurationError(RuntimeError):
    """A setting is missing or unsafe; the message says what to set."""


class Settings(BaseSettings):
    """Everything an operator can configure."""

    model_config = SettingsConfigDict(
        env_prefix="RIMAY_", env_file=".env", extra="ignore", populate_by_name=True
    )

    env: Environment = Environment.DEVELOPMENT
    data_dir: Path = Path("var")
    database_url: str | None = None
    public_base_url: str = "http://127.0.0.1:8000"
    secret_key: SecretStr | None = None
    contact_key: SecretStr | None = None
    flows_dir: Path = Path("voice_flows")
    default_flow: str = "hotline"
    audio_dir: Path = Path("audio")
    log_level: str = "INFO"
    # SMS: a conversation idle this long ends; the next message starts fresh in the remembered language.
    sms_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    # Missed-call call-back: reject incoming calls (free for the caller) and call back through the outbox.
    callback_mode: bool = False
    callback_delay_seconds: int = Field(default=30, ge=0, le=3600)
    callback_window_hours: int = Field(default=24, ge=1, le=24 * 7)
    callback_max_per_minute: int = Field(default=10, ge=1, le=1000)
    # Outbound (outbox worker): the hotline's own number (E.164) sends SMS and places call-backs; a
    # Messaging Service SID (MG...) may be used instead of, or with, the number for SMS.
    twilio_number: str | None = Field(default=None, pattern=r"^\+[1-9]\d{6,14}$")
    twilio_messaging_service_sid: str | None = Field(default=None, pattern=r"^MG[0-9a-fA-F]{32}$")
    # At most this many messages and calls per caller in 24 hours (cancelled ones do not count).
    outbound_daily_cap: int = Field(default=10, ge=0, le=1000)
    # A message that still fails (429, 5xx, timeout) after this many attempts is marked failed.
    outbox_max_attempts: int = Field(default=5, ge=1, le=50)
    # A row left `sending` this long means its worker died mid-send: it is failed for review, never
    # re-sent blindly. Keep it well above a batch's worst case (batch size x REST timeout).
    outbox_lease_seconds: int = Field(default=900, ge=60, le=24 * 3600)
    # Recordings are fetched with the account's credentials, so only URLs on these hosts are accepted
    # from a recording callback (JSON list, e.g. RIMAY_RECORDING_HOSTS='["api.twilio.com"]').
    recording_hosts: list[str] = Field(default_factory=lambda: ["api.twilio.com"], min_length=1)
    # A closed case (its recordings, answers and notes) is purged by `rimay purge` after this many days.
    case_retention_days: int = Field(default=365, ge=1, le=3650)
    # An answered case nobody touched for this many days is closed by the purge (her number goes then).
    case_close_idle_days: int = Field(default=60, ge=1, le=3650)
    # A voice answer uploaded (or recorded in the browser) may be at most this large.
    answer_upload_max_bytes: int = Field(default=10_000_000, ge=100_000, le=100_000_000)
    # Staff web view: a session unused this long, or older than this, needs a new login.
    staff_session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    staff_session_max_hours: int = Field(default=12, ge=1, le=24 * 7)
    # A Twilio webhook not answered within this many seconds (a hung database) gets the outage apology and
    # a hang-up rather than silence; Twilio itself gives up after 15 s with an English message.
    webhook_deadline_seconds: float = Field(default=1.5, ge=0.5, le=12)
    # Each worker works on at most this many Twilio webhooks at once; the others wait their turn for up to
    # RIMAY_WEBHOOK_QUEUE_SECONDS, then get the apology. Together with the deadline it must stay under
    # Twilio's 15 s. Unset: see `webhook_slots`.
    webhook_concurrency: int | None = Field(default=None, ge=1, le=1000)
    webhook_queue_seconds: float = Field(default=8.0, ge=0, le=12)
    # Partner statistics: any count below this is published as null ("suppressed"); never below 3.
    stats_min_cell: int = Field(default=5, ge=3, le=1000)
    # Days, weeks and months of the statistics are counted in this time zone (IANA name).
    stats_time_zone: str = DEFAULT_STATS_ZONE
    # Partner statistics API: the longest date range one request may cover (from..to, inclusive).
    stats_max_days: int = Field(default=366, ge=31, le=3660)
    # Partner statistics API: at most this many periods when figures are split by period (each period is
    # a table protected on its own, so this bounds a request's work: e.g. 62 days, a year of weeks).
    stats_max_periods: int = Field(default=62, ge=12, le=1000)
    # Partner statistics API: requests each API key may make per minute (counted in the database).
    stats_requests_per_minute: int = Field(default=60, ge=1, le=10_000)
    twilio_account_sid: str | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_ACCOUNT_SID", "RIMAY_TWILIO_ACCOUNT_SID")
    )
    twilio_auth_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_AUTH_TOKEN", "RIMAY_TWILIO_AUTH_TOKEN")
    )

    @field_validator("stats_time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"RIMAY_STATS_TIME_ZONE {value!r} is not an IANA time zone") from error
        return value

    @field_validator("public_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("RIMAY_PUBLIC_BASE_URL must start with http:// or https://")
        return value.rstrip("/")

    @property
    def is_production(self) -> bool:
        """True when running for real callers."""
        return self.env is Environment.PRODUCTION

    @property
    def generated_audio_dir(self) -> Path:
        """Where `rimay audio build` writes generated drafts (recorded files live in `audio_dir`)."""
        return self.data_dir / "audio"

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL, defaulting to SQLite in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'rimay.sqlite3').resolve()}"

    @property
    def webhook_slots(self) -> int:
        """RIMAY_WEBHOOK_CONCURRENCY, else 8 on PostgreSQL and 2 on SQLite.

        SQLite has one writer: webhooks beyond it only wait for its lock in short sleeps, which under load
        made some pass the deadline (the benchmark's 50 callers: 14 apologies in 20 s with 8 slots, none
        with 1 or 2, and ~15% more steps per second).
        """
        if self.webhook_concurrency is not None:
            return self.webhook_concurrency
        return SQLITE_WEBHOOK_SLOTS if is_sqlite(self.sqlalchemy_url) else WEBHOOK_SLOTS

    @cached_property
    def master_secret(self) -> bytes:
        """The master secret; sub-keys are derived from it, never used raw."""
        return self._secret(self.secret_key, "RIMAY_SECRET_KEY", "secret_key")

    @cached_property
    def contact_secret(self) -> bytes:
        """The key that encrypts reply contacts, kept apart from the master."""
        contact = self._secret(self.contact_key, "RIMAY_CONTACT_KEY", "contact_key")
        if self.is_production and contact == self.master_secret:
            # One leaked value would then expose both the pseudonyms and the stored contacts.
            raise ConfigurationError(
                "RIMAY_CONTACT_KEY must differ from RIMAY_SECRET_KEY: set RIMAY_CONTACT_KEY to its own "
                'random value, e.g. python -c "import secrets; print(secrets.token_urlsafe(48))"'
            )
        return contact

    @cached_property
    def auth_token(self) -> str:
        """Twilio's auth token; in development a local one lets `rimay call` sign requests."""
        return self._secret(self.twilio_auth_token, "TWILIO_AUTH_TOKEN", "twilio_auth_token").decode()

    @model_validator(mode="after")
    def _within_twilio_timeout(self) -> Settings:
        total = self.webhook_queue_seconds + self.webhook_deadline_seconds
        if total > TWILIO_TIMEOUT_SECONDS - 1:
            raise ValueError(
                f"RIMAY_WEBHOOK_QUEUE_SECONDS + RIMAY_WEBHOOK_DEADLINE_SECONDS is {total:g} s: keep it at "
                f"most {TWILIO_TIMEOUT_SECONDS - 1} s, or Twilio gives up first and plays its English error"
            )
        return self

    def check(self) -> None:
        """Fail fast: resolve every secret now so a bad one stops start-up with a clear message."""
        _ = self.master_secret, self.contact_secret, self.auth_token

    def _secret(self, value: SecretStr | None, env_name: str, file_name: str) -> bytes:
        raw = value.get_secret_value() if value is not None else ""
        if raw and raw.lower() not in PLACEHOLDERS:
            if self.is_production and len(raw) < MIN_SECRET_LENGTH and env_name != "TWILIO_AUTH_TOKEN":
                raise ConfigurationError(
                    f"{env_name} is too short for production: use at least {MIN_SECRET_LENGTH} random "
                    'characters, e.g. python -c "import secrets; print(secrets.token_urlsafe(48))"'
                )
            return raw.encode()
        if self.is_production:
            raise ConfigurationError(
                f"{env_name} is missing or a placeholder. In production set it in the environment or .env; "
                'generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))"'
            )
        return self._development_secret(env_name, file_name)

    def _development_secret(self, env_name: str, file_name: str) -> bytes:
        path = self.data_dir / "secrets" / file_name
        if path.exists():
            return path.read_bytes().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        generated = secrets.token_urlsafe(48)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker generated it a moment ago
            return path.read_bytes().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(generated)
        log.warning(
            "%s not set: generated a development value in %s (never use it in production)", env_name, path
        )
        return generated.encode()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
