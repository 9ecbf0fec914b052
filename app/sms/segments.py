"""SMS length: GSM-7 or UCS-2, segments per text, and pages of a long reply that each fit a budget."""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from typing import TypeAlias


class Encoding(enum.StrEnum):
    """How a carrier sends a text: the 7-bit GSM alphabet, or UCS-2 as soon as one character is outside it."""

    GSM7 = "gsm7"
    UCS2 = "ucs2"


Continuation: TypeAlias = Callable[[int, int], str]
"""The suffix of a page that has more after it, from the page number (from 1) and the number of pages."""

MAX_SEGMENTS = 2
GSM7_SINGLE = 160
GSM7_PER_SEGMENT = 153  # a concatenated segment gives 7 septets to the header that orders the parts
UCS2_SINGLE = 70
UCS2_PER_SEGMENT = 67

# GSM 03.38 default alphabet, one row per line in code-point order; 0x1B is the escape to the extension
# table, not a character, so the second row has 15.
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "\N{GREEK CAPITAL LETTER DELTA}_\N{GREEK CAPITAL LETTER PHI}\N{GREEK CAPITAL LETTER GAMMA}"
    "\N{GREEK CAPITAL LETTER LAMDA}\N{GREEK CAPITAL LETTER OMEGA}\N{GREEK CAPITAL LETTER PI}"
    "\N{GREEK CAPITAL LETTER PSI}\N{GREEK CAPITAL LETTER SIGMA}\N{GREEK CAPITAL LETTER THETA}"
    "\N{GREEK CAPITAL LETTER XI}ÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# The basic extension table: each is sent as the escape septet plus its own, so it costs two.
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

_SENTENCE_ENDS = frozenset(".!?…")
_CLOSERS = frozenset("\"')]»\N{RIGHT DOUBLE QUOTATION MARK}\N{RIGHT SINGLE QUOTATION MARK}")


def _unit_sizes(text: str) -> tuple[Encoding, list[int]]:
    """The encoding of the text and what each character costs in it (septets or UTF-16 code units)."""
    if all(char in _GSM7_BASIC or char in _GSM7_EXTENSION for char in text):
        return Encoding.GSM7, [2 if char in _GSM7_EXTENSION else 1 for char in text]
    return Encoding.UCS2, [2 if ord(char) > 0xFFFF else 1 for char in text]


def encoding(text: str) -> Encoding:
    """GSM-7 if every character is in the basic alphabet or its extension table, otherwise UCS-2."""
    return _unit_sizes(text)[0]


def length_units(text: str) -> int:
    """Septets for GSM-7 (extension characters count two), UTF-16 code units for UCS-2."""
    return sum(_unit_sizes(text)[1])


def capacity(encoding: Encoding, max_segments: int = MAX_SEGMENTS) -> int:
    """The units that fit in that many segments: 306 septets or 134 UCS-2 units for two."""
    if max_segments < 1:
        raise ValueError(f"max_segments must be at least 1, not {max_segments}")
    if encoding is Encoding.GSM7:
        return GSM7_SINGLE if max_segments == 1 else GSM7_PER_SEGMENT * max_segments
    return UCS2_SINGLE if max_segments == 1 else UCS2_PER_SEGMENT * max_segments


def segments(text: str) -> int:
    """How many segments the text is sent in; an empty text is still one SMS."""
    encoded, sizes = _unit_sizes(text)
    if sum(sizes) <= capacity(encoded, 1):
        return 1
    per_segment = GSM7_PER_SEGMENT if encoded is Encoding.GSM7 else UCS2_PER_SEGMENT
    if all(size == 1 for size in sizes):
        return math.ceil(len(sizes) / per_segment)
    # Senders never cut an escape pair or a surrogate pair in two, so such a character that would
    # straddle a boundary starts the next segment and can cost one more segment than ceil(n / 153).
    count, used = 1, 0
    for size in sizes:
        if used + size > per_segment:
            count, used = count + 1, 0
        used += size
    return count


