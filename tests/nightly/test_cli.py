"""``recsys nightly``, ``nightly history`` and ``nightly status`` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pipelines.cli import app


def test_a_fresh_install_runs_nothing_and_says_so(tmp_path: Path, sqlite_url: str) -> None:
    runner = CliRunner()
    env = {"RECSYS_DATA_DIR": str(tmp_path / "data"), "RECSYS_DATABASE_URL": sqlite_url}
    ran = runner.invoke(app, ["nightly", "--json"], env=env)
    assert ran.exit_code == 0, ran.output
    result = json.loads(ran.output)
    assert {s["status"] for s in result["steps"]} == {"skipped"}
    assert {s["name"]: s["reason"] for s in result["steps"]} == {
        "ingest": "no sources in the pipeline",
        "embed-audio": "the catalog holds no audio",
        "train-trimodal": "the video–music model is not in the pipeline",
        "embed-music": "music vectors not in the pipeline",
        "train-als": "the catalog holds no playlists",
        "evaluate": "no candidate model",
        "publish": "no candidate model",
        "train-seq2seq": "the playlist encoder is not in the pipeline",
        "index": "the catalog holds no tracks",
    }

    history = json.loads(runner.invoke(app, ["nightly", "history", "--json", "--n", "5"], env=env).output)
    assert [run["id"] for run in history] == [result["run_id"]] and history[0]["status"] == "done"
    assert [s["step"] for s in history[0]["steps"]] == [s["name"] for s in result["steps"]]
    text = runner.invoke(app, ["nightly", "history"], env=env)
    assert text.exit_code == 0 and text.output.startswith(f"run {result['run_id']}  done  started ")
    assert "  train-als      skipped " in text.output

    status = runner.invoke(app, ["nightly", "status", "--json"], env=env)
    state = json.loads(status.output)
    assert state["running"] is None and state["last_success"]["id"] == result["run_id"]
    assert {s["step"]: s["due"] for s in state["steps"]}["ingest"] == "not due: no sources in the pipeline"
    shown = runner.invoke(app, ["nightly", "status"], env=env).output
    assert shown.startswith("running: no\nlast success: run ")


def test_a_bad_pipeline_file_is_one_line_and_exit_1(tmp_path: Path, sqlite_url: str) -> None:
    bad = tmp_path / "nightly.toml"
    bad.write_text("[als]\nfactors = 0\n")
    env = {"RECSYS_DATA_DIR": str(tmp_path / "data"), "RECSYS_DATABASE_URL": sqlite_url}
    ran = CliRunner().invoke(app, ["nightly", "--config", str(bad)], env=env)
    assert ran.exit_code == 1
    assert ran.output == f"error: {bad}: als.factors=0: input should be greater than or equal to 1\n"


def test_tables_and_listens_of_the_pipeline_file_are_ingested_once(tmp_path: Path, sqlite_url: str) -> None:
    (tmp_path / "tracks.csv").write_text("id,title,artist\nt1,One,Ann\nt2,Two,Bob\n")
    (tmp_path / "listens.csv").write_text("user,artist,title,plays\nu1,Ann,One,3\nu2,Bob,Two,1\n")
    (tmp_path / "nightly.toml").write_text(
        '[[sources.tables]]\npath = "tracks.csv"\nkind = "tracks"\nid_prefix = "shop"\n'
        '[[sources.listens]]\npath = "listens.csv"\nformat = "csv"\n'
    )
    runner = CliRunner()
    env = {"RECSYS_DATA_DIR": str(tmp_path / "data"), "RECSYS_DATABASE_URL": sqlite_url}
    args = ["nightly", "--config", str(tmp_path / "nightly.toml"), "--json"]
    first = json.loads(runner.invoke(app, args, env=env).output)
    ingest = first["steps"][0]
    assert (ingest["name"], ingest["status"]) == ("ingest", "done")
    assert (ingest["counts"]["inputs"], ingest["counts"]["new"], ingest["counts"]["rejected"]) == (2, 2, 0)
    assert ingest["counts"]["loaded"], ingest
    stats = json.loads(runner.invoke(app, ["catalog", "stats", "--json"], env=env).output)
    # the table's tracks are keyed by their ids (shop:t1), the listens' by artist and title
    assert (stats["tracks"], stats["listens"]) == (4, 2)
    (tmp_path / "listens.csv").write_text(
        "user,artist,title,plays\nu1,Ann,One,3\nu2,Bob,Two,1\nu3,Ann,One,2\n"
    )
    second = json.loads(runner.invoke(app, args, env=env).output)["steps"][0]
    assert second["status"] == "done" and (second["counts"]["inputs"], second["counts"]["skipped"]) == (2, 1)
    third = json.loads(runner.invoke(app, args, env=env).output)["steps"][0]
    assert third["status"] == "skipped" and third["reason"].startswith("inputs unchanged")
