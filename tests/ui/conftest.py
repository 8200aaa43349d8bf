"""A small demo data dir shared by the UI tests (built once per session), an empty one, and
the helpers that run a page with ``AppTest`` against either."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "ui" / "screens"
SMALL_DEMO = ["--playlists", "300", "--audio-clips", "1", "--video-clips", "40", "--video-epochs", "2"]


HOSTILE_TRACK = "**bold** <script>alert(1)</script>"
HOSTILE_PLAYLIST = "<b>loud</b> $x$ [link](http://example.com)"


def plant_hostile_names(data_dir: Path) -> None:
    """One more MPD slice: a playlist and a track whose names are markup, to be shown as text."""
    from pipelines.ingest.mpd import ingest_mpd
    from recsys.catalog import db

    tracks = [
        {
            "pos": 0,
            "artist_name": "<i>Nobody</i>",
            "track_name": HOSTILE_TRACK,
            "track_uri": "spotify:track:" + "h" * 22,
        },
        {
            "pos": 1,
            "artist_name": "Plain Artist",
            "track_name": "Plain Song",
            "track_uri": "spotify:track:" + "p" * 22,
        },
    ]
    slice_ = {
        "info": {},
        "playlists": [{"name": HOSTILE_PLAYLIST, "pid": 999_999, "num_tracks": 2, "tracks": tracks}],
    }
    path = data_dir / "hostile" / "mpd.slice.999999-999999.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(slice_))
    engine = db.make_engine(f"sqlite:///{data_dir / 'catalog.db'}")
    ingest_mpd(engine, [path])
    engine.dispose()


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo data dir as ``recsys demo`` leaves it (small sizes), plus a playlist and a track whose
    names are markup."""
    from typer.testing import CliRunner

    from pipelines.cli import app

    data_dir = tmp_path_factory.mktemp("ui-demo") / "data"
    with pytest.MonkeyPatch.context() as env:
        for name in [k for k in os.environ if k.startswith("RECSYS_")]:
            env.delenv(name)
        env.setenv("RECSYS_DATA_DIR", str(data_dir))
        result = CliRunner().invoke(app, ["demo", *SMALL_DEMO])
        assert result.exit_code == 0, result.output
    plant_hostile_names(data_dir)
    return data_dir


@pytest.fixture
def empty_dir(tmp_path: Path) -> Path:
    """A data dir whose catalog is migrated and holds nothing."""
    from recsys.catalog import db

    data_dir = tmp_path / "empty"
    engine = db.make_engine(f"sqlite:///{data_dir / 'catalog.db'}")
    db.upgrade(engine)
    engine.dispose()
    return data_dir


@pytest.fixture(autouse=True)
def _fresh_caches(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in [k for k in os.environ if k.startswith("RECSYS_")]:
        monkeypatch.delenv(name)
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def page(name: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch, *, user: str | None = None) -> AppTest:
    """The page ``ui/screens/<name>.py`` over ``data_dir``, not run yet."""
    monkeypatch.setenv("RECSYS_DATA_DIR", str(data_dir))
    app = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=120)
    if user is not None:
        app.session_state["user"] = user
    return app


def texts(app: AppTest) -> str:
    """Everything the page wrote as text, for assertions on what a user reads."""
    parts: list[str] = []
    for kind in (
        "title",
        "subheader",
        "markdown",
        "caption",
        "info",
        "warning",
        "error",
        "success",
        "metric",
    ):
        for element in getattr(app, kind):
            parts.append(str(getattr(element, "value", "")) + " " + str(getattr(element, "label", "")))
    return "\n".join(parts)


def no_exception(app: AppTest) -> None:
    assert not app.exception, [e.value for e in app.exception]


def frame(app: AppTest, index: int = 0) -> pl.DataFrame:
    """The ``index``-th dataframe of the page, as Polars."""
    return pl.from_pandas(app.dataframe[index].value)
