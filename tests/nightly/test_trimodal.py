"""The video–music model in the nightly pipeline: trained and published on the first run, its music
vectors embedded the same night, not retrained before its cadence, and a worse candidate refused.

A few synthetic clips (the demo's video set: each clip's soundtrack follows its pictures) are
generated once; each test has its own data dir and catalog, whose tracks are the clips' music.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.demo.video import SynthConfig, generate
from pipelines.embed.music import register_synthetic_music
from pipelines.nightly.config import NightlyConfig, load_config
from pipelines.nightly.runner import run_nightly
from pipelines.nightly.status import pipeline_status
from recsys.catalog import db, runs
from recsys.catalog.schema import ModelVersion
from recsys.config import Settings, load_settings
from recsys.models.trimodal_bundle import FeatureSpec, bundle_version, model_file
from recsys.vectorstore import open_store
from recsys.vectorstore.collections import TRACKS

CLIPS = 40


@dataclass
class Clips:
    folder: Path
    rows: list[dict[str, Any]]
    cache: Path  # the clips' features, shared by the tests' data dirs


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    folder = tmp_path_factory.mktemp("clips") / "videos"
    rows = generate(folder, SynthConfig(clips=CLIPS, seconds=3.0, twin_clips=0))
    return Clips(folder, rows, tmp_path_factory.mktemp("features"))


@dataclass
class Night:
    root: Path
    settings: Settings
    engine: sa.Engine
    clips: Clips

    def config(self, tolerance: float = 0.0, **trimodal: Any) -> NightlyConfig:
        """A pipeline with no sources, no audio encoder, the music vectors, a gate (strict by default)
        and the video–music model on the clips (``trimodal`` replaces keys)."""
        section = {"enabled": True, "videos": str(self.clips.folder), "epochs": 2, "metric": "recall@1"}
        data = {
            "encoders": {"audio": [], "music": True},
            "trimodal": {**section, **trimodal},
            "gate": {"tolerance": tolerance},
        }
        path = self.root / "nightly.toml"
        path.write_text(
            "".join(
                f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
                for name, values in data.items()
            )
        )
        return load_config(path, self.settings)

    @property
    def serving(self) -> Path:
        return model_file(self.settings.data_dir)

    def trimodal_versions(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(ModelVersion.version)
                    .where(ModelVersion.kind == "trimodal")
                    .order_by(ModelVersion.id)
                ).scalars()
            )


def _night(url: str, root: Path, clips: Clips) -> Night:
    settings = load_settings(data_dir=root / "data", database_url=url, vector_store=str(root / "vectors"))
    settings.ensure_data_dir()
    # The feature cache the step fills (as `recsys train trimodal` does), shared: decoded once.
    (settings.data_dir / "trimodal").mkdir()
    (settings.data_dir / "trimodal" / "cache").symlink_to(clips.cache)
    engine = db.make_engine(url)
    db.upgrade(engine)
    assert register_synthetic_music(engine, clips.folder, clips.rows) == CLIPS
    return Night(root, settings, engine, clips)


@pytest.fixture
def night(catalog_url: str, tmp_path: Path, clips: Clips) -> Iterator[Night]:
    made = _night(catalog_url, tmp_path, clips)
    yield made
    made.engine.dispose()


def test_the_first_run_publishes_and_embeds_and_a_new_model_is_embedded_the_night_it_serves(
    night: Night,
) -> None:
    config = night.config()
    first = run_nightly(night.settings, night.engine, config)
    step = first.step("train-trimodal")
    assert step.status == "done" and step.metrics["published"] is True
    assert step.metrics["reason"] == "no model serves yet" and step.metrics["serving"] is None
    version = step.metrics["candidate_version"]
    assert bundle_version(night.serving) == version
    assert night.serving.with_name("features.npz").is_file()
    assert step.counts["clips"] == CLIPS and step.counts["train"] + step.counts["held_out"] == CLIPS
    assert night.trimodal_versions() == [version]
    music = first.step("embed-music")
    assert music.status == "done" and music.metrics["model"] == version and music.counts["embedded"] == CLIPS
    with open_store(night.settings) as store:
        assert store.count(TRACKS, vector="music") == CLIPS
    with night.engine.connect() as conn:
        record = runs.last_run(conn, "nightly")
    assert record is not None and record.metrics["trimodal_gate"]["published"] is True

    again = run_nightly(night.settings, night.engine, config)  # the same day: weekly, not due
    assert again.step("train-trimodal").status == "skipped"
    assert again.step("train-trimodal").reason.startswith("not due (weekly")
    assert again.step("embed-music").status == "skipped" and "train-trimodal" not in again.worked
    due = {s["step"]: s["due"] for s in pipeline_status(night.settings, night.engine, config)["steps"]}
    assert due["train-trimodal"].startswith("not due: not due (weekly") and due["embed-music"] != "due"

    # Other options, due at once, a gate that lets any candidate through (a recall is at most 1):
    # the new model serves, and embed-music (weekly, done this morning) writes its vectors at once.
    lenient = night.config(tolerance=1.0, cadence="always", epochs=3, text_dropout=0.25)
    retrained = run_nightly(night.settings, night.engine, lenient)
    step = retrained.step("train-trimodal")
    newer = step.metrics["candidate_version"]
    assert step.status == "done" and step.metrics["published"] is True
    assert newer != version and step.metrics["serving_version"] == version
    assert step.metrics["serving_basis"] == "the candidate's features"
    assert bundle_version(night.serving) == newer and night.trimodal_versions() == [version, newer]
    music = retrained.step("embed-music")
    assert music.status == "done" and music.metrics["model"] == newer and music.counts["embedded"] == CLIPS


def _plant_a_strong_serving_model(night: Night, spec: FeatureSpec | None = None) -> str:
    """A serving model trained, long, on every clip (the held-out ones too): it ranks each held-out
    clip's own soundtrack first, which a candidate that never saw them cannot beat. Its encoders
    are ``spec``'s (default: the pipeline's)."""
    from pipelines.train.trimodal import extract, make_encoders, split
    from recsys.models.trimodal_batches import save_features
    from recsys.models.trimodal_bundle import save_bundle
    from recsys.models.trimodal_training import TrainSettings, default_config, train_model

    spec = spec or FeatureSpec()
    cache = night.serving.parent / "cache" / spec.key()  # where the pipeline looks, so it reuses them
    features = extract(night.clips.folder, spec, make_encoders(spec, "cpu"), cache=cache).features
    model = train_model(
        features, default_config(features), TrainSettings(epochs=30, batch_size=16, device="cpu")
    )
    train, test = split(features.ids)
    save_features(night.serving.with_name("features.npz"), features.subset(train), features.subset(test))
    return save_bundle(night.serving, model, spec, {})


def test_a_worse_candidate_is_refused_and_the_serving_bundle_stays(tmp_path: Path, clips: Clips) -> None:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    night = _night(url, tmp_path, clips)
    serving = _plant_a_strong_serving_model(night)
    before = night.serving.read_bytes()
    features = night.serving.with_name("features.npz").read_bytes()

    result = run_nightly(night.settings, night.engine, night.config(epochs=1))
    step = result.step("train-trimodal")
    assert step.status == "done" and step.metrics["published"] is False
    assert step.counts == {**step.counts, "published": 0, "refused": 1}
    assert step.metrics["serving_version"] == serving and step.metrics["candidate_version"] != serving
    metric = step.metrics["metric"]
    assert metric == "video+text recall@1" and step.metrics["serving"][metric] == 1.0
    assert step.metrics["candidate"][metric] < step.metrics["serving"][metric]
    assert (
        step.metrics["reason"].startswith(f"{metric} ")
        and f"{serving} keeps serving" in step.metrics["reason"]
    )
    assert night.serving.read_bytes() == before  # byte for byte
    assert night.serving.with_name("features.npz").read_bytes() == features
    assert (
        bundle_version(night.serving.parent / "candidate" / "model.pt") == step.metrics["candidate_version"]
    )
    assert step.metrics["candidate_version"] not in night.trimodal_versions()
    with night.engine.connect() as conn:
        record = runs.last_run(conn, "nightly")
    assert record is not None and record.run.status == "done"
    gate = record.metrics["trimodal_gate"]
    assert gate["published"] is False and "keeps serving" in gate["reason"]
    env = {"RECSYS_DATA_DIR": str(night.settings.data_dir), "RECSYS_DATABASE_URL": url}
    history = CliRunner().invoke(app, ["nightly", "history", "--n", "1"], env=env)
    assert history.exit_code == 0 and f"  video–music gate: refused: {gate['reason']}\n" in history.output
    music = result.step("embed-music")  # the serving model's vectors, never the refused one's
    assert music.status == "done" and music.metrics["model"] == serving
    night.engine.dispose()


def test_a_serving_model_of_other_encoders_is_scored_on_the_same_clips_read_its_way(
    tmp_path: Path, clips: Clips
) -> None:
    night = _night(f"sqlite:///{tmp_path / 'catalog.db'}", tmp_path, clips)
    serving = _plant_a_strong_serving_model(night, FeatureSpec(fps=2.0))
    before = night.serving.read_bytes()
    step = run_nightly(night.settings, night.engine, night.config(epochs=1)).step("train-trimodal")
    assert step.metrics["serving_basis"] == "its own encoders' features"
    assert step.metrics["held_out"] == step.counts["held_out"] == CLIPS - step.counts["train"]
    metric = step.metrics["metric"]
    assert step.metrics["serving"][metric] == 1.0 > step.metrics["candidate"][metric]
    assert step.metrics["published"] is False and f"{serving} keeps serving" in step.metrics["reason"]
    assert night.serving.read_bytes() == before
    night.engine.dispose()


def test_an_idle_step_says_why(tmp_path: Path, clips: Clips) -> None:
    night = _night(f"sqlite:///{tmp_path / 'catalog.db'}", tmp_path, clips)
    empty = tmp_path / "empty"
    empty.mkdir()
    for config, why in (
        (night.config(enabled=False), "the video–music model is not in the pipeline"),
        (night.config(videos=str(tmp_path / "missing")), f"no video folder at {tmp_path / 'missing'}"),
        (night.config(videos=str(empty)), f"no videos in {empty}"),
    ):
        due = {s["step"]: s["due"] for s in pipeline_status(night.settings, night.engine, config)["steps"]}
        assert due["train-trimodal"] == f"not due: {why}"
    result = run_nightly(night.settings, night.engine, night.config(videos=str(empty)))
    assert result.step("train-trimodal").reason == f"no videos in {empty}"
    assert not night.serving.exists()
    night.engine.dispose()
