"""Privacy: pseudonyms that cannot be reversed, separate sub-keys, and no phone number in any log line."""

from __future__ import annotations

import hashlib
import io
import logging
import re
from collections.abc import Iterator

import pytest
from uvicorn.logging import AccessFormatter

from app.privacy.keys import KeyPurpose, derive_key
from app.privacy.masking import (
    MASK,
    PhoneMaskingFilter,
    install_masking,
    mask_caller_text,
    mask_phone_numbers,
)
from app.privacy.pseudonym import Pseudonymizer, normalize_e164

MASTER = b"test-master-secret-0123456789abcdef"
NUMBER = "+51987654321"

# ---------------------------------------------------------------- pseudonyms and keys


def test_pseudonym_is_stable() -> None:
    """The same key and number always give the same pseudonym, so a caller is recognised."""
    assert Pseudonymizer(MASTER).pseudonym(NUMBER) == Pseudonymizer(MASTER).pseudonym(NUMBER)


def test_pseudonym_depends_on_the_key() -> None:
    """Another deployment's key gives another pseudonym for the same number."""
    assert Pseudonymizer(MASTER).pseudonym(NUMBER) != Pseudonymizer(b"another-master-secret").pseudonym(
        NUMBER
    )


def test_pseudonym_differs_per_number() -> None:
    """Two callers get two pseudonyms."""
    assert Pseudonymizer(MASTER).pseudonym(NUMBER) != Pseudonymizer(MASTER).pseudonym("+51987654322")


def test_pseudonym_is_not_a_plain_hash() -> None:
    """A plain hash of a phone number could be reversed by trying every number."""
    assert Pseudonymizer(MASTER).pseudonym(NUMBER) != hashlib.sha256(NUMBER.encode()).hexdigest()


def test_pseudonym_is_64_hex_characters() -> None:
    """A pseudonym is an HMAC-SHA256 hex digest."""
    assert re.fullmatch(r"[0-9a-f]{64}", Pseudonymizer(MASTER).pseudonym(NUMBER))


@pytest.mark.parametrize("raw", ["+51987654321", "+51 987 654 321", " +51 (987) 654-321 ", "+51.987.654.321"])
def test_normalize_e164_accepts_numbers(raw: str) -> None:
    """Spaces, dots, dashes and brackets are dropped from an E.164 number."""
    assert normalize_e164(raw) == "+51987654321"


@pytest.mark.parametrize(
    "raw",
    [
        "anonymous",
        "client:alice",
        "sip:x@y",
        "",
        None,
        "+0123",
        "+123",
        "51987654321",
        "+266696687",
        "+7378742833",
        "+8656696",
        "+2562533",
        "+86282452253",
    ],
)
def test_normalize_e164_rejects_non_numbers(raw: str | None) -> None:
    """Withheld numbers, SIP and client identities and malformed numbers give None."""
    assert normalize_e164(raw) is None


def test_derive_key_differs_per_purpose() -> None:
    """Each purpose gets its own 32-byte key from the same master secret."""
    keys = {purpose: derive_key(MASTER, purpose) for purpose in KeyPurpose}
    assert len(set(keys.values())) == len(KeyPurpose)
    assert all(len(key) == 32 for key in keys.values())
    assert derive_key(MASTER, KeyPurpose.SESSION) == keys[KeyPurpose.SESSION]
    assert MASTER not in keys.values()


# ---------------------------------------------------------------- masking text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("+51987654321", MASK),
        ("+51 987 654 321", MASK),
        ("%2B51987654321", MASK),
        ("%2b51987654321", MASK),
        ("51987654321", MASK),
        ("+51-987-654-321", MASK),
        ("From=%2B51987654321&To=%2B15005550006", f"From={MASK}&To={MASK}"),
        ("caller +51 987 654 321 pressed 1", f"caller {MASK} pressed 1"),
    ],
)
def test_mask_phone_numbers(text: str, masked: str) -> None:
    """Numbers with a plus, URL-encoded, with separators or bare are masked."""
    assert mask_phone_numbers(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-25 05:12:27",
        "2026-11-25T05:12:27.123456+00:00",
        "CallSid=CA0123456789abcdef0123456789abcd",
        "CA0123456789abcdef0123456789abcd",
        "step 12",
        "took 1234 ms",
        "127.0.0.1:8000",
    ],
)
def test_mask_leaves_other_numbers_alone(text: str) -> None:
    """Dates, times, Twilio ids and small counts stay readable."""
    assert mask_phone_numbers(text) == text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("964 123 987", MASK),
        ("9 6 4 1 2 3 9 8 7", MASK),
        ("(064) 123-987", MASK),
        ("llamen al 964.123.987 por favor", f"llamen al {MASK} por favor"),
        ("111" + "51964123987" + "111", MASK),
        ("1" * 5000, MASK),
        ("+51964123987", MASK),
        ("escribo 2 veces 123456", "escribo 2 veces 123456"),
        ("12", "12"),
        ("*", "*"),
    ],
)
def test_mask_caller_text(text: str, masked: str) -> None:
    """What a caller types or keys in loses every digit run that could hold a number; short ones stay."""
    assert mask_caller_text(text) == masked


