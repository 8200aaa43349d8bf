"""`recsys train als`, `recommend continue`, `evaluate continuation/listens` on a generated demo catalog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.demo.catalog import DemoConfig, generate_mpd
from pipelines.ingest.mpd import ingest_mpd
from recsys.catalog import db
from recsys.catalog.schema import ModelVersion

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A demo catalog of 4 slices (the 5th slice is kept aside as an unseen test source)."""
    root = tmp_path_factory.mktemp("cf")
    paths = generate_mpd(root / "mpd", DemoConfig(playlists=500, per_slice=100, seed=11))
    url = f"sqlite:///{root / 'catalog.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    report = ingest_mpd(engine, paths[:4])
    assert report.ok
    engine.dispose()
    env = {"RECSYS_DATABASE_URL": url, "RECSYS_DATA_DIR": str(root / "data"), "HELDOUT": str(paths[4])}
    result = runner.invoke(app, ["train", "als", "--factors", "16", "--iterations", "8", "--json"], env=env)
    assert result.exit_code == 0, result.output
    env["VERSION"] = json.loads(result.output)["version"]
    return env


def invoke(env: dict[str, str], *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), env=env)


def test_train_records_the_model(demo_env: dict[str, str]) -> None:
    engine = db.make_engine(demo_env["RECSYS_DATABASE_URL"])
    with engine.connect() as conn:
        rows = conn.execute(sa.select(ModelVersion.kind, ModelVersion.version, ModelVersion.path)).all()
    assert [(k, v) for k, v, _ in rows] == [("als", demo_env["VERSION"])]
    assert (Path(rows[0][2]) / "factors.npz").is_file()


def test_continue_a_playlist_stays_in_its_genre(demo_env: dict[str, str]) -> None:
    engine = db.make_engine(demo_env["RECSYS_DATABASE_URL"])
    with engine.connect() as conn:
        name, seeds = conn.execute(
            sa.text(
                "SELECT p.name, group_concat(pt.track_id) FROM playlist p JOIN playlist_track pt "
                "ON pt.playlist_id = p.id WHERE p.source_key = 'mpd:3' GROUP BY p.id"
            )
        ).one()
    genre = name.rsplit(" ", 1)[0]
    result = invoke(demo_env, "recommend", "continue", "--playlist", "mpd:3", "--n", "20", "--json")
    assert result.exit_code == 0, result.output
    recs = json.loads(result.output)
    assert len(recs) == 20
    assert not {r["track_id"] for r in recs} & {int(s) for s in seeds.split(",")}
    assert all(r["reason"] for r in recs)
    in_genre = sum(r["artist"].lower().startswith(genre) for r in recs)
    assert in_genre >= 18, (genre, [r["artist"] for r in recs])


