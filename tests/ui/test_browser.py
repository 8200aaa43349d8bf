"""The UI in a real browser: the server started as a user starts it, Chromium clicking through it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.demo_catalog import HOSTILE_TRACK
from tests.ui.browser import VIEWPORT, chromium, no_error_on, open_page, settled, shoot, ui_server

pytestmark = pytest.mark.browser

PAGES = {
    "": "Catalog",
    "playlists": "Playlists",
    "continue": "Continue a playlist",
    "similar": "Similar",
    "words": "Words → music",
    "video": "Music for video",
    "evaluation": "Evaluation",
}


@pytest.fixture(scope="module")
def server(demo_dir: Path) -> Iterator[str]:
    with ui_server(demo_dir, RECSYS_UI_STORE_IDLE_S="2") as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield page
    shoot(page, request.node.name)
    context.close()
    assert not dialogs, f"a script ran in the page: {dialogs}"


def test_every_page_opens(server: str, page: Any) -> None:
    for path, title in PAGES.items():
        open_page(page, f"{server}/{path}")
        heading = page.locator('[data-testid="stHeading"] h1').first
        assert heading.inner_text().strip() == title
        no_error_on(page)
        shoot(page, f"page-{path or 'catalog'}")


def _set_user(page: Any, name: str) -> None:
    box = page.get_by_role("textbox", name="Your name")
    box.fill(name)
    box.press("Enter")
    settled(page)


def _first_grid_row(page: Any) -> None:
    """Select the first row of the first dataframe (its row-marker column)."""
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.wait_for()
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 14, box["y"] + 35 + 17)
    settled(page)


def _grid_rows(page: Any) -> list[list[str]]:
    """The cells of the first dataframe's visible rows, as text (its accessible table)."""
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.locator("td").first.wait_for(state="attached")
    return [row.locator("td").all_inner_texts() for row in grid.locator("tbody tr").all()]


def test_search_a_playlist_open_it_and_continue_it(server: str, page: Any) -> None:
    open_page(page, f"{server}/playlists")
    search = page.get_by_label("Search playlists by name")
    search.fill("jazz")
    search.press("Enter")
    settled(page)
    assert page.get_by_text("playlist(s) · page 1 of").first.inner_text().split()[0] != "301"
    _first_grid_row(page)
    page.get_by_role("button", name="Continue this playlist").wait_for()
    heading = page.locator('[data-testid="stHeading"] h3').first.inner_text()
    assert "jazz" in heading.lower()
    page.get_by_role("button", name="Continue this playlist").click()
    page.wait_for_url("**/continue?playlist=*")
    settled(page)
    page.get_by_role("button", name="Continue", exact=True).click()
    settled(page)
    page.get_by_text("25 tracks to continue with").wait_for()
    rows = _grid_rows(page)
    assert len(rows) >= 10 and rows[0][0] == "1"
    assert all(row[3] and row[4] for row in rows[:10]), rows[:3]  # the sources, and the seeds behind it
    no_error_on(page)


def test_a_disliked_result_is_gone_after_the_next_request(server: str, page: Any) -> None:
    open_page(page, f"{server}/continue?playlist=5")
    _set_user(page, "browser-tester")
    page.get_by_role("button", name="Continue", exact=True).click()
    settled(page)
    first = _grid_rows(page)[0]
    _first_grid_row(page)
    page.get_by_text("1 selected").wait_for()
    page.get_by_role("button", name="Dislike").click()
    settled(page)
    page.get_by_text("1 disliked track(s) left out").wait_for()
    rows = _grid_rows(page)
    assert first[1] not in [row[1] for row in rows], "the disliked track is still recommended"
    assert page.get_by_text("25 tracks to continue with").count() == 1
    no_error_on(page)


def test_similar_tracks_with_players(server: str, page: Any) -> None:
    open_page(page, f"{server}/similar")
    page.get_by_text("similarity").first.wait_for()
    assert page.get_by_text("similarity").count() == 10
    page.locator("audio").first.wait_for(state="attached")
    assert page.locator("audio").count() >= 10
    no_error_on(page)


def test_a_text_query_ranks_music(server: str, page: Any) -> None:
    open_page(page, f"{server}/words")
    page.get_by_label("Description").fill("calm slow indian strings")
    page.get_by_role("button", name="Find music").click()
    settled(page)
    scores = page.get_by_text("score 0.", exact=False)
    scores.first.wait_for()
    assert scores.count() == 10
    no_error_on(page)


