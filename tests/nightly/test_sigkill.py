"""SIGKILL at any step loses nothing committed: a run killed mid-embed, and again mid-index, then a
run to the end, leaves the catalog and the vector store equal to those of a run never interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from pipelines.nightly.runner import run_nightly
from recsys.catalog import runs
from recsys.catalog.schema import AudioAsset, ModelVersion, Playlist, PlaylistTrack, Track, TrackEmbedding
from recsys.vectorstore import open_store
from recsys.vectorstore.collections import TRACKS
from tests.cli.child import child_env, command
from tests.nightly.conftest import Pipeline, make_pipeline


def _prepared(shared_data: Path, root: Path) -> Pipeline:
    made = make_pipeline(f"sqlite:///{root / 'catalog.db'}", shared_data, root)
    made.add_slices(0, 12)
    made.add_audio(0, 4)
    made.config()
    return made


def _kill_during(made: Pipeline, step: str) -> None:
    """Start ``recsys nightly`` and SIGKILL it as soon as ``step`` is running."""
    env = child_env(
        {
            "RECSYS_DATA_DIR": str(made.settings.data_dir),
            "RECSYS_DATABASE_URL": str(made.settings.database_url),
            "RECSYS_VECTOR_STORE": str(made.root / "vectors"),
        }
    )
    child = subprocess.Popen(
        command("nightly", "--config", str(made.root / "nightly.toml")),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    query = sa.text("SELECT count(*) FROM pipeline_step WHERE step = :step AND status = 'running'")
    try:
        deadline = time.monotonic() + 240
        while True:
            with made.engine.connect() as conn:
                if conn.execute(query, {"step": step}).scalar_one():
                    break
            assert child.poll() is None, f"the run ended before {step} was caught running"
            assert time.monotonic() < deadline, f"{step} never ran"
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()


def _catalog(engine: sa.Engine) -> dict[str, object]:
    with engine.connect() as conn:
        counts = {
            t.__tablename__: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (Track, Playlist, PlaylistTrack, AudioAsset, TrackEmbedding)
        }
        models = sorted(
            tuple(row) for row in conn.execute(sa.select(ModelVersion.kind, ModelVersion.version))
        )
        query = sa.select(TrackEmbedding.track_id, TrackEmbedding.input_checksum)
        embedded = sorted(tuple(row) for row in conn.execute(query))
    return {"counts": counts, "models": models, "embedded": embedded}


def _points(made: Pipeline) -> dict[int, tuple[dict[str, object], dict[str, np.ndarray]]]:
    with open_store(made.settings) as store:
        return {
            int(r.id): (r.payload, {k: np.asarray(v) for k, v in r.vectors.items()})
            for r in store.scroll(TRACKS, with_vectors=True)
        }


def test_a_run_killed_mid_embed_and_mid_index_ends_equal_to_one_never_killed(
    shared_data: Path, tmp_path: Path
) -> None:
    whole = _prepared(shared_data, tmp_path / "whole")
    killed = _prepared(shared_data, tmp_path / "killed")
    run_nightly(whole.settings, whole.engine, whole.config())

    _kill_during(killed, "embed-audio")
    _kill_during(killed, "index")
    last = run_nightly(killed.settings, killed.engine, killed.config())
    assert last.worked == ["index"]  # every step before was done by the killed runs
    with killed.engine.connect() as conn:
        records = runs.history(conn, "nightly")
    assert [r.run.status for r in records] == ["done", "killed", "killed"]
    assert [(s.step, s.status) for s in records[2].steps][-1] == ("embed-audio", "killed")
    assert [(s.step, s.status) for s in records[1].steps][-1] == ("index", "killed")
    assert records[1].steps[1].status == "done"  # the second run finished the interrupted embedding

    assert _catalog(killed.engine) == _catalog(whole.engine)
    expected, found = _points(whole), _points(killed)
    assert set(found) == set(expected)
    for point_id, (payload, vectors) in expected.items():
        assert found[point_id][0] == payload
        assert set(found[point_id][1]) == set(vectors)
        for name, vector in vectors.items():
            np.testing.assert_allclose(found[point_id][1][name], vector, rtol=1e-6)
    whole.engine.dispose()
    killed.engine.dispose()
