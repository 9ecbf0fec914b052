"""The real service under uvicorn (`rimay serve`) on a loopback port, for tests that talk HTTP to it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import AUTH_TOKEN, ROOT

START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Service:
    """A running service: where it answers, where it keeps its data, and its log."""

    base_url: str
    data_dir: Path
    log_path: Path


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_service(
    workdir: Path,
    *,
    generated_audio: Path | None = None,
    log_level: str = "DEBUG",
    env: Mapping[str, str] | None = None,
    workers: int = 1,
) -> Iterator[Service]:
    """Migrate a fresh SQLite data dir, serve the shipped flows on loopback, stop on exit.

    ``generated_audio`` is a folder of built drafts (e.g. the ``audio_data_dir`` fixture's ``audio``),
    linked rather than rebuilt, so every prompt has audio without running espeak-ng per test.
    """
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    data_dir = workdir / "data"
    data_dir.mkdir(parents=True)
    if generated_audio is not None:
        (data_dir / "audio").symlink_to(generated_audio, target_is_directory=True)
    environment = {
        **os.environ,
        "RIMAY_DATA_DIR": str(data_dir),
        "RIMAY_PUBLIC_BASE_URL": base_url,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "RIMAY_LOG_LEVEL": log_level,
        "RIMAY_FLOWS_DIR": str(ROOT / "voice_flows"),
        "RIMAY_AUDIO_DIR": str(ROOT / "audio"),
        **(env or {}),
    }
    environment.pop("RIMAY_DATABASE_URL", None)
    rimay = [sys.executable, "-m", "app.cli"]
    subprocess.run([*rimay, "migrate"], env=environment, check=True, cwd=workdir, capture_output=True)
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*rimay, "serve", "--port", str(port), "--workers", str(workers)],
            env=environment,
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_healthy(base_url, process, log_path)
            yield Service(base_url=base_url, data_dir=data_dir, log_path=log_path)
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_healthy(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Wait until /healthz answers 200; fail with the server's log if it exits or never does."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited during start-up:\n{log_path.read_text(errors='replace')}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(f"the server did not become healthy in {START_TIMEOUT:.0f} s")
