"""Driving the real UI: ``recsys ui`` in a child process and Debian's Chromium through Playwright.

Chromium is the system's (``/usr/bin/chromium``, from the ``chromium`` package), never a browser
downloaded by Playwright. Each test's page is saved as a screenshot under
``RECSYS_SCREENSHOTS`` (default ``build/screenshots``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import unavailable
from tests.servers import recsys_server
from tests.ui.conftest import ROOT

CHROMIUM = os.environ.get("RECSYS_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("RECSYS_SCREENSHOTS", ROOT / "build" / "screenshots"))
LAUNCH_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 1600}


@contextmanager
def ui_server(data_dir: Path, **env: str) -> Iterator[str]:
    """``recsys ui`` over ``data_dir`` on a free port; yields its URL once it answers."""
    with (
        tempfile.TemporaryDirectory(prefix="recsys-ui-server-") as logs,
        recsys_server(["ui", "--data-dir", str(data_dir)], "/_stcore/health", logs=Path(logs), env=env) as (
            url,
            _process,
        ),
    ):
        yield url


@contextmanager
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file() and shutil.which("chromium") is None:
        unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def settled(page: Any, timeout_ms: int = 90_000) -> None:
    """Wait until the app's script has run to its end (after the next rerun, if one is pending)."""
    page.wait_for_timeout(150)
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', state="attached", timeout=timeout_ms
    )
    page.wait_for_timeout(150)


def open_page(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector('[data-testid="stHeading"]', timeout=90_000)
    settled(page)


def shoot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def no_error_on(page: Any) -> None:
    """No exception box and no 'app has encountered an error' on the page."""
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("This app has encountered an error").count() == 0
