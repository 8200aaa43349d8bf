"""The quality gate and failures: a worse model is not published, and a failed step leaves what
serves alone and is where the next run resumes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pipelines.nightly.runner import STEPS, run_nightly
from pipelines.nightly.status import pipeline_status
from pipelines.nightly.steps import Context, Outcome
from pipelines.nightly.vectors import INDEX
from recsys.catalog import runs
from recsys.collaborative.store import latest_model
from recsys.errors import RecsysError
from recsys.vectorstore import open_store
from recsys.vectorstore.collections import TRACKS
from tests.nightly.conftest import Pipeline

NO_AUDIO = {"audio": []}
MPD_ONLY = {"audio": []}
GATE = {"metric": "ndcg", "tolerance": 0.005}


def test_a_worse_model_is_refused_and_the_serving_one_stays(pipeline: Pipeline) -> None:
    engine, settings = pipeline.engine, pipeline.settings
    pipeline.add_slices(0, 30)
    first = run_nightly(settings, engine, pipeline.config(sources=MPD_ONLY, encoders=NO_AUDIO, gate=GATE))
    assert first.step("publish").metrics["published"] is True
    serving = latest_model(engine, "als").version
    with open_store(settings) as store:
        version = store.current_version(TRACKS)

    planted = pipeline.config(sources=MPD_ONLY, encoders=NO_AUDIO, gate=GATE, als={"factors": 1})
    second = run_nightly(settings, engine, planted)
    assert second.worked == ["train-als", "evaluate", "publish"]
    evaluation = second.step("evaluate").metrics
    assert evaluation["serving_version"] == serving and evaluation["candidate_version"] != serving
    assert evaluation["candidate"]["ndcg"] < evaluation["serving"]["ndcg"] - 0.005
    assert evaluation["serving_basis"] == "as served"  # the pipeline fitted it without the split
    gate = second.step("publish").metrics
    assert gate["published"] is False
    assert gate["reason"].startswith("ndcg ") and f"{serving} keeps serving" in gate["reason"]
    assert second.step("index").status == "skipped"
    assert latest_model(engine, "als").version == serving
    with open_store(settings) as store:
        assert store.current_version(TRACKS) == version
    with engine.connect() as conn:
        record = runs.last_run(conn, "nightly")
    assert record is not None and record.run.status == "done"
    assert (
        record.metrics["gate"]["published"] is False and "keeps serving" in record.metrics["gate"]["reason"]
    )

    again = run_nightly(settings, engine, planted)  # the refusal stands while nothing changes
    assert again.worked == []


def test_a_model_trained_on_the_validation_playlists_is_compared_by_a_refit(pipeline: Pipeline) -> None:
    from pipelines.ingest.mpd import ingest_mpd
    from pipelines.train.als import train_factorization
    from recsys.collaborative.factorization import MFConfig

    engine, settings = pipeline.engine, pipeline.settings
    pipeline.add_slices(0, 30)
    assert ingest_mpd(engine, [pipeline.mpd_dir]).ok
    config = MFConfig(kind="als", factors=16, iterations=5, regularization=0.05, alpha=10.0, seed=7)
    outside = train_factorization(engine, settings.data_dir / "models", config)  # every playlist
    result = run_nightly(settings, engine, pipeline.config(sources=MPD_ONLY, encoders=NO_AUDIO, gate=GATE))
    evaluation = result.step("evaluate").metrics
    assert evaluation["serving_version"] == outside.version
    assert evaluation["serving_basis"].startswith("its settings refitted without the validation playlists")
    # the same settings on the same training data: the same model, the same score
    assert evaluation["serving"] == evaluation["candidate"]
    assert result.step("publish").metrics["published"] is True
    assert latest_model(engine, "als").version == evaluation["candidate_version"] != outside.version


def test_a_failed_step_keeps_what_serves_and_the_next_run_resumes_there(pipeline: Pipeline) -> None:
    engine, settings = pipeline.engine, pipeline.settings
    pipeline.add_slices(0, 30)
    config = pipeline.config(sources=MPD_ONLY, encoders=NO_AUDIO)

    def broken(ctx: Context) -> Outcome:
        raise OSError("disk full")

    failing = tuple(dataclasses.replace(INDEX, run=broken) if s is INDEX else s for s in STEPS)
    with pytest.raises(RecsysError, match=r"step index failed: OSError: disk full"):
        run_nightly(settings, engine, config, steps=failing)
    with engine.connect() as conn:
        record = runs.last_run(conn, "nightly")
    assert record is not None and record.run.status == "failed"
    assert record.run.error == "step index: OSError: disk full"
    assert [(s.step, s.status) for s in record.steps][-1] == ("index", "failed")
    assert record.steps[-1].error == "OSError: disk full"
    with open_store(settings) as store:
        assert not store.has_collection(TRACKS)  # nothing half-written serves
    due = {s["step"]: s["due"] for s in pipeline_status(settings, engine, config)["steps"]}
    assert due["index"] == "due" and due["train-als"] == "not due: inputs unchanged"

    resumed = run_nightly(settings, engine, config)
    assert resumed.worked == ["index"]
    with open_store(settings) as store:
        assert store.count(TRACKS, vector="cf") == len(latest_model(engine, "als").items.ids)


def test_the_playlist_encoder_is_retrained_and_published_when_due(shared_data: Path, tmp_path: Path) -> None:
    from recsys.catalog.schema import Playlist
    from recsys.vectorstore.collections import PLAYLISTS
    from tests.nightly.conftest import make_pipeline
    from tests.nightly.test_pipeline import _count

    made = make_pipeline(f"sqlite:///{tmp_path / 'catalog.db'}", shared_data, tmp_path)
    made.add_slices(0, 12)
    tiny = {"enabled": True, "embed_dim": 8, "hidden": 8, "epochs": 1, "sampled_negatives": 0}
    config = made.config(sources=MPD_ONLY, encoders=NO_AUDIO, seq2seq=tiny)
    first = run_nightly(made.settings, made.engine, config)
    step = first.step("train-seq2seq")
    assert step.status == "done" and step.counts["playlists"] == _count(made.engine, Playlist)
    with open_store(made.settings) as store:
        assert store.count(PLAYLISTS, vector="seq2seq") == step.counts["playlists"]
        assert store.count(TRACKS, vector="seq2seq") == step.counts["tracks"] > 0
    again = run_nightly(made.settings, made.engine, config)
    assert again.step("train-seq2seq").reason.startswith("not due (weekly")
    made.engine.dispose()
