"""The audio embedding job on a real local Ray cluster: the same vectors and rejects as in-process,
nothing embedded twice, and an actor that dies has its batch done again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from pipelines.demo.audio import DemoAudioConfig, generate_demo_audio, register_demo_audio
from pipelines.embed.audio import embed_audio
from pipelines.embed.executors import RayExecutor, RayOptions
from pipelines.ingest.audio_dir import ingest_audio_dir
from recsys.catalog import db
from recsys.catalog.schema import AudioAsset, IngestReject, TrackEmbedding
from recsys.embedders.dsp_audio import DspAudioEmbedder
from recsys.vectorstore.client import ClientStore
from recsys.vectorstore.collections import TRACKS
from recsys.vectorstore.edge import EdgeStore
from tests.distributed.conftest import DIES_ONCE_ENV, RayCluster
from tests.embedders.test_embed_job import bad_files

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

MAX_S = 3.0  # seconds of each file embedded: the vectors are compared, not the whole recordings


class DiesOnceDsp(DspAudioEmbedder):
    """The DSP embedder, except that the first actor to embed a batch dies (once per cluster)."""

    def embed(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        marker = os.environ.get(DIES_ONCE_ENV)
        if marker and not os.path.exists(marker):
            Path(marker).write_text(str(os.getpid()))
            os._exit(1)
        return super().embed(clips)


def catalog(data_dir: Path, audio: Path, bad: Path) -> sa.Engine:
    """A catalog of the real audio folder plus four damaged files, as the command line makes it."""
    data_dir.mkdir(parents=True)
    engine = db.make_engine(f"sqlite:///{data_dir / 'catalog.db'}")
    db.upgrade(engine)
    ingest_audio_dir(engine, audio)
    register_demo_audio(engine, bad_files(bad))
    return engine


def vectors(engine: sa.Engine, store: ClientStore | EdgeStore) -> dict[str, np.ndarray]:
    """The DSP vector of each track, by its first file (the one embedded)."""
    with engine.connect() as conn:
        uris = dict(
            conn.execute(sa.select(AudioAsset.track_id, AudioAsset.uri).order_by(AudioAsset.id.desc())).all()
        )
    points = store.retrieve(TRACKS, list(uris), with_vectors=True)
    return {uris[int(p.id)]: np.asarray(p.vectors["audio_dsp"]) for p in points if "audio_dsp" in p.vectors}


def rejects(engine: sa.Engine) -> set[tuple[str, str]]:
    with engine.connect() as conn:
        return {
            (r.location, r.reason)
            for r in conn.execute(sa.select(IngestReject.location, IngestReject.reason))
        }


def only_own_lines(stderr: str, own: tuple[str, ...]) -> None:
    """Every line on the command's stderr is one of its own (starts with one of ``own``): no Ray notices,
    warnings or progress bars."""
    noise = [line for line in stderr.splitlines() if line.strip() and not line.startswith(own)]
    assert not noise, "\n".join(noise[:20])


def rows(engine: sa.Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(TrackEmbedding.track_id)).scalars())


@pytest.mark.shared_data
def test_cli_on_ray_matches_in_process_and_runs_once(
    ray_cluster: RayCluster, shared_data: Path, tmp_path: Path
) -> None:
    audio, bad = shared_data / "audio", tmp_path / "bad"
    local = catalog(tmp_path / "local", audio, bad)
    local_store = ClientStore(":memory:")
    done = embed_audio(local, local_store, DspAudioEmbedder(), batch_size=8, max_duration_s=MAX_S)
    assert done.embedded > 40 and done.rejected == 4

    remote = catalog(tmp_path / "ray", audio, bad)
    env = {
        **ray_cluster.env,
        "RECSYS_DATA_DIR": str(tmp_path / "ray"),
        "RECSYS_AUDIO_MAX_DURATION_S": str(MAX_S),
        "RECSYS_AUDIO_BATCH_SIZE": "8",
    }
    for name in ("RECSYS_DATABASE_URL", "RECSYS_VECTOR_STORE", DIES_ONCE_ENV):
        env.pop(name, None)
    command = [sys.executable, "-m", "pipelines.cli", "embed", "audio", "--encoder", "dsp"]
    command += ["--executor", "ray", "--ray-address", ray_cluster.address, "--ray-actors", "2", "--json"]

    def run() -> dict:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        only_own_lines(result.stderr, ("reject: ",))  # --json: the report holds the rejects
        return json.loads(result.stdout)

    first = run()
    assert (first["embedded"], first["rejected"]) == (done.embedded, done.rejected)
    assert sorted(first["rejects"]) == sorted(done.rejects)
    assert rejects(remote) == rejects(local)  # same locations, same reasons
    with EdgeStore(tmp_path / "ray" / "vectors") as store:
        got = vectors(remote, store)
        assert store.count(TRACKS, vector="audio_dsp") == done.embedded
    want = vectors(local, local_store)
    assert set(got) == set(want) and len(want) == done.embedded
    for uri, vector in want.items():
        cosine = float(vector @ got[uri] / (np.linalg.norm(vector) * np.linalg.norm(got[uri])))
        assert cosine >= 0.9999, uri
    assert sorted(rows(remote)) == sorted(rows(local))

    again = run()
    assert (again["embedded"], again["rejected"], again["skipped_rejected"]) == (0, 0, 4)


def test_an_actor_that_dies_has_its_batch_done_again(
    ray_cluster: RayCluster, sqlite_engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    clips = generate_demo_audio(tmp_path / "demo", DemoAudioConfig(clips_per_style=3, seconds=2.0))
    ids = register_demo_audio(sqlite_engine, clips + bad_files(tmp_path / "bad"))
    store = ClientStore(":memory:")
    executor = RayExecutor(RayOptions(address=ray_cluster.address, actors=2))
    report = embed_audio(sqlite_engine, store, DiesOnceDsp(), batch_size=3, executor=executor)
    assert ray_cluster.marker.is_file()  # an actor did die
    assert (report.embedded, report.rejected) == (12, 4)
    assert sorted(rows(sqlite_engine)) == sorted(ids[:12])  # each once (one row per track and vector)
    assert store.count(TRACKS, vector="audio_dsp") == store.count(TRACKS) == 12
    assert len(rejects(sqlite_engine)) == 4
    assert sum(b.rows for b in executor.stats.batches) == 16  # every track came back exactly once
