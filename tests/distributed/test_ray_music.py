"""``recsys embed music --executor ray`` on a real local Ray cluster: the same vectors and rejects as
the in-process job, nothing embedded twice, and nothing on stderr but the command's own lines."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
import torch

from pipelines.demo.audio import DemoAudioConfig, DemoClip, generate_demo_audio, register_demo_audio
from pipelines.embed.music import embed_music
from recsys.catalog import db
from recsys.catalog.schema import AudioAsset
from recsys.embedders.music_frames import MusicFrameEncoder
from recsys.models.trimodal import TrimodalConfig, TrimodalModel
from recsys.models.trimodal_bundle import FeatureSpec, load_bundle, model_file, save_bundle
from recsys.recommend.video_scoring import MODEL_FIELD
from recsys.vectorstore.base import VectorStore
from recsys.vectorstore.client import ClientStore
from recsys.vectorstore.collections import TRACKS
from recsys.vectorstore.edge import EdgeStore
from tests.distributed.conftest import DIES_ONCE_ENV, RayCluster
from tests.distributed.test_ray_embed import only_own_lines, rejects
from tests.embedders.test_embed_job import bad_files

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

SUMMARY = re.compile(r"music vectors: (\d+) embedded, (\d+) unchanged, (\d+) failed \(model (\w+)\)")


def small_bundle(path: Path) -> str:
    """A small trimodal model (seeded weights: what is compared is where it runs, not what it learnt)."""
    torch.manual_seed(3)
    config = TrimodalConfig(
        video_dim=4,
        text_dim=4,
        music_dim=MusicFrameEncoder().dim,
        d_model=16,
        heads=2,
        layers=1,
        ff_dim=16,
        embed_dim=8,
    )
    return save_bundle(path, TrimodalModel(config).eval(), FeatureSpec())


def catalog(data_dir: Path, clips: list[DemoClip]) -> sa.Engine:
    data_dir.mkdir(parents=True)
    engine = db.make_engine(f"sqlite:///{data_dir / 'catalog.db'}")
    db.upgrade(engine)
    register_demo_audio(engine, clips)
    return engine


def music_vectors(engine: sa.Engine, store: VectorStore, version: str) -> dict[str, np.ndarray]:
    """Each track's ``music`` vector (stamped with ``version``), by its file."""
    with engine.connect() as conn:
        uris = dict(conn.execute(sa.select(AudioAsset.track_id, AudioAsset.uri)).all())
    points = store.retrieve(TRACKS, list(uris), with_vectors=["music"])
    out = {}
    for p in points:
        if "music" in p.vectors:
            assert p.payload[MODEL_FIELD] == version
            out[uris[int(p.id)]] = np.asarray(p.vectors["music"])
    return out


def test_cli_on_ray_matches_in_process_and_runs_once(ray_cluster: RayCluster, tmp_path: Path) -> None:
    clips = generate_demo_audio(tmp_path / "demo", DemoAudioConfig(clips_per_style=1, seconds=2.0))
    gone = tmp_path / "gone.wav"
    gone.write_bytes(clips[0].path.read_bytes())
    clips = clips + bad_files(tmp_path / "bad") + [DemoClip(gone, "bad", "none", 0)]
    local, remote = catalog(tmp_path / "local", clips), catalog(tmp_path / "ray", clips)
    gone.unlink()  # registered, then missing: a reject of its own kind
    version = small_bundle(model_file(tmp_path / "ray"))
    local_store = ClientStore(":memory:")
    path = model_file(tmp_path / "ray")
    done = embed_music(local, load_bundle(path), path, local_store, batch_size=3)
    assert done.embedded >= 4 and len(done.failed) >= 2  # the clips; the empty and the missing files

    env = {**ray_cluster.env, "RECSYS_DATA_DIR": str(tmp_path / "ray")}
    for name in ("RECSYS_DATABASE_URL", "RECSYS_VECTOR_STORE", DIES_ONCE_ENV):
        env.pop(name, None)
    command = [sys.executable, "-m", "pipelines.cli", "embed", "music"]
    # one actor: the pending tracks are one batch (the command's 32 files), so one page is one block
    command += ["--executor", "ray", "--ray-address", ray_cluster.address, "--ray-actors", "1"]

    def run() -> tuple[int, int, int, str]:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        only_own_lines(result.stderr, ("error: track ",))  # the rejects, and no Ray noise
        found = SUMMARY.search(result.stdout)
        assert found, result.stdout
        return int(found[1]), int(found[2]), int(found[3]), found[4]

    assert run() == (done.embedded, 0, len(done.failed), version)
    assert rejects(remote) == rejects(local)  # same locations, same reasons
    with EdgeStore(tmp_path / "ray" / "vectors") as store:
        got = music_vectors(remote, store, version)
    want = music_vectors(local, local_store, version)
    assert set(got) == set(want) and len(want) == done.embedded
    for uri, vector in want.items():
        cosine = float(vector @ got[uri] / (np.linalg.norm(vector) * np.linalg.norm(got[uri])))
        assert cosine >= 0.9999, uri

    assert run() == (0, done.embedded, len(done.failed), version)  # only the rejects are tried again