def fits(text: str, max_segments: int = MAX_SEGMENTS) -> bool:
    """Whether the text is sent in at most max_segments segments."""
    return segments(text) <= max_segments


def paginate(text: str, *, more: Continuation, max_segments: int = MAX_SEGMENTS) -> list[str]:
    """Pages of the text that each fit in max_segments, with more(page, pages) after all but the last."""
    if max_segments < 1:
        raise ValueError(f"max_segments must be at least 1, not {max_segments}")
    if fits(text, max_segments):
        return [text]
    body = text.strip()
    # The suffix may name the page count, and its length may change that count, so lay out again with
    # the count found until the numbering agrees with the pages; page counts are finite, so this ends.
    tried: set[int] = set()
    pages = 2
    while pages not in tried:
        tried.add(pages)
        bodies = _layout(body, more, pages, max_segments)
        numbered = _numbered(bodies, more, max_segments)
        if numbered is not None:
            return numbered
        pages = len(bodies)
    raise ValueError(f"the continuation text keeps changing the page count (tried {sorted(tried)})")


def _layout(text: str, more: Continuation, pages: int, max_segments: int) -> list[str]:
    """Page bodies, each followed by more(page, pages) except the last, broken as late as fits."""
    most_chars = capacity(Encoding.GSM7, max_segments)
    bodies: list[str] = []
    start = 0
    while len(text) - start > most_chars or not fits(text[start:], max_segments):
        suffix = more(len(bodies) + 1, pages)
        limit = _longest_fit(text, start, suffix, max_segments)
        if limit == start:
            raise ValueError(f"the continuation text {suffix!r} leaves no room in {max_segments} segments")
        end = _break(text, start, limit)
        bodies.append(text[start:end])
        start = _skip_space(text, end)
    bodies.append(text[start:])
    return bodies


def _numbered(bodies: list[str], more: Continuation, max_segments: int) -> list[str] | None:
    """The pages with their suffixes numbered out of len(bodies), or None if one no longer fits."""
    count = len(bodies)
    pages = [body + more(page, count) for page, body in enumerate(bodies[:-1], start=1)]
    pages.append(bodies[-1])
    return pages if all(fits(page, max_segments) for page in pages) else None


def _longest_fit(text: str, start: int, suffix: str, max_segments: int) -> int:
    """The furthest end such that text[start:end] plus the suffix fits; start if not one character does."""
    # Fitting is monotonic in the end: a shorter prefix never costs more, even if it stays GSM-7.
    low, high = start, min(len(text), start + capacity(Encoding.GSM7, max_segments))
    while low < high:
        middle = (low + high + 1) // 2
        if fits(text[start:middle] + suffix, max_segments):
            low = middle
        else:
            high = middle - 1
    return low


def _break(text: str, start: int, limit: int) -> int:
    """Where a page from start that may run up to limit ends: a sentence, else a word, else mid-word."""
    word = sentence = start
    for end in range(start + 1, min(limit, len(text) - 1) + 1):
        if text[end].isspace() and not text[end - 1].isspace():
            word = end
            if _ends_sentence(text, end):
                sentence = end
    # An earlier sentence end is worth it only while it leaves the page at least half full; otherwise
    # the reply would cost more pages than the reader gains from whole sentences.
    if sentence > start and 2 * (sentence - start) >= word - start:
        return sentence
    return word if word > start else limit


def _ends_sentence(text: str, end: int) -> bool:
    """Whether the word that stops at end closes a sentence or the whitespace after it holds a line break."""
    before = end
    while before > 0 and text[before - 1] in _CLOSERS:
        before -= 1
    if before > 0 and text[before - 1] in _SENTENCE_ENDS:
        word = before - 1
        while word > 0 and not text[word - 1].isspace():
            word -= 1
        # "3." numbers an option of a menu; it does not close a sentence.
        return not text[word : before - 1].isdigit()
    return any(char in "\n\r" for char in text[end : _skip_space(text, end)])


def _skip_space(text: str, index: int) -> int:
    """The first index at or after index that is not whitespace (or the end of the text)."""
    while index < len(text) and text[index].isspace():
        index += 1
    return index
