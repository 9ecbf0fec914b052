"""The manifest of generated drafts: what synthesizer, voice and text made each file."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


def fingerprint(synthesizer_id: str, voice: str, text: str) -> str:
    """Hash of everything that shapes a generated file; a different value makes the file stale."""
    # JSON keeps the three parts unambiguous, whatever characters the text holds.
    return hashlib.sha256(json.dumps([synthesizer_id, voice, text]).encode()).hexdigest()


def text_digest(text: str) -> str:
    """Hash of a prompt's text alone, so a report can spot stale drafts without a synthesizer."""
    return hashlib.sha256(text.encode()).hexdigest()


class ManifestEntry(BaseModel):
    """How one generated file was made."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    fingerprint: str
    text_sha256: str
    synthesizer: str
    voice: str


class _ManifestFile(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: int = MANIFEST_VERSION
    files: dict[str, ManifestEntry] = {}


class Manifest:
    """Entries keyed by the generated file's path relative to the generated dir."""

    def __init__(self, path: Path, entries: dict[str, ManifestEntry] | None = None) -> None:
        self.path = path
        self.entries = dict(entries or {})

    @classmethod
    def load(cls, generated_dir: Path) -> Manifest:
        """Read the manifest; a missing or unreadable one is empty, which makes every draft stale."""
        path = generated_dir / MANIFEST_NAME
        try:
            data = _ManifestFile.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValidationError) as error:
            log.warning("audio manifest %s is unreadable (%s); all drafts will be regenerated", path, error)
            return cls(path)
        return cls(path, data.files)

    def get(self, language: str, flow_id: str, key: str) -> ManifestEntry | None:
        """Return the entry of a prompt's generated file, if any."""
        return self.entries.get(entry_name(language, flow_id, key))

    def put(self, language: str, flow_id: str, key: str, entry: ManifestEntry) -> None:
        """Record how a prompt's generated file was made."""
        self.entries[entry_name(language, flow_id, key)] = entry

    def save(self) -> None:
        """Write the manifest atomically, so a crash never leaves half a file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = _ManifestFile(files=dict(sorted(self.entries.items())))
        fd, temp_name = tempfile.mkstemp(prefix=f".{MANIFEST_NAME}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(data.model_dump_json(indent=2))
            os.replace(temp_name, self.path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise


def entry_name(language: str, flow_id: str, key: str) -> str:
    """Manifest key of a prompt: its generated file's relative path."""
    return f"{language}/{flow_id}/{key}.mp3"