def test_continue_from_tracks_reports_unknown_ones(demo_env: dict[str, str]) -> None:
    engine = db.make_engine(demo_env["RECSYS_DATABASE_URL"])
    with engine.connect() as conn:
        uris = conn.execute(sa.text("SELECT spotify_uri FROM track ORDER BY id LIMIT 2")).scalars().all()
    result = invoke(
        demo_env,
        "recommend", "continue", "--tracks", f"{uris[0]},spotify:track:{'0' * 22}", "--tracks", uris[1], "--n", "5",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"spotify:track:{'0' * 22}: no such track in the catalog" in result.output
    assert len([line for line in result.output.splitlines() if line.strip().startswith(("1.", "5."))]) == 2


def test_title_only_is_a_cold_start(demo_env: dict[str, str]) -> None:
    result = invoke(demo_env, "recommend", "continue", "--title", "Jazz", "--n", "10", "--json")
    assert result.exit_code == 0, result.output
    recs = json.loads(result.output)
    assert len(recs) == 10
    assert sum(r["artist"].startswith("Jazz") for r in recs) >= 9


def test_errors_are_one_line(demo_env: dict[str, str]) -> None:
    result = invoke(demo_env, "recommend", "continue")
    assert result.exit_code == 1 and "give --playlist" in result.output
    result = invoke(demo_env, "recommend", "continue", "--title", "x", "--model", "bpr")
    assert result.exit_code == 1 and "no bpr model" in result.output
    result = invoke(demo_env, "evaluate", "continuation", "--methods", "svd")
    assert result.exit_code == 1 and "unknown method" in result.output
    trained_on = str(Path(demo_env["HELDOUT"]).parent / "mpd.slice.0-99.json")
    result = invoke(
        demo_env, "evaluate", "continuation", "--methods", "popularity", "--test-source", trained_on
    )
    assert result.exit_code == 1 and "already ingested into the catalog" in result.output


def test_evaluate_held_out_and_test_source(demo_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    args = [
        "evaluate",
        "continuation",
        "--methods",
        "popularity,knn,als,hybrid",
        "--n",
        "100",
        "--json",
        str(out),
    ]
    result = invoke(demo_env, *args, "--test-playlists", "20")
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["test_playlists"] == 20 and len(report["categories"]) == 10
    assert "| hybrid |" in result.output

    result = invoke(demo_env, *args, "--test-source", demo_env["HELDOUT"], "--test-playlists", "40")
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["test_playlists"] == 40
    assert report["settings"]["split"].startswith("test source heldout-")
    assert report["settings"]["train_shape"][0] == 400  # the test playlists never reached training
    overall = {m: r["overall"] for m, r in report["results"].items()}
    assert overall["als"]["r_precision"] > overall["popularity"]["r_precision"]
    assert overall["hybrid"]["r_precision"] > overall["popularity"]["r_precision"]


def test_continue_with_a_users_feedback_and_one_method(demo_env: dict[str, str]) -> None:
    from recsys.catalog.feedback import DISLIKE, record_feedback

    args = ["recommend", "continue", "--playlist", "mpd:3", "--n", "10", "--json"]
    plain = json.loads(invoke(demo_env, *args, "--method", "knn").output)
    assert len(plain) == 10 and all(r["sources"] == ["knn"] for r in plain)
    disliked = plain[0]["track_id"]
    engine = db.make_engine(demo_env["RECSYS_DATABASE_URL"])
    record_feedback(engine, user="ana", track_id=disliked, rating=DISLIKE)
    result = invoke(demo_env, *args, "--user", "ana", "--method", "knn")
    assert result.exit_code == 0, result.output
    recs = json.loads(result.output)
    assert len(recs) == 10 and disliked not in {r["track_id"] for r in recs}
    assert all(r["sources"] == ["knn"] for r in recs)
    # without --user the stored opinion does not apply; another user's neither
    assert json.loads(invoke(demo_env, *args, "--method", "knn").output)[0]["track_id"] == disliked
    other = invoke(demo_env, *args, "--method", "knn", "--user", "bo")
    assert "no feedback stored for user 'bo'" in other.output

    hybrid = json.loads(invoke(demo_env, *args, "--user", "ana").output)
    assert disliked not in {r["track_id"] for r in hybrid}
    assert len({s for r in hybrid for s in r["sources"]}) > 1


def test_an_unknown_method_is_one_line(demo_env: dict[str, str]) -> None:
    result = invoke(demo_env, "recommend", "continue", "--playlist", "mpd:3", "--method", "seq2seq")
    assert result.exit_code == 1
    assert "method 'seq2seq' is not available (no trained playlist encoder" in result.output
    assert (
        "use one of hybrid, als, knn, playlist_knn, title, popularity, artist_knn, seed_artists"
        in result.output
    )
    result = invoke(demo_env, "recommend", "continue", "--playlist", "mpd:3", "--method", "svd")
    assert result.exit_code == 1 and "unknown method 'svd'" in result.output
    assert "Traceback" not in result.output
