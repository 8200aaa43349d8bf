"""The continuation evaluation notebook runs end to end on a report from a small demo catalog."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from pipelines.demo.catalog import DemoConfig, generate_mpd
from pipelines.evaluate.continuation import evaluate_continuation
from pipelines.ingest.mpd import ingest_mpd
from recsys.catalog import db
from recsys.collaborative.factorization import MFConfig
from recsys.evaluation.continuation import MethodsConfig
from recsys.evaluation.reports import write_report

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "continuation_evaluation.ipynb"


@pytest.mark.slow
def test_notebook_renders_tables_and_plot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'catalog.db'}")
    db.upgrade(engine)
    ingest_mpd(engine, generate_mpd(tmp_path / "mpd", DemoConfig(playlists=200, seed=3)))
    config = MethodsConfig(als=MFConfig(kind="als", factors=16, iterations=5, alpha=10.0))
    report = evaluate_continuation(
        engine, methods="popularity,knn,als,hybrid", test_playlists=20, n=100, config=config
    )
    write_report(report, tmp_path / "report.json")
    monkeypatch.setenv("RECSYS_EVAL_REPORT", str(tmp_path / "report.json"))
    monkeypatch.setenv("RECSYS_EVAL_FIGURE", str(tmp_path / "figure.png"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    text = "\n".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "20 test playlists" in text
    assert "hybrid" in text and "title_first_5" in text
    assert (tmp_path / "figure.png").stat().st_size > 10_000
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the plot is shown in the notebook
    assert json.loads((tmp_path / "report.json").read_text())["methods"] == [
        "popularity",
        "knn",
        "als",
        "hybrid",
    ]
