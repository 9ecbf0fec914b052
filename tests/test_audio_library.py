"""The audio library: recorded over generated, content versions, safe names, index refresh."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from app.audio import library as library_module
from app.audio.library import AudioLibrary


def put(root: Path, relative: str, content: bytes) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_recorded_wins_over_generated(library: AudioLibrary, recorded: Path, generated: Path) -> None:
    wav = put(recorded, "qu/hotline/welcome.wav", b"recorded voice")
    put(generated, "qu/hotline/welcome.mp3", b"espeak draft")

    found = library.lookup("qu", "hotline", "welcome")

    assert found is not None
    assert found.source == "recorded"
    assert found.path == wav
    assert found.media_type == "audio/wav"
    digest = hashlib.sha256(b"recorded voice").hexdigest()
    assert found.etag == f'"{digest}"'
    assert found.url_path == f"/audio/qu/hotline/welcome.wav?v={digest[:12]}"


def test_generated_is_used_when_nothing_is_recorded(library: AudioLibrary, generated: Path) -> None:
    put(generated, "es/hotline/_goodbye.mp3", b"draft")

    found = library.lookup("es", "hotline", "_goodbye")

    assert found is not None
    assert found.source == "generated"
    assert found.media_type == "audio/mpeg"
    assert found.url_path.startswith("/audio/es/hotline/_goodbye.mp3?v=")
    assert library.lookup("qu", "hotline", "_goodbye") is None


def test_mp3_is_preferred_over_wav_of_the_same_source(library: AudioLibrary, recorded: Path) -> None:
    put(recorded, "es/hotline/main.wav", b"wav")
    mp3 = put(recorded, "es/hotline/main.mp3", b"mp3")

    found = library.lookup("es", "hotline", "main")

    assert found is not None
    assert found.path == mp3


def test_version_changes_when_bytes_change(library: AudioLibrary, recorded: Path) -> None:
    path = put(recorded, "es/hotline/main.mp3", b"first take")
    before = library.lookup("es", "hotline", "main")
    path.write_bytes(b"second take")

    library.refresh()
    after = library.lookup("es", "hotline", "main")

    assert before is not None
    assert after is not None
    assert before.url_path != after.url_path
    assert before.etag != after.etag
    assert after.version == hashlib.sha256(b"second take").hexdigest()[:12]


def test_refresh_notices_a_same_size_rewrite_in_the_same_clock_tick(
    library: AudioLibrary, recorded: Path
) -> None:
    path = put(recorded, "es/hotline/main.mp3", b"take one")
    before = library.lookup("es", "hotline", "main")
    stat = path.stat()
    path.write_bytes(b"take two")
    # Same inode, size and mtime: what a coarse file clock shows for two writes a moment apart.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    library.refresh()
    after = library.lookup("es", "hotline", "main")

    assert before is not None
    assert after is not None
    assert after.etag != before.etag


def test_missing_directories_hold_no_audio(library: AudioLibrary) -> None:
    assert library.lookup("es", "hotline", "main") is None
    assert library.resolve_file("es", "hotline", "main.mp3") is None


def test_refresh_picks_up_a_new_file(library: AudioLibrary, generated: Path) -> None:
    assert library.lookup("es", "hotline", "main") is None
    put(generated, "es/hotline/main.mp3", b"draft")

    # The index is only checked every hour here, so the new file waits for an explicit refresh.
    assert library.lookup("es", "hotline", "main") is None
    library.refresh()

    assert library.lookup("es", "hotline", "main") is not None


def test_index_rebuilds_itself_when_the_tree_changes(recorded: Path, generated: Path) -> None:
    library = AudioLibrary(recorded, generated, check_interval=0)
    assert library.lookup("es", "hotline", "main") is None

    put(generated, "es/hotline/main.mp3", b"draft")
    put(recorded, "qu/hotline/main.wav", b"voice")

    assert library.lookup("es", "hotline", "main") is not None
    found = library.lookup("qu", "hotline", "main")
    assert found is not None
    assert found.source == "recorded"


def test_lookups_never_hash_files(
    library: AudioLibrary, recorded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("main", "menu"):
        path = put(recorded, f"es/hotline/{name}.mp3", name.encode())
        # Older than the settling time, so unchanged files may keep their cached hash.
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    hashed: list[Path] = []
    real = library_module._sha256_file

    def counting(path: Path) -> str:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(library_module, "_sha256_file", counting)

    for _ in range(100):
        library.lookup("es", "hotline", "main")
    library.refresh()

    # Hashed once when the index is first built; a refresh reuses hashes of unchanged files.
    assert sorted(path.name for path in hashed) == ["main.mp3", "menu.mp3"]


def test_resolve_file_serves_the_file_lookup_names(library: AudioLibrary, recorded: Path) -> None:
    put(recorded, "es/hotline/main.mp3", b"voice")

    found = library.resolve_file("es", "hotline", "main.mp3")

    assert found == library.lookup("es", "hotline", "main")
    assert library.resolve_file("es", "hotline", "main.wav") is None


def test_resolve_file_never_reaches_a_shadowed_draft(
    library: AudioLibrary, recorded: Path, generated: Path
) -> None:
    put(recorded, "es/hotline/main.wav", b"voice")
    put(generated, "es/hotline/main.mp3", b"draft")

    assert library.resolve_file("es", "hotline", "main.mp3") is None
    assert library.resolve_file("es", "hotline", "main.wav") is not None


def test_resolve_file_notices_a_file_rewritten_in_place(library: AudioLibrary, recorded: Path) -> None:
    path = put(recorded, "es/hotline/main.mp3", b"first take")
    before = library.lookup("es", "hotline", "main")
    path.write_bytes(b"a longer second take")

    after = library.resolve_file("es", "hotline", "main.mp3")

    assert before is not None
    assert after is not None
    assert after.etag != before.etag


def test_resolve_file_forgets_a_removed_file(library: AudioLibrary, recorded: Path) -> None:
    path = put(recorded, "es/hotline/main.mp3", b"voice")
    assert library.lookup("es", "hotline", "main") is not None
    path.unlink()

    assert library.resolve_file("es", "hotline", "main.mp3") is None


@pytest.mark.parametrize(
    ("language", "flow_id", "filename"),
    [
        ("es", "hotline", "../main.mp3"),
        ("es", "hotline", "../../etc/passwd"),
        ("es", "hotline", ".hidden.mp3"),
        ("es", "hotline", ".mp3"),
        ("es", "hotline", "main"),
        ("es", "hotline", "main.ogg"),
        ("es", "hotline", "main.MP3"),
        ("es", "hotline", "main.mp3.bak"),
        ("es", "hotline", "sub/main.mp3"),
        ("es", "hotline", "main.mp3\n"),
        ("es", "hotline", "Main.mp3"),
        ("..", "hotline", "main.mp3"),
        ("es", "..", "main.mp3"),
        ("es/..", "hotline", "main.mp3"),
        ("", "hotline", "main.mp3"),
    ],
)
def test_unsafe_names_are_rejected(
    library: AudioLibrary, recorded: Path, language: str, flow_id: str, filename: str
) -> None:
    put(recorded, "es/hotline/main.mp3", b"voice")
    put(recorded, "es/hotline/.hidden.mp3", b"secret")

    assert library.resolve_file(language, flow_id, filename) is None


def test_stray_files_are_not_indexed(library: AudioLibrary, recorded: Path) -> None:
    put(recorded, "es/hotline/.hidden.mp3", b"secret")
    put(recorded, "es/hotline/notes.txt", b"todo")
    put(recorded, "es/Hotline/main.mp3", b"wrong case")
    (recorded / "es" / "hotline" / "dir.mp3").mkdir()

    assert library.lookup("es", "hotline", ".hidden") is None
    assert library.lookup("es", "hotline", "notes") is None
    assert library.lookup("es", "Hotline", "main") is None
    assert library.lookup("es", "hotline", "dir") is None
