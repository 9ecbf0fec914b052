"""Find the audio for a prompt, recorded first then generated, from an in-memory index."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from app.audio.naming import MEDIA_TYPES, is_flow_id, is_language, split_filename

AudioSource = Literal["recorded", "generated"]
VERSION_LENGTH = 12
DEFAULT_CHECK_INTERVAL = 3.0
# File times tick in coarse steps (a kernel jiffy), so two changes a few ms apart can leave the same
# mtime; a stamp this young is not trusted to prove that nothing changed.
_SETTLE_NS = 2_000_000_000

_PromptId = tuple[str, str, str]
"""(language, flow id, prompt key)."""
_Stamp = tuple[int, int, int]
"""(inode, size, mtime_ns): changes whenever a file is replaced or rewritten."""
_Signature = tuple[tuple[str, int], ...]
_SOURCE_RANK: dict[AudioSource, int] = {"recorded": 0, "generated": 1}
_EXT_RANK = {ext: rank for rank, ext in enumerate(MEDIA_TYPES)}


@dataclass(frozen=True)
class AudioFile:
    """One servable audio file and the URL that names its current content."""

    path: Path
    media_type: str
    etag: str
    source: AudioSource
    url_path: str
    version: str


@dataclass(frozen=True)
class _Index:
    """An immutable snapshot, swapped whole so readers never need the lock."""

    files: dict[_PromptId, AudioFile]
    stamps: dict[Path, _Stamp]
    signature: _Signature
    settled: bool


class AudioLibrary:
    """Recorded and generated prompt audio, indexed in memory and refreshed when the tree changes."""

    def __init__(
        self, recorded_dir: Path, generated_dir: Path, *, check_interval: float = DEFAULT_CHECK_INTERVAL
    ) -> None:
        self.recorded_dir = recorded_dir
        self.generated_dir = generated_dir
        self.check_interval = check_interval
        self._lock = threading.Lock()
        self._index: _Index | None = None
        self._checked_at = 0.0
        # Survives rebuilds so a refresh only hashes files that changed.
        self._digests: dict[Path, tuple[_Stamp, str]] = {}

    def lookup(self, language: str, flow_id: str, key: str) -> AudioFile | None:
        """Return the audio for a prompt (a recording wins over a generated draft), or None."""
        return self._current().files.get((language, flow_id, key))

    def resolve_file(self, language: str, flow_id: str, filename: str) -> AudioFile | None:
        """Return the file the HTTP route may serve for ``<key><ext>``, or None if unknown or unsafe."""
        if not (is_language(language) and is_flow_id(flow_id)):
            return None
        parts = split_filename(filename)
        if parts is None:
            return None
        key, ext = parts
        index = self._current()
        found = _served(index, (language, flow_id, key), ext)
        if found is None or _stamp(found.path) == index.stamps.get(found.path):
            return found
        # The route opens the file anyway, so this one stat keeps a changed file from going out
        # under its old ETag and version, and a removed one from failing mid-response.
        return _served(self._reload(), (language, flow_id, key), ext)

    def generated_path(self, language: str, flow_id: str, key: str) -> Path:
        """Where the generated draft of a prompt belongs."""
        return self.generated_dir / language / flow_id / f"{key}.mp3"

    def refresh(self) -> None:
        """Rebuild the index from disk now."""
        self._reload()

    def _reload(self) -> _Index:
        with self._lock:
            return self._rebuild()

    def _current(self) -> _Index:
        index = self._index
        if index is None:
            return self._reload()
        if time.monotonic() - self._checked_at < self.check_interval:
            return index
        with self._lock:
            index = self._index
            if index is None or time.monotonic() - self._checked_at >= self.check_interval:
                index = self._rebuild_if_changed(index)
            return index

    def _rebuild_if_changed(self, index: _Index | None) -> _Index:
        if index is not None and index.settled and self._signature() == index.signature:
            self._checked_at = time.monotonic()
            return index
        return self._rebuild()

    def _rebuild(self) -> _Index:
        # Taken before the scan: a change during the scan then shows up as a change at the next check.
        signature = self._signature()
        settled = all(_settled(mtime_ns) for _, mtime_ns in signature)
        candidates: list[tuple[int, int, AudioFile, _PromptId]] = []
        stamps: dict[Path, _Stamp] = {}
        digests: dict[Path, tuple[_Stamp, str]] = {}
        sources: tuple[tuple[AudioSource, Path], ...] = (
            ("recorded", self.recorded_dir),
            ("generated", self.generated_dir),
        )
        for source, root in sources:
            for prompt_id, path, stamp in _scan(root):
                digest = self._digest(path, stamp)
                if digest is None:
                    continue
                stamps[path] = stamp
                digests[path] = (stamp, digest)
                audio = _audio_file(prompt_id, path, digest, source)
                candidates.append((_SOURCE_RANK[source], _EXT_RANK[path.suffix], audio, prompt_id))
        files: dict[_PromptId, AudioFile] = {}
        for _, _, audio, prompt_id in sorted(candidates, key=lambda item: item[:2]):
            files.setdefault(prompt_id, audio)
        self._digests = digests
        self._index = _Index(files=files, stamps=stamps, signature=signature, settled=settled)
        self._checked_at = time.monotonic()
        return self._index

    def _digest(self, path: Path, stamp: _Stamp) -> str | None:
        cached = self._digests.get(path)
        if cached is not None and cached[0] == stamp and _settled(stamp[2]):
            return cached[1]
        try:
            return _sha256_file(path)
        except OSError:
            # Removed between listing and reading: the next check sees the change and rescans.
            return None

    def _signature(self) -> _Signature:
        # Adding, replacing or removing a file changes its directory's mtime; a stat per directory is cheap.
        stamps: list[tuple[str, int]] = []
        for root in (self.recorded_dir, self.generated_dir):
            for directory in [root, *_language_and_flow_dirs(root)]:
                try:
                    stamps.append((str(directory), directory.stat().st_mtime_ns))
                except OSError:
                    continue
        return tuple(stamps)


def _served(index: _Index, prompt_id: _PromptId, ext: str) -> AudioFile | None:
    # Only the file `lookup` would pick is served, so a shadowed draft is never reachable.
    found = index.files.get(prompt_id)
    return found if found is not None and found.path.suffix == ext else None


def _audio_file(prompt_id: _PromptId, path: Path, digest: str, source: AudioSource) -> AudioFile:
    language, flow_id, key = prompt_id
    version = digest[:VERSION_LENGTH]
    return AudioFile(
        path=path,
        media_type=MEDIA_TYPES[path.suffix],
        etag=f'"{digest}"',
        source=source,
        url_path=f"/audio/{language}/{flow_id}/{key}{path.suffix}?v={version}",
        version=version,
    )


def _scan(root: Path) -> Iterator[tuple[_PromptId, Path, _Stamp]]:
    for flow_dir in _language_and_flow_dirs(root, flows_only=True):
        for entry in _entries(flow_dir):
            parts = split_filename(entry.name)
            if parts is None or not entry.is_file():
                continue
            path = Path(entry.path)
            stamp = _stamp(path)
            if stamp is not None:
                yield (flow_dir.parent.name, flow_dir.name, parts[0]), path, stamp


def _language_and_flow_dirs(root: Path, *, flows_only: bool = False) -> Iterator[Path]:
    for language_dir in _child_dirs(root, is_language):
        if not flows_only:
            yield language_dir
        yield from _child_dirs(language_dir, is_flow_id)


def _child_dirs(directory: Path, valid: Callable[[str], bool]) -> list[Path]:
    return sorted(Path(entry.path) for entry in _entries(directory) if valid(entry.name) and entry.is_dir())


def _entries(directory: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except OSError:
        # A tree that does not exist (yet) simply holds no audio.
        return []


def _settled(mtime_ns: int) -> bool:
    return time.time_ns() - mtime_ns > _SETTLE_NS


def _stamp(path: Path) -> _Stamp | None:
    try:
        result = path.stat()
    except OSError:
        return None
    return result.st_ino, result.st_size, result.st_mtime_ns


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()
