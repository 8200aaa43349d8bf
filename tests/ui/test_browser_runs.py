"""The "Pipeline runs" page in a real browser: the server started as a user starts it, Chromium choosing a run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.nightly.records import plant_runs
from tests.ui.browser import VIEWPORT, chromium, no_error_on, open_page, settled, shoot, ui_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("ui-runs") / "data"
    data_dir.mkdir()
    plant_runs(data_dir)
    with ui_server(data_dir) as url:
        yield url


@pytest.fixture
def page(request: pytest.FixtureRequest) -> Iterator[Any]:
    with chromium() as browser:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        yield page
        shoot(page, request.node.name)
        context.close()


def test_the_runs_page_shows_a_failure_then_the_gate_of_a_chosen_run(server: str, page: Any) -> None:
    open_page(page, f"{server}/runs")
    assert page.locator('[data-testid="stHeading"] h1').first.inner_text().strip() == "Pipeline runs"
    page.get_by_text("Failed: step index").wait_for()
    no_error_on(page)
    page.get_by_label("Run", exact=True).click()
    page.get_by_role("option", name="run 2 · done").click()
    settled(page)
    page.get_by_text("On 40 validation playlists").wait_for()
    assert page.get_by_text("Failed: step index").count() == 0
    assert page.locator('[data-testid="stDataFrame"]').count() == 3  # runs, steps, gate
    no_error_on(page)
