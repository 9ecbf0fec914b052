"""Random and malformed bodies on every Twilio webhook: a 4xx, or a 2xx with valid TwiML, never a 5xx."""

from __future__ import annotations

import json
import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.conftest import PUBLIC_BASE_URL
from tests.fuzz_support import Harness, harness, plaintext_numbers

__all__ = ["harness"]  # a fixture, used by name

NUMBERS = ("+51964777111", "+51964888222")
"""Posted in every field a number could go; none may be stored or logged in plaintext."""
EXAMPLES = 40
TWILIO_FIELDS = (
    "CallSid",
    "AccountSid",
    "From",
    "To",
    "Direction",
    "CallStatus",
    "CallDuration",
    "Digits",
    "RecordingSid",
    "RecordingUrl",
    "RecordingDuration",
    "MessageSid",
    "Body",
    "NumMedia",
    "ErrorCode",
)
VALUES = st.one_of(
    st.sampled_from([*NUMBERS, "CA" + "a" * 32, "SM" + "b" * 32, "RE" + "c" * 32, "completed", "1", ""]),
    st.sampled_from(NUMBERS).map(lambda number: f"llamen al {number}"),
    st.text(max_size=40),
    st.text(alphabet="0123456789*#", max_size=12),
    st.sampled_from(["x", "9", "ñ"]).map(lambda c: c * 100_000),
)
FORMS = st.dictionaries(st.one_of(st.sampled_from(TWILIO_FIELDS), st.text(max_size=12)), VALUES, max_size=10)


@dataclass(frozen=True)
class Body:
    """A request body as sent: raw bytes, their content type, and the parameters the server will see."""

    content: bytes
    content_type: str
    params: dict[str, str]


def _form(items: list[tuple[str, str]]) -> Body:
    """A form body; the server keeps the last of duplicated keys, so that is what Twilio would have signed."""
    return Body(urlencode(items).encode(), "application/x-www-form-urlencoded", dict(items))


@st.composite
def bodies(draw: st.DrawFn) -> Body:
    """Forms (with keys missing or duplicated), non-UTF-8 bytes, JSON, or a form under a wrong type."""
    form = draw(FORMS)
    # A broken multipart body has a test of its own (test_broken_multipart_is_a_client_error).
    kind = draw(st.sampled_from(["form", "duplicated", "bytes", "json", "text/plain"]))
    if kind == "form":
        return _form(list(form.items()))
    if kind == "duplicated":
        items = list(form.items())
        again = draw(st.lists(st.tuples(st.sampled_from(TWILIO_FIELDS), VALUES), min_size=1, max_size=4))
        return _form(items + again)
    if kind == "bytes":
        raw = draw(st.binary(max_size=300)) + b"From=%FF%FE&CallSid=\xff\xfe\x80"
        return Body(raw, "application/x-www-form-urlencoded", {})
    if kind == "json":
        return Body(json.dumps(form).encode(), "application/json", {})
    return Body(urlencode(form).encode(), "text/plain", {})


def webhook_paths(harness: Harness) -> list[str]:
    """Every Twilio webhook the app serves (from its OpenAPI paths), with path parameters filled in."""
    schema = harness.app.openapi()["paths"]
    paths = [path for path, methods in schema.items() if "post" in methods]
    filled = {"{session_id}": secrets.token_hex(16), "{number}": "1"}
    result = []
    for path in paths:
        if path.startswith("/twilio"):
            for name, value in filled.items():
                path = path.replace(name, value)  # noqa: PLW2901 - the filled-in path is the one posted
            result.append(path)
    return sorted(set(result))


def check_answer(response: httpx.Response, path: str) -> None:
    """A 4xx, or a 2xx whose body is TwiML (or empty for a status callback's 204); never a 5xx."""
    assert response.status_code < 500, f"{path}: {response.status_code}: {response.text[:300]}"
    if response.status_code >= 400 or response.status_code == 204:
        return
    assert 200 <= response.status_code < 300
    assert response.headers["content-type"].startswith("application/xml")
    assert ET.fromstring(response.text).tag == "Response"  # noqa: S314 - our own server's answer


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_webhook_answers_random_bodies_safely(
    harness: Harness, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Signed (so the body reaches the handler) and unsigned, on every /twilio route."""
    paths = webhook_paths(harness)
    assert {"/twilio/voice", "/twilio/voice/status", "/twilio/sms", "/twilio/sms/status"} <= set(paths)
    statuses: dict[int, int] = {}

    @given(path=st.sampled_from(paths), body=bodies(), signed=st.booleans())
    @hypothesis_settings(
        max_examples=EXAMPLES * len(paths),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    def post(path: str, body: Body, signed: bool) -> None:
        headers = {"Content-Type": body.content_type}
        if signed:
            headers |= harness.signer.headers(f"{PUBLIC_BASE_URL}{path}", body.params)
        response = harness.run(harness.client.post(path, content=body.content, headers=headers))
        check_answer(response, path)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    post()
    assert any(200 <= status < 300 for status in statuses), f"no body reached a handler: {statuses}"
    assert 403 in statuses, f"no unsigned body was refused: {statuses}"
    files = list(Path(database_url.removeprefix("sqlite:///")).parent.glob("*.sqlite3*"))
    assert files
    assert plaintext_numbers(files, NUMBERS) == []
    assert [number for number in NUMBERS if number[3:] in caplog.text] == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_broken_multipart_is_a_client_error(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    """A multipart body that does not parse is the sender's error: a 4xx on every webhook, not a bug."""
    answers: dict[tuple[str, bool], int] = {}
    for path in webhook_paths(harness):
        for signed in (False, True):
            headers = {"Content-Type": "multipart/form-data; boundary=nothing"}
            if signed:
                headers |= harness.signer.headers(f"{PUBLIC_BASE_URL}{path}", {})
            response = harness.run(harness.client.post(path, content=b"From=x", headers=headers))
            answers[path, signed] = response.status_code
    assert {key: status for key, status in answers.items() if not 400 <= status < 500} == {}
    assert "failed" not in caplog.text
