"""SMS segments: GSM-7 or UCS-2 for Spanish and Quechua, exact segment counts, and pages that always fit."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.sms.segments import (
    GSM7_PER_SEGMENT,
    MAX_SEGMENTS,
    UCS2_PER_SEGMENT,
    Encoding,
    capacity,
    encoding,
    fits,
    length_units,
    paginate,
    segments,
)

EMOJI = "\N{GRINNING FACE}"
LEFT_QUOTE = "\N{LEFT DOUBLE QUOTATION MARK}"
RIGHT_QUOTE = "\N{RIGHT DOUBLE QUOTATION MARK}"
APOSTROPHE = "\N{RIGHT SINGLE QUOTATION MARK}"

ASCII_SUFFIX = "\n({page}/{pages}) Responda 0 para seguir"
SPANISH_SUFFIX = "\n({page}/{pages}) Envíe 0 para leer más"

AUDIENCE = (
    "La municipalidad convoca a una audiencia pública sobre el estudio de impacto ambiental del proyecto "
    "minero. La reunión será el sábado a las nueve de la mañana en el local comunal. Cualquier persona "
    "puede participar y hacer preguntas, en castellano o en quechua. Habrá intérpretes para quienes lo "
    "necesiten. Si no puede asistir, puede dejar su opinión por este número: marque 2 y hable después del "
    "tono. Su nombre no se publicará y su número de teléfono no se guarda con su mensaje. Las opiniones "
    "se leerán en voz alta durante la audiencia y se enviarán por escrito a la autoridad ambiental. "
    "También puede pedir una copia del resumen ejecutivo del estudio en la oficina de participación "
    "ciudadana, de lunes a viernes, de ocho de la mañana a una de la tarde. El resumen explica qué agua "
    "usará la mina, cuánta tierra se moverá, qué caminos se abrirán y cómo se cuidarán los manantiales. "
    "Si el agua de su chacra cambió de color o de sabor, avise cuanto antes: marque 3 y cuente qué vio, "
    "dónde y cuándo. Un promotor de salud lo llamará en los días siguientes. Si necesita ayuda legal, la "
    "defensoría atiende los martes y jueves en la plaza principal, sin costo. Recuerde que nadie puede "
    "obligarlo a firmar un documento que no entiende. Pida siempre que le lean el texto completo y que "
    "le den una copia. Las comunidades campesinas tienen derecho a la consulta previa, libre e "
    "informada. Esto quiere decir que deben recibir la información a tiempo, en su idioma y sin "
    "presiones. Si alguien le ofrece dinero o regalos a cambio de su firma, puede denunciarlo de forma "
    "anónima. Gracias por llamar a esta línea. Para volver al menú principal, responda con la letra M."
)


def template(text: str) -> Callable[[int, int], str]:
    """A continuation from a flow-file template with {page} and {pages}."""
    return lambda page, pages: text.format(page=page, pages=pages)


def bodies(pages: list[str], suffix: str) -> list[str]:
    """The pages without their continuation, checking each suffix names its page out of the right total."""
    more = template(suffix)
    stripped = []
    for number, page in enumerate(pages[:-1], start=1):
        assert page.endswith(more(number, len(pages)))
        stripped.append(page.removesuffix(more(number, len(pages))))
    return [*stripped, pages[-1]]


# ---------------------------------------------------------------- encoding and length


def test_pure_ascii_segment_boundaries() -> None:
    """Plain ASCII is GSM-7: 160 septets in one SMS, then 153 per segment."""
    assert [segments("a" * n) for n in (1, 160, 161, 306, 307, 459, 460)] == [1, 1, 2, 2, 3, 3, 4]
    assert encoding("a" * 161) is Encoding.GSM7
    assert length_units("a" * 161) == 161


def test_empty_text_is_one_gsm_segment() -> None:
    """An empty reply is still one SMS and needs no UCS-2."""
    assert (encoding(""), length_units(""), segments(""), fits("")) == (Encoding.GSM7, 0, 1, True)


def test_two_segments_hold_306_septets_or_134_units() -> None:
    """The reply budget of two segments in each encoding."""
    assert capacity(Encoding.GSM7) == MAX_SEGMENTS * GSM7_PER_SEGMENT == 306
    assert capacity(Encoding.UCS2) == MAX_SEGMENTS * UCS2_PER_SEGMENT == 134
    assert (capacity(Encoding.GSM7, 1), capacity(Encoding.UCS2, 1)) == (160, 70)


def test_capacity_needs_a_segment() -> None:
    """Zero segments is a caller's mistake, not an empty budget."""
    with pytest.raises(ValueError, match="at least 1"):
        capacity(Encoding.GSM7, 0)


