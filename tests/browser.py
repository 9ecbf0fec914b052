"""A real-browser harness: the service under uvicorn on loopback, Debian's chromium driven by Playwright.

Without /usr/bin/chromium the browser tests skip, unless RIMAY_REQUIRE_BROWSER=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.server import Service

CHROMIUM: Final = Path(os.environ.get("RIMAY_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Voice answers: a fake microphone (a beep) granted without a prompt, and players that may start
    # without a click, so MediaRecorder and <audio> are exercised for real.
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
)
TIMEOUT_MS: Final = 15_000


def require_chromium() -> None:
    """Skip without chromium, or fail when CI said a browser is required."""
    if CHROMIUM.exists():
        return
    if os.environ.get("RIMAY_REQUIRE_BROWSER") == "1":
        pytest.fail(f"a browser is required (RIMAY_REQUIRE_BROWSER=1) but {CHROMIUM} is missing")
    pytest.skip(f"no browser at {CHROMIUM}: install Debian's chromium package")


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless chromium, closed on exit."""
    require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def new_page(browser: Browser, base_url: str) -> Iterator[Page]:
    """A fresh browser profile (no cookies) whose console errors fail the test on exit."""
    context = browser.new_context(base_url=base_url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    try:
        yield page
    finally:
        context.close()
    # A CSP violation or a missing file shows up here: pages must work under the strict policy.
    assert not [e for e in errors if "Failed to load resource" not in e], errors


def create_staff(service: Service, email: str, password: str, role: str = "manager") -> None:
    """`rimay user create --password-stdin` against the running service's database."""
    env = {**os.environ, "RIMAY_DATA_DIR": str(service.data_dir)}
    env.pop("RIMAY_DATABASE_URL", None)
    command = [sys.executable, "-m", "app.cli", "user", "create", "--email", email, "--role", role]
    done = subprocess.run(
        [*command, "--password-stdin"],
        input=password + "\n",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def sign_in(page: Page, email: str, password: str) -> None:
    """Fill and submit the login form."""
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
