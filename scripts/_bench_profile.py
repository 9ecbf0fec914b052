"""Flame graphs of the served workers while the benchmark's callers walk the hotline (py-spy)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def profiling(
    pids: list[int], warmup: float, seconds: float, folder: Path | None, label: str
) -> Iterator[None]:
    """With a folder: py-spy samples each worker over the measured time (after the warm-up), written as
    ``<label>-<pid>.svg``; waits for the graphs when the block ends. Without one, does nothing."""
    if folder is None:
        yield
        return
    binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    folder.mkdir(parents=True, exist_ok=True)
    name = label.replace("/", "-")
    spies: list[subprocess.Popen[bytes]] = []
    for pid in pids:
        duration = str(max(1, round(seconds)))
        output = str(folder / f"{name}-{pid}.svg")
        record = [binary, "record", "--pid", str(pid), "--duration", duration, "--rate", "200", "-o", output]
        # Started after the warm-up, like the measured window (py-spy has no delay of its own).
        command = f"sleep {warmup:g} && exec {shlex.join(record)}"
        spy = subprocess.Popen(["sh", "-c", command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        spies.append(spy)
    try:
        yield
    finally:
        for process in spies:
            _, errors = process.communicate(timeout=seconds + warmup + 60)
            if process.returncode != 0:
                print(f"py-spy failed: {errors.decode(errors='replace').strip()[-500:]}", file=sys.stderr)