@pytest.mark.parametrize("text", ["ñ é ü ¿ ¡", "Ñ É Ü à è ì ò ù Ç Ø ø Å å Æ æ ß ä ö Ä Ö §", "@£$¥¤_\r\n"])
def test_gsm7_accents_stay_gsm7(text: str) -> None:
    """The accented letters of the GSM alphabet keep a text in GSM-7 at one septet each."""
    assert encoding(text) is Encoding.GSM7
    assert length_units(text) == len(text)


@pytest.mark.parametrize("accent", ["á", "í", "ó", "ú", "Á", "Í", "Ó", "Ú", "ç"])
def test_accent_outside_gsm7_forces_ucs2(accent: str) -> None:
    """Spanish acute accents other than é are not in GSM-7, so one of them makes the text UCS-2."""
    assert encoding("a" * 100 + accent) is Encoding.UCS2


def test_ucs2_segment_boundaries() -> None:
    """A single á flips to UCS-2: 70 units in one SMS, then 67 per segment."""
    lengths = (70, 71, 134, 135)
    assert [segments("á" + "a" * (n - 1)) for n in lengths] == [1, 2, 2, 3]
    assert [fits("á" + "a" * (n - 1)) for n in lengths] == [True, True, True, False]
    assert length_units("á" + "a" * 133) == 134


def test_extension_characters_count_double() -> None:
    """Each character of the extension table costs the escape septet plus its own."""
    assert (length_units("{" * 80), segments("{" * 80)) == (160, 1)
    assert (length_units("{" * 81), segments("{" * 81)) == (162, 2)
    assert [length_units(char) for char in "^{}\\[~]|€\f"] == [2] * 10
    assert encoding("Costo: 5 € [aprox.]") is Encoding.GSM7


def test_extension_character_never_straddles_segments() -> None:
    """An escape pair that would cross a segment boundary moves whole to the next segment."""
    text = "a" * 152 + "{" + "a" * 152
    assert length_units(text) == 306
    assert segments(text) == 3
    assert not fits(text)


@pytest.mark.parametrize(
    "text", [f"Diga {LEFT_QUOTE}sí{RIGHT_QUOTE}", f"Diga {LEFT_QUOTE}si{RIGHT_QUOTE}", "Gracias " + EMOJI]
)
def test_curly_quotes_and_emoji_force_ucs2(text: str) -> None:
    """Typographic quotes and emoji are outside GSM-7."""
    assert encoding(text) is Encoding.UCS2


def test_emoji_counts_two_units() -> None:
    """An emoji outside the BMP is a surrogate pair in UTF-16."""
    assert length_units(EMOJI) == 2
    assert length_units("a" * 68 + EMOJI) == 70
    assert segments("a" * 68 + EMOJI) == 1
    assert segments("a" * 69 + EMOJI) == 2


def test_surrogate_pair_never_straddles_segments() -> None:
    """An emoji that would cross a segment boundary moves whole to the next segment."""
    text = "á" * 66 + EMOJI + "a" * 66
    assert length_units(text) == 134
    assert segments(text) == 3


def test_real_spanish_is_classified() -> None:
    """Spanish with á, í, ó or ú is UCS-2; Spanish with only é, ñ, ¿ and ¡ stays GSM-7."""
    assert encoding("Para participar en la audiencia pública, acérquese a la municipalidad.") is Encoding.UCS2
    assert encoding("¿Qué necesita? ¡Bienvenido a la línea!") is Encoding.UCS2
    assert encoding("Señora, ¿qué necesita? ¡Bienvenida! Marque 1 para el agua.") is Encoding.GSM7


