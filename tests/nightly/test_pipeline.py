"""The nightly pipeline on SQLite and PostgreSQL: a first run builds everything, a run with new slices
and audio does exactly the new work, and a run with nothing new does no model or embedding work."""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa

from pipelines.nightly.runner import STEPS, run_nightly
from recsys.catalog import runs
from recsys.catalog.schema import PipelineStep, Playlist, Track, TrackEmbedding
from recsys.collaborative.store import latest_model
from recsys.vectorstore import open_store
from recsys.vectorstore.collections import TRACKS
from tests.nightly.conftest import Pipeline


def _count(engine: sa.Engine, table: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _embedded(engine: sa.Engine) -> dict[int, object]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(TrackEmbedding.track_id, TrackEmbedding.embedded_at)).all()
    return {int(track): at for track, at in rows}


def test_first_run_builds_then_only_new_inputs_are_done_then_nothing(pipeline: Pipeline) -> None:
    engine, settings = pipeline.engine, pipeline.settings
    pipeline.add_slices(0, 12)
    pipeline.add_audio(0, 3)
    config = pipeline.config(als={"cadence": "weekly"})

    first = run_nightly(settings, engine, config)
    assert first.worked == ["ingest", "embed-audio", "train-als", "evaluate", "publish", "index"]
    assert first.step("embed-music").reason == "music vectors not in the pipeline"
    assert first.step("ingest").counts["new"] == 13  # twelve slices and one audio folder
    assert first.step("embed-audio").counts["embedded"] == 3
    assert first.step("publish").metrics["published"] is True
    serving = latest_model(engine, "als")
    tracks = _count(engine, Track)
    with open_store(settings) as store:
        assert store.count(TRACKS) == tracks
        assert store.count(TRACKS, vector="audio_dsp") == 3
        assert store.count(TRACKS, vector="cf") == len(serving.items.ids)
        version = store.current_version(TRACKS)
        before = {r.id: r for r in store.scroll(TRACKS, with_vectors=True)}
    embedded = _embedded(engine)
    playlists = _count(engine, Playlist)

    new_slices = pipeline.add_slices(12, 15)
    pipeline.add_audio(3, 4)
    second = run_nightly(settings, engine, config)
    assert second.worked == ["ingest", "embed-audio", "index"]
    ingest = second.step("ingest").counts
    assert (ingest["inputs"], ingest["skipped"]) == (16, 12)  # the new slices and the grown folder
    assert ingest["loaded"]["playlists"] == _count(engine, Playlist) - playlists > 0
    assert ingest["loaded"]["audio_assets"] == 1
    assert second.step("embed-audio").counts["embedded"] == 1
    assert second.step("train-als").reason.startswith("not due (weekly")
    added = _count(engine, Track) - tracks
    index = second.step("index").counts
    # the new audio track's point came with its vector from the embed step; the index added the rest
    assert (index["rebuilt"], index["upserted"], index["deleted"]) == (0, added - 1, 0) and added > 1
    assert latest_model(engine, "als").version == serving.version
    with open_store(settings) as store:
        # revisions of the serving version (the embedded batch, then the index's delta), not a rebuild
        assert store.current_version(TRACKS) == second.step("index").metrics["version"] > version
        assert store.count(TRACKS) == tracks + added
        assert store.count(TRACKS, vector="audio_dsp") == 4
        after = {r.id: r for r in store.retrieve(TRACKS, list(before), with_vectors=True)}
    for point_id, old in before.items():  # the points of unchanged tracks, untouched
        assert after[point_id].payload == old.payload
        assert set(after[point_id].vectors) == set(old.vectors)
        for name, vector in old.vectors.items():
            np.testing.assert_array_equal(after[point_id].vectors[name], vector)
    now = _embedded(engine)
    assert len(now) == 4 and all(now[track] == at for track, at in embedded.items())
    assert len(new_slices) == 3

    third = run_nightly(settings, engine, config)
    assert third.worked == []
    assert {s.status for s in third.steps} == {"skipped"}
    with engine.connect() as conn:
        record = runs.history(conn, "nightly", n=1)[0]
        assert record.run.id == third.run_id and record.run.status == "done"
        assert [s.status for s in record.steps] == ["skipped"] * len(STEPS)
        assert conn.execute(sa.select(sa.func.count()).select_from(PipelineStep)).scalar_one() == 3 * len(
            STEPS
        )
