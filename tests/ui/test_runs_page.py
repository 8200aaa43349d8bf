"""The "Pipeline runs" page with ``AppTest``: the nightly history, a run's steps and its gate, and the empty state."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.nightly.records import PUBLISHED_VIDEO, REFUSED, plant_runs
from tests.ui.conftest import frame, no_exception, page, texts
from ui.views import literal


def test_runs_lists_the_history_and_a_run_s_steps_and_gate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plant_runs(tmp_path)
    app = page("runs", tmp_path, monkeypatch).run()
    no_exception(app)
    assert app.title[0].value == "Pipeline runs"
    history = frame(app, 0)
    assert history["run"].to_list() == [3, 2, 1]
    assert history["status"].to_list() == ["failed", "done", "done"]
    assert history["error"].to_list() == ["step index: OSError: disk full", "", ""]
    assert history["gate"].to_list() == ["", f"refused: {REFUSED}", ""]
    assert history["video–music gate"].to_list() == ["", f"published: {PUBLISHED_VIDEO}", ""]
    assert app.error[0].value == "Failed: " + literal("step index: OSError: disk full")
    steps = frame(app, 1)
    assert steps.rows() == [("index", "failed", steps["took"][0], "", "OSError: disk full")]

    app.selectbox(key="runs_run").select_index(1).run()
    no_exception(app)
    steps = frame(app, 1)
    assert steps["step"].to_list()[:2] == ["ingest", "embed-audio"] and steps.height == 7
    assert steps.filter(steps["step"] == "publish")["why"].to_list() == [REFUSED]
    # counts read as the command line prints them, not as JSON
    assert steps.filter(steps["step"] == "evaluate")["counts"].to_list() == ["validation_playlists 40"]
    gate = frame(app, 2)
    assert gate["model"].to_list() == ["candidate cand0002", "serving serv0001"]
    assert gate["r_precision"].to_list() == [0.1234, 0.2]
    assert "On 40 validation playlists" in texts(app)


def test_runs_without_any_run_says_how_to_run_one(empty_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = page("runs", empty_dir, monkeypatch).run()
    no_exception(app)
    assert "No nightly run yet" in app.info[0].value and "recsys nightly" in app.info[0].value