def test_real_quechua_is_classified() -> None:
    """Quechua with the ASCII apostrophe stays GSM-7; a typographic apostrophe makes it UCS-2."""
    assert encoding("Runasimipaq, iskayta ñit'iy.") is Encoding.GSM7
    assert encoding("Allinllachu. Rimayman allin hamusqayki.") is Encoding.GSM7
    assert encoding(f"Runasimipaq, iskayta ñit{APOSTROPHE}iy.") is Encoding.UCS2


# ---------------------------------------------------------------- pagination


def test_short_text_is_one_page_unchanged() -> None:
    """A reply that already fits is returned as it is, whitespace included."""
    text = "  Allinllachu.\nRimayman allin hamusqayki.  "
    assert paginate(text, more=template(ASCII_SUFFIX)) == [text]


def test_empty_text_is_one_empty_page() -> None:
    """An empty reply is one empty page, not none."""
    assert paginate("", more=template(ASCII_SUFFIX)) == [""]


def test_long_spanish_text_pages_fit_and_rejoin() -> None:
    """A long accented reply becomes numbered pages of at most two segments that rejoin to the text."""
    assert len(AUDIENCE) > 1600
    pages = paginate(AUDIENCE, more=template(SPANISH_SUFFIX))
    assert len(pages) >= 10
    assert all(fits(page) for page in pages)
    assert all(encoding(page) is Encoding.UCS2 for page in pages)
    texts = bodies(pages, SPANISH_SUFFIX)
    assert " ".join(texts) == AUDIENCE
    assert sum(text.endswith(".") for text in texts) > len(texts) // 2


def test_page_count_in_suffix_is_right() -> None:
    """Every continuation names its own page and the final number of pages."""
    pages = paginate(AUDIENCE, more=template(ASCII_SUFFIX))
    assert pages[0].endswith(f"\n(1/{len(pages)}) Responda 0 para seguir")
    assert pages[-2].endswith(f"\n({len(pages) - 1}/{len(pages)}) Responda 0 para seguir")
    assert "Responda 0" not in pages[-1]


def test_gsm7_text_with_ucs2_suffix_is_budgeted_as_ucs2() -> None:
    """Plain text with a suffix in accented Spanish is sent as UCS-2, so its pages get 134 units, not 306."""
    text = " ".join(["Allinllachu. Rimayman allin hamusqayki."] * 20)
    assert encoding(text) is Encoding.GSM7
    pages = paginate(text, more=template(SPANISH_SUFFIX))
    assert all(encoding(page) is Encoding.UCS2 for page in pages[:-1])
    assert all(length_units(page) <= 134 for page in pages[:-1])
    assert all(fits(page) for page in pages)
    assert " ".join(bodies(pages, SPANISH_SUFFIX)) == text


def test_gsm7_text_with_gsm7_suffix_uses_306_septets() -> None:
    """With a suffix in GSM-7 the pages of a GSM-7 text use the larger budget."""
    text = " ".join(["Allinllachu. Rimayman allin hamusqayki."] * 20)
    pages = paginate(text, more=template(ASCII_SUFFIX))
    assert all(encoding(page) is Encoding.GSM7 for page in pages)
    assert max(length_units(page) for page in pages[:-1]) > 134
    assert " ".join(bodies(pages, ASCII_SUFFIX)) == text


def test_long_word_is_hard_split() -> None:
    """A word longer than a page is cut where the page is full and nothing of it is lost."""
    word = "a" * 500
    pages = paginate(word, more=template(ASCII_SUFFIX))
    texts = bodies(pages, ASCII_SUFFIX)
    assert "".join(texts) == word
    assert len(texts[0]) == 306 - len(template(ASCII_SUFFIX)(1, 2))
    assert all(fits(page) for page in pages)


def test_breaks_prefer_sentence_ends() -> None:
    """A page ends after a sentence rather than after the last word that fits."""
    text = "a" * 200 + ". " + "b " * 60
    pages = paginate(text, more=template(ASCII_SUFFIX))
    assert bodies(pages, ASCII_SUFFIX)[0] == "a" * 200 + "."