def test_upload_a_real_video_with_a_prompt(server: str, page: Any, shared_data: Path) -> None:
    open_page(page, f"{server}/video")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        str(shared_data / "video" / "chaplin.mp4")
    )
    settled(page)
    page.get_by_label("Words (optional)").fill("bright playful piano")
    page.get_by_role("button", name="Find music").click()
    settled(page)
    parts = page.get_by_text("· video ", exact=False)
    parts.first.wait_for(timeout=90_000)
    assert parts.count() == 10 and "words" in parts.first.inner_text()
    assert page.locator('[data-testid="stVegaLiteChart"], [data-testid="stArrowVegaLiteChart"]').count() >= 1
    assert page.locator("video").count() == 1
    no_error_on(page)


def test_a_track_named_with_markup_shows_as_text(server: str, page: Any) -> None:
    open_page(page, f"{server}/continue")
    page.get_by_role("radio", name="Seed tracks").click()
    settled(page)
    search = page.get_by_label("Find tracks")
    search.fill("plain song")
    search.press("Enter")
    settled(page)
    page.get_by_label("Seed tracks").click()
    page.get_by_role("option", name="Plain Song — Plain Artist").click()
    page.keyboard.press("Escape")
    settled(page)
    page.get_by_role("button", name="Continue", exact=True).click()
    settled(page)
    assert _grid_rows(page)[0][1] == HOSTILE_TRACK  # the only track listed with the seed
    _first_grid_row(page)
    shown = page.locator('[class*="st-key-chosen_"] strong').first
    shown.wait_for()
    assert shown.inner_text() == HOSTILE_TRACK
    assert page.locator('[data-testid="stMarkdownContainer"] script').count() == 0


def test_a_command_reads_the_store_beside_the_ui_and_the_ui_stops_with_its_command(
    demo_dir: Path, browser: Any
) -> None:
    """While a page uses the embedded store, a command beside the UI reads it too; after the UI
    let go of it when idle, it opens it again; SIGTERM to ``recsys ui`` stops the server too."""
    import subprocess
    import sys
    import time
    import urllib.request

    def similar() -> subprocess.CompletedProcess[str]:
        command = ["recommend", "similar", "--track", str(track), "--by", "audio_dsp", "--n", "2"]
        return subprocess.run(
            [sys.executable, "-c", "from pipelines.cli import main; main()", *command],
            env={**os.environ, "RECSYS_DATA_DIR": str(demo_dir)},
            capture_output=True,
            text=True,
            timeout=120,
        )

    from recsys.vectorstore.edge import EdgeStore

    with EdgeStore(demo_dir / "vectors") as store:
        track = next(
            int(r.id)
            for r in store.scroll("tracks", with_vectors=["audio_dsp"])
            if r.vectors.get("audio_dsp")
        )
    with ui_server(demo_dir, RECSYS_UI_STORE_IDLE_S="2") as url:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        open_page(page, f"{url}/similar")
        beside = similar()  # the UI has the store open: each process reads a view of its own
        assert beside.returncode == 0, beside.stderr
        assert len(beside.stdout.strip().splitlines()) == 2
        time.sleep(6)
        free = similar()
        assert free.returncode == 0, free.stderr
        assert len(free.stdout.strip().splitlines()) == 2
        open_page(page, f"{url}/similar")  # and the UI opens it again on the next request
        page.get_by_text("similarity").first.wait_for()
        no_error_on(page)
        context.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/_stcore/health", timeout=5)


def test_a_dislike_survives_a_restart_and_shows_in_catalog_stats(demo_dir: Path, browser: Any) -> None:
    import json
    import subprocess
    import sys

    def continued(url: str) -> tuple[Any, list[list[str]]]:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        open_page(page, f"{url}/continue?playlist=21")
        _set_user(page, "restarter")
        page.get_by_role("button", name="Continue", exact=True).click()
        settled(page)
        return page, _grid_rows(page)

    with ui_server(demo_dir, RECSYS_UI_STORE_IDLE_S="2") as url:
        page, before = continued(url)
        _first_grid_row(page)
        page.get_by_text("1 selected").wait_for()
        page.get_by_role("button", name="Dislike").click()
        settled(page)
        page.get_by_text("1 disliked track(s) left out").wait_for()
        page.context.close()
    disliked = before[0][1]
    with ui_server(demo_dir, RECSYS_UI_STORE_IDLE_S="2") as url:  # a new server process
        page, after = continued(url)
        assert page.get_by_text("disliked track(s) left out").count() == 1
        assert disliked not in [row[1] for row in after]
        page.context.close()
    stats = subprocess.run(
        [sys.executable, "-c", "from pipelines.cli import main; main()", "catalog", "stats", "--json"],
        env={**os.environ, "RECSYS_DATA_DIR": str(demo_dir)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["feedback"] >= 1
