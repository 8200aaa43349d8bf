"""The embed job on SQLite and PostgreSQL: incremental, versioned, resumable, rejects with reasons."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import sqlalchemy as sa

from pipelines.demo.audio import DemoAudioConfig, DemoClip, generate_demo_audio, register_demo_audio
from pipelines.embed.audio import embed_audio
from recsys.catalog.schema import IngestReject, ModelVersion, PipelineRun, TrackEmbedding
from recsys.embedders.culturemert import CultureMertConfig, CultureMertEmbedder
from recsys.embedders.dsp_audio import DspAudioEmbedder, DspConfig
from recsys.vectorstore.client import ClientStore
from recsys.vectorstore.collections import TRACKS, tracks_spec
from tests.embedders.conftest import SMALL


def bad_files(folder: Path) -> list[DemoClip]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.wav").write_bytes(b"")
    sf.write(folder / "silent.wav", np.zeros(22_050, dtype=np.float32), 22_050)
    sf.write(
        folder / "whole.flac", np.random.default_rng(0).normal(0, 0.1, 22_050 * 3).astype(np.float32), 22_050
    )
    data = (folder / "whole.flac").read_bytes()
    (folder / "truncated.flac").write_bytes(data[: len(data) // 2])
    (folder / "whole.flac").unlink()
    (folder / "renamed.mp3").write_text("a text file with an audio name\n" * 20)
    return [
        DemoClip(folder / n, "bad", "none", 0)
        for n in ("empty.wav", "silent.wav", "truncated.flac", "renamed.mp3")
    ]


@pytest.fixture
def catalog(catalog_engine: sa.Engine, tmp_path: Path) -> tuple[sa.Engine, list[int]]:
    clips = generate_demo_audio(tmp_path / "demo", DemoAudioConfig(clips_per_style=2, seconds=3.0))
    ids = register_demo_audio(catalog_engine, clips + bad_files(tmp_path / "bad"))
    return catalog_engine, ids


def rows(engine: sa.Engine, vector: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(TrackEmbedding).where(TrackEmbedding.vector_name == vector)
        ).scalar_one()


def test_embeds_once_rejects_bad_files_and_reembeds_on_a_new_version(
    catalog: tuple[sa.Engine, list[int]],
) -> None:
    engine, ids = catalog
    store = ClientStore(":memory:")
    first = embed_audio(engine, store, DspAudioEmbedder(), batch_size=3)
    assert (first.pending, first.embedded, first.rejected) == (12, 8, 4)
    assert dict(first.reasons) == {"empty": 1, "silent": 1, "truncated": 1, "unsupported": 1}
    assert all(": " in line for line in first.rejects)
    assert store.count(TRACKS, vector="audio_dsp") == 8 and rows(engine, "audio_dsp") == 8
    with engine.connect() as conn:
        reasons = conn.execute(sa.select(IngestReject.location, IngestReject.reason)).all()
        runs = conn.execute(sa.select(PipelineRun.status)).scalars().all()
    assert len(reasons) == 4 and {loc.split(" [")[0].rsplit("/", 1)[-1] for loc, _ in reasons} == {
        "empty.wav",
        "silent.wav",
        "truncated.flac",
        "renamed.mp3",
    }
    assert runs == ["done"]
    hit = store.retrieve(TRACKS, [ids[0]], with_vectors=True)[0]
    assert hit.payload["genres"] == ["raga-drone"] and len(hit.vectors["audio_dsp"]) == 128

    second = embed_audio(engine, store, DspAudioEmbedder(), batch_size=3)
    assert (second.embedded, second.rejected, second.skipped_rejected) == (0, 0, 4)

    changed = embed_audio(engine, store, DspAudioEmbedder(DspConfig(n_mels=48)), batch_size=3)
    assert changed.embedded == 8 and changed.version != first.version
    assert store.count(TRACKS) == 8 and rows(engine, "audio_dsp") == 8


def test_a_killed_run_resumes_without_duplicates(
    catalog: tuple[sa.Engine, list[int]], mert_dir: Path
) -> None:
    engine, _ = catalog
    store = ClientStore(":memory:")
    store.ensure_collection(tracks_spec({"audio": SMALL["hidden_size"]}))  # the small test model's size
    embedder = CultureMertEmbedder(CultureMertConfig(model=str(mert_dir), window_s=1.0))
    dsp = embed_audio(engine, store, DspAudioEmbedder(), batch_size=4)
    assert dsp.embedded == 8

    class Killed(Exception):
        pass

    def kill_after_first(batch: int) -> None:
        if batch == 0:
            raise Killed

    with pytest.raises(Killed):
        embed_audio(engine, store, embedder, batch_size=3, on_batch=kill_after_first)
    assert rows(engine, "audio") == 3
    resumed = embed_audio(engine, store, embedder, batch_size=3)
    assert resumed.embedded == 5 and resumed.rejected == 4
    assert rows(engine, "audio") == 8 and store.count(TRACKS, vector="audio") == 8
    # the audio vectors joined the DSP ones on the same points
    assert store.count(TRACKS) == 8 and store.count(TRACKS, vector="audio_dsp") == 8
    with engine.connect() as conn:
        statuses = conn.execute(sa.select(PipelineRun.status).order_by(PipelineRun.id)).scalars().all()
    assert statuses == ["done", "failed", "done"]
    assert embed_audio(engine, store, embedder).embedded == 0


def test_a_switch_of_precision_makes_every_track_pending_again(
    catalog: tuple[sa.Engine, list[int]], mert_dir: Path
) -> None:
    engine, _ = catalog
    store = ClientStore(":memory:")
    store.ensure_collection(tracks_spec({"audio": SMALL["hidden_size"]}))

    def embedder(precision: str) -> CultureMertEmbedder:
        return CultureMertEmbedder(CultureMertConfig(model=str(mert_dir), window_s=1.0, precision=precision))

    def versions_of_audio_rows() -> set[str]:
        with engine.connect() as conn:
            return set(
                conn.execute(
                    sa.select(ModelVersion.version)
                    .join(TrackEmbedding, TrackEmbedding.model_version_id == ModelVersion.id)
                    .where(TrackEmbedding.vector_name == "audio")
                ).scalars()
            )

    first = embed_audio(engine, store, embedder("float32"), batch_size=4)
    assert (first.pending, first.embedded, first.rejected) == (12, 8, 4)  # 4 bad files
    assert embed_audio(engine, store, embedder("float32")).embedded == 0
    int8 = embed_audio(engine, store, embedder("int8"), batch_size=4)
    # every track again (the bad files are tried again too), under a model version that says int8
    assert (int8.pending, int8.embedded, int8.rejected) == (12, 8, 4) and int8.version != first.version
    assert versions_of_audio_rows() == {int8.version} and "|int8|" in int8.version
    assert store.count(TRACKS, vector="audio") == 8 and rows(engine, "audio") == 8
    with engine.connect() as conn:
        params = dict(conn.execute(sa.select(ModelVersion.version, ModelVersion.params)).all())
    assert params[int8.version]["precision"] == "int8" and params[first.version]["precision"] == "float32"
    assert embed_audio(engine, store, embedder("int8")).embedded == 0
    back = embed_audio(engine, store, embedder("float32"), batch_size=4)
    assert (back.embedded, back.skipped_rejected, back.version) == (8, 4, first.version)
    assert versions_of_audio_rows() == {first.version}


@pytest.mark.shared_data
@pytest.mark.slow
def test_every_real_audio_file_embeds_with_both_encoders(
    shared_data: Path, sqlite_engine: sa.Engine, mert_dir: Path
) -> None:
    files = sorted(
        p for p in (shared_data / "audio").rglob("*") if p.suffix.lower() in {".wav", ".mp3", ".ogg", ".flac"}
    )
    assert len(files) >= 50
    clips = [DemoClip(p, "real", "unknown", 0) for p in files]
    register_demo_audio(sqlite_engine, clips)
    store = ClientStore(":memory:")
    store.ensure_collection(tracks_spec({"audio": SMALL["hidden_size"]}))
    dsp = embed_audio(sqlite_engine, store, DspAudioEmbedder(), batch_size=16, max_duration_s=10)
    mert = embed_audio(
        sqlite_engine,
        store,
        CultureMertEmbedder(CultureMertConfig(model=str(mert_dir), window_s=2.0)),
        batch_size=16,
        max_duration_s=10,
    )
    for report in (dsp, mert):
        assert report.embedded + report.rejected == report.pending
        assert report.rejected == 0, report.rejects
    assert store.count(TRACKS, vector="audio") == store.count(TRACKS, vector="audio_dsp") == dsp.embedded
