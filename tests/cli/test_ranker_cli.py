"""`recsys train ranker` records a ranker, and continuation then ranks with it, reasons and all."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.demo.catalog import DemoConfig, generate_mpd
from pipelines.ingest.mpd import ingest_mpd
from recsys.catalog import db
from recsys.catalog.schema import ModelVersion

runner = CliRunner()


def test_train_ranker_then_continue_with_it(tmp_path: Path) -> None:
    paths = generate_mpd(tmp_path / "mpd", DemoConfig(playlists=300, per_slice=100, seed=4, max_tracks=30))
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    assert ingest_mpd(engine, paths).ok
    env = {"RECSYS_DATABASE_URL": url, "RECSYS_DATA_DIR": str(tmp_path / "data"), "RECSYS_DEVICE": "cpu"}
    trained = runner.invoke(app, ["train", "als", "--factors", "8", "--iterations", "4"], env=env)
    assert trained.exit_code == 0, trained.output
    result = runner.invoke(
        app,
        ["train", "ranker", "--validation", "60", "--folds", "2", "--factors", "8", "--trees", "15",
         "--pool", "150", "--json"],
        env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["validation_playlists"] == 120 and info["folds"] == 2
    assert (Path(info["path"]) / "model.txt").is_file()
    with engine.connect() as conn:
        kinds = conn.execute(sa.select(ModelVersion.kind, ModelVersion.version)).all()
    assert ("ranker", info["version"]) in kinds
    recs = runner.invoke(
        app, ["recommend", "continue", "--playlist", "mpd:3", "--n", "20", "--json"], env=env
    )
    assert recs.exit_code == 0, recs.output
    rows = json.loads(recs.output)
    assert len(rows) == 20 and all(r["reason"] and r["sources"] for r in rows)
    fused = runner.invoke(
        app,
        ["recommend", "continue", "--playlist", "mpd:3", "--n", "20", "--method", "fusion", "--json"],
        env=env,
    )
    assert fused.exit_code == 0, fused.output
    assert [r["track_id"] for r in json.loads(fused.output)] != [r["track_id"] for r in rows]
    ranked = runner.invoke(
        app,
        ["recommend", "continue", "--playlist", "mpd:3", "--n", "20", "--method", "ranker", "--json"],
        env=env,
    )
    assert [r["track_id"] for r in json.loads(ranked.output)] == [r["track_id"] for r in rows]
    engine.dispose()
