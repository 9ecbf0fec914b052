"""Settings fail fast: production refuses missing or placeholder secrets; development generates them once."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from app.flows.loader import FlowLoadError
from app.main import create_app
from app.privacy.keys import KeyPurpose, derive_key
from app.settings import ConfigurationError, Environment, Settings

STRONG = "s" * 48


def _production(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": Environment.PRODUCTION,
        "data_dir": tmp_path,
        "secret_key": STRONG,
        "contact_key": STRONG + "c",
        "twilio_auth_token": "real-token",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["secret_key", "contact_key", "twilio_auth_token"])
@pytest.mark.parametrize("value", [None, "", "changeme", "secret"])
def test_production_refuses_missing_or_placeholder_secrets(
    tmp_path: Path, name: str, value: str | None
) -> None:
    """Each secret is named in the message, with how to make one."""
    settings = _production(tmp_path, **{name: value})
    with pytest.raises(ConfigurationError) as error:
        settings.check()
    expected = {
        "secret_key": "RIMAY_SECRET_KEY",
        "contact_key": "RIMAY_CONTACT_KEY",
        "twilio_auth_token": "TWILIO_AUTH_TOKEN",
    }[name]
    assert expected in str(error.value)
    assert not (tmp_path / "secrets").exists()


def test_production_refuses_short_secret(tmp_path: Path) -> None:
    """A guessable master secret is refused in production."""
    with pytest.raises(ConfigurationError, match="too short"):
        _production(tmp_path, secret_key="short-but-not-placeholder").check()


def test_production_refuses_a_contact_key_equal_to_the_secret_key(tmp_path: Path) -> None:
    """The contact key must be its own secret: start-up stops and says what to set."""
    settings = _production(tmp_path, contact_key=STRONG)
    with pytest.raises(ConfigurationError) as error:
        settings.check()
    assert "RIMAY_CONTACT_KEY must differ from RIMAY_SECRET_KEY" in str(error.value)
    assert "secrets.token_urlsafe" in str(error.value)
    with pytest.raises(ConfigurationError, match="RIMAY_CONTACT_KEY must differ"):
        create_app(_production(tmp_path, contact_key=STRONG))


def test_production_accepts_real_secrets(tmp_path: Path) -> None:
    """Real values pass and nothing is written to the data dir."""
    settings = _production(tmp_path)
    settings.check()
    assert settings.master_secret == STRONG.encode()
    assert not (tmp_path / "secrets").exists()


def test_development_generates_secrets_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A missing secret is generated, kept private in the data dir, warned about, and reused."""
    with caplog.at_level(logging.WARNING):
        first = Settings(data_dir=tmp_path)
        first.check()
    assert "RIMAY_SECRET_KEY not set" in caplog.text
    path = tmp_path / "secrets" / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = Settings(data_dir=tmp_path)
    assert second.master_secret == first.master_secret
    assert second.contact_secret == first.contact_secret
    assert first.master_secret != first.contact_secret


def test_environment_variables_and_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """RIMAY_* and Twilio's own variable names are read; SQLite in the data dir is the default."""
    monkeypatch.setenv("RIMAY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RIMAY_PUBLIC_BASE_URL", "https://rimay.example.org/")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "from-env")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC" + "1" * 32)
    settings = Settings()
    assert settings.public_base_url == "https://rimay.example.org"
    assert settings.auth_token == "from-env"
    assert settings.twilio_account_sid == "AC" + "1" * 32
    assert settings.sqlalchemy_url == f"sqlite:///{(tmp_path / 'rimay.sqlite3').resolve()}"


def test_bad_public_base_url_is_refused() -> None:
    """The URL Twilio signs must be a full http(s) URL."""
    with pytest.raises(ValueError, match="RIMAY_PUBLIC_BASE_URL"):
        Settings(public_base_url="hotline.example.org")


def test_sub_keys_differ_from_the_master_and_each_other() -> None:
    """Pseudonym, session and CSRF keys are separate derivations."""
    master = b"m" * 32
    keys = {purpose: derive_key(master, purpose) for purpose in KeyPurpose}
    assert len(set(keys.values())) == len(KeyPurpose)
    assert master not in keys.values()


def test_server_refuses_to_start_on_an_invalid_flow(tmp_path: Path) -> None:
    """create_app stops with the same file:node: message the linter prints."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "hotline.yaml").write_text(
        "id: hotline\nlanguages: [es]\nstart: nowhere\nmain: nowhere\nnodes: {}\n"
    )
    settings = Settings(data_dir=tmp_path, flows_dir=flows)
    with pytest.raises(FlowLoadError) as error:
        create_app(settings)
    assert any(
        line.endswith("hotline.yaml:(flow): start points to unknown node 'nowhere'")
        for line in error.value.problems
    )


def test_server_refuses_an_unknown_default_flow(tmp_path: Path) -> None:
    """RIMAY_DEFAULT_FLOW must name a loaded flow."""
    root = Path(__file__).resolve().parents[1]
    settings = Settings(data_dir=tmp_path, flows_dir=root / "voice_flows", default_flow="nope")
    with pytest.raises(ConfigurationError, match="RIMAY_DEFAULT_FLOW"):
        create_app(settings)
