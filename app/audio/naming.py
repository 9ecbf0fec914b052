"""Safe names for languages, flows, prompt keys and audio files."""

from __future__ import annotations

import re

# Same shapes as the flow model's LanguageTag and NodeId; a prompt key may carry the `_` of system prompts.
LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
FLOW_ID = re.compile(r"[a-z][a-z0-9_]{0,63}")
PROMPT_KEY = re.compile(r"_?[a-z][a-z0-9_]{0,63}")

# Ordered by preference: when a prompt has both, the smaller MP3 wins.
MEDIA_TYPES = {".mp3": "audio/mpeg", ".wav": "audio/wav"}


def is_language(value: str) -> bool:
    """True for a language tag that is safe as a directory name."""
    return LANGUAGE.fullmatch(value) is not None


def is_flow_id(value: str) -> bool:
    """True for a flow id that is safe as a directory name."""
    return FLOW_ID.fullmatch(value) is not None


def split_filename(filename: str) -> tuple[str, str] | None:
    """Split ``<key><ext>`` into key and extension, or None for anything unsafe or unknown."""
    stem, dot, ext = filename.rpartition(".")
    if not dot or f".{ext}" not in MEDIA_TYPES or PROMPT_KEY.fullmatch(stem) is None:
        return None
    return stem, f".{ext}"
