"""SMS keywords: one word, any case, with or without accents (MENÚ = menu = Menu)."""

from __future__ import annotations

import unicodedata
from enum import StrEnum


class Keyword(StrEnum):
    """What a keyword asks for."""

    MENU = "menu"
    HELP = "help"
    LANGUAGE = "language"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    NEWS = "news"


KEYWORDS: dict[str, Keyword] = {
    "MENU": Keyword.MENU,
    "AYUDA": Keyword.HELP,
    "HELP": Keyword.HELP,
    "INFO": Keyword.HELP,
    "IDIOMA": Keyword.LANGUAGE,
    "SIMI": Keyword.LANGUAGE,
    "NOTICIAS": Keyword.NEWS,
    "WILLAKUY": Keyword.NEWS,
    # Twilio's own opt-out words are honoured too, so the carrier's list and ours never disagree.
    **dict.fromkeys(
        ("ALTO", "STOP", "PARAR", "BAJA", "CANCELAR", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"),
        Keyword.OPT_OUT,
    ),
    **dict.fromkeys(("START", "INICIO", "ALTA", "UNSTOP", "YES"), Keyword.OPT_IN),
}
"""Every keyword, written without accents in capitals."""
NEWS_LANGUAGES = {"WILLAKUY": "qu"}
"""A news keyword in another language also chooses that language when the caller has none yet."""
_TRIM = " \t\r\n.,;:!¡?¿\"'«»“”\u2018\u2019"


def normalize(text: str) -> str:
    """Capitals without accents or surrounding punctuation: ' Menú! ' -> 'MENU'."""
    decomposed = unicodedata.normalize("NFKD", text.strip(_TRIM))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).upper()


def keyword(text: str) -> tuple[Keyword, str] | None:
    """The keyword a message is, with its normalised word, or None (it must be a single word)."""
    word = normalize(text)
    if not word or any(c.isspace() for c in word):
        return None
    found = KEYWORDS.get(word)
    return (found, word) if found is not None else None
