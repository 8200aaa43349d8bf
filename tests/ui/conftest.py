"""An empty data dir for the UI tests, and the helpers that run a page with ``AppTest`` against it or
the demo data dir (``demo_dir``, built once per session by ``tests/conftest.py``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "ui" / "screens"


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