# ---------------------------------------------------------------- the logging filter


@pytest.fixture
def log_output() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A private logger writing `%(message)s` lines to a string, through a masking handler."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(PhoneMaskingFilter())
    logger = logging.getLogger("rimay.tests.privacy")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def test_filter_masks_message_built_from_args(log_output: tuple[logging.Logger, io.StringIO]) -> None:
    """A number passed as a `%s` argument is masked after formatting."""
    logger, stream = log_output
    logger.info("call from %s at step %d", NUMBER, 12)
    assert stream.getvalue() == f"call from {MASK} at step 12\n"


def test_filter_masks_a_dict_argument(log_output: tuple[logging.Logger, io.StringIO]) -> None:
    """A number inside a dict argument (e.g. a webhook form) is masked."""
    logger, stream = log_output
    logger.info("form %s", {"From": NUMBER, "Digits": "1"})
    assert stream.getvalue() == f"form {{'From': '{MASK}', 'Digits': '1'}}\n"


def test_filter_masks_named_dict_arguments(log_output: tuple[logging.Logger, io.StringIO]) -> None:
    """`%(name)s` formatting with a mapping is masked too."""
    logger, stream = log_output
    logger.info("from %(From)s", {"From": "%2B51987654321"})
    assert stream.getvalue() == f"from {MASK}\n"


def find_caller(number: str) -> None:
    """Fail the way a lookup that names the number would."""
    raise LookupError(f"no caller for {number}")


def test_filter_masks_a_traceback(log_output: tuple[logging.Logger, io.StringIO]) -> None:
    """A number in an exception message does not leak through the logged traceback."""
    logger, stream = log_output
    try:
        find_caller(NUMBER)
    except LookupError:
        logger.exception("lookup failed")
    output = stream.getvalue()
    assert output.startswith("lookup failed\nTraceback (most recent call last):\n")
    assert f"LookupError: no caller for {MASK}" in output
    assert "987654321" not in output


def test_filter_masks_stack_info() -> None:
    """A number in a record's stack info is masked."""
    record = logging.LogRecord("rimay", logging.INFO, __file__, 1, "hi", None, None, sinfo=f"Stack: {NUMBER}")
    assert PhoneMaskingFilter().filter(record)
    assert record.stack_info == f"Stack: {MASK}"


def test_filter_keeps_uvicorn_access_args_a_tuple() -> None:
    """Uvicorn's access formatter still unpacks the masked arguments."""
    args = ("127.0.0.1:50000", "POST", "/voice/gather?From=%2B51987654321", "1.1", 200)
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', args, None
    )
    assert PhoneMaskingFilter().filter(record)
    assert isinstance(record.args, tuple)
    formatter = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False)
    assert formatter.format(record) == f'127.0.0.1:50000 - "POST /voice/gather?From={MASK} HTTP/1.1" 200 OK'


def test_install_masking_attaches_once() -> None:
    """Installing twice leaves one filter per handler of the named loggers."""
    logger = logging.getLogger("rimay.tests.install")
    handler = logging.StreamHandler(io.StringIO())
    logger.addHandler(handler)
    try:
        install_masking(["rimay.tests.install"])
        install_masking(["rimay.tests.install"])
        assert [type(f) for f in handler.filters] == [PhoneMaskingFilter]
    finally:
        logger.removeHandler(handler)


def test_malformed_log_call_does_not_raise(
    log_output: tuple[logging.Logger, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like plain logging, a log call whose arguments do not fit its message never raises at the call site."""
    monkeypatch.setattr(logging, "raiseExceptions", False)
    logger, _ = log_output
    logger.info("call from %s at step %d", NUMBER)  # noqa: PLE1206 (the mistake under test)