def test_breaks_prefer_line_breaks() -> None:
    """A line break is as good a place to end a page as a sentence end."""
    first = "Marque 1 para agua " * 9 + "y tierra"
    text = first + "\n" + "Marque 2 para tierra " * 20
    pages = paginate(text, more=template(ASCII_SUFFIX))
    assert bodies(pages, ASCII_SUFFIX)[0] == first


def test_early_sentence_end_is_not_worth_a_mostly_empty_page() -> None:
    """A sentence end that would leave the page less than half full loses to a later word break."""
    text = "Hola. " + "palabra " * 100
    first = bodies(paginate(text, more=template(ASCII_SUFFIX)), ASCII_SUFFIX)[0]
    assert len(first) > 200


def test_newlines_inside_a_page_are_kept() -> None:
    """Only whitespace at a page break is collapsed; line breaks inside a page stay."""
    text = "\n".join(f"{n}. Opcion numero {n} del menu principal." for n in range(1, 21))
    texts = bodies(paginate(text, more=template(ASCII_SUFFIX)), ASCII_SUFFIX)
    assert "\n".join(texts) == text


def test_suffix_without_room_is_an_error() -> None:
    """A continuation that fills the whole budget leaves nothing to page and says so."""
    with pytest.raises(ValueError, match="leaves no room"):
        paginate("a " * 400, more=lambda page, pages: "b" * 306)


def test_paginate_needs_a_segment() -> None:
    """Zero segments per page is a caller's mistake."""
    with pytest.raises(ValueError, match="at least 1"):
        paginate("a", more=template(ASCII_SUFFIX), max_segments=0)


def test_one_segment_pages() -> None:
    """A budget of one segment gives pages of at most 160 septets."""
    pages = paginate(" ".join(["Allinllachu."] * 40), more=template(ASCII_SUFFIX), max_segments=1)
    assert all(segments(page) == 1 for page in pages)
    assert all(length_units(page) <= 160 for page in pages)


# ---------------------------------------------------------------- properties

WORDS = st.text(
    alphabet=st.sampled_from([*"aeiouñtkqáéó'{€.,?!", EMOJI, LEFT_QUOTE]), min_size=1, max_size=12
)
SPACES = st.sampled_from([" ", " ", " ", "\n", "  ", " \n\n", "\t"])
SENTENCES = st.lists(st.tuples(WORDS, SPACES), max_size=400).map(
    lambda pairs: "".join(word + space for word, space in pairs)
)
SUFFIXES = st.sampled_from([ASCII_SUFFIX, SPANISH_SUFFIX, " +{page}", "\n{page}/{pages} " + EMOJI])


def check_pages(text: str, suffix: str, max_segments: int) -> None:
    """Every page fits, the numbering is right and no non-whitespace character is lost or moved."""
    pages = paginate(text, more=template(suffix), max_segments=max_segments)
    assert pages
    assert all(fits(page, max_segments) for page in pages)
    texts = bodies(pages, suffix)
    assert "".join("".join(page.split()) for page in texts) == "".join(text.split())


@settings(max_examples=300, deadline=None, database=None)
@given(text=st.text(), suffix=SUFFIXES, max_segments=st.integers(1, 3))
def test_any_text_pages_fit_and_lose_nothing(text: str, suffix: str, max_segments: int) -> None:
    """Any text at all, emoji and newlines included, pages into fitting pages without losing text."""
    check_pages(text, suffix, max_segments)


@settings(max_examples=150, deadline=None, database=None)
@given(text=SENTENCES, suffix=SUFFIXES, max_segments=st.integers(1, 3))
def test_long_mixed_texts_page_fit_and_lose_nothing(text: str, suffix: str, max_segments: int) -> None:
    """Long texts of GSM-7, UCS-2, extension and emoji words page into fitting pages without loss."""
    check_pages(text, suffix, max_segments)


@settings(max_examples=100, deadline=None, database=None)
@given(text=st.text(min_size=300, max_size=3000), suffix=SUFFIXES)
def test_long_random_texts_page_fit_and_lose_nothing(text: str, suffix: str) -> None:
    """Long runs of any characters, mostly with no spaces at all, are hard-split without loss."""
    check_pages(text, suffix, MAX_SEGMENTS)
