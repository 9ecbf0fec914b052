"""Recording files on disk: written atomically, readable only by the service's own user."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_private(path: Path, data: bytes) -> None:
    """Write a file as 0600 in a 0700 directory, via a temporary file and a rename (never half a file)."""
    directory = path.parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)  # mkdir's mode is cut by the umask, and the folder may predate us
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".", suffix=".part")  # created 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
