"""Video scoring end to end: a small synthetic set trained once, its music embedded from the catalog into the
vector store, videos scored against it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pipelines.demo.video import SynthConfig, generate
from pipelines.embed.music import embed_music, register_synthetic_music
from pipelines.index import rebuild_from_catalog
from pipelines.train.trimodal import TrainSettings, run_training
from recsys.catalog import db
from recsys.catalog.schema import IngestReject
from recsys.errors import ConfigError, DimensionMismatchError, NotFoundError, VideoError
from recsys.models.trimodal_bundle import FeatureSpec, load_bundle, model_file
from recsys.recommend.filters import track_filter
from recsys.recommend.video_scoring import VideoScorer
from recsys.vectorstore import Filter, Match, MatchAny, Point, VectorStore
from recsys.vectorstore.client import ClientStore
from recsys.vectorstore.collections import TRACKS, tracks_spec
from recsys.vectorstore.edge import EdgeStore
from tests import videofiles


@dataclass
class Trained:
    data_dir: Path
    videos: Path
    rows: list[dict]
    model_path: Path
    store: VectorStore
    scorer: VideoScorer


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    root = tmp_path_factory.mktemp("trimodal")
    videos, data_dir = root / "videos", root / "data"
    rows = generate(videos, SynthConfig(clips=40, seconds=4.0, twin_clips=2))
    model_path = model_file(data_dir)
    report = run_training(
        videos,
        model_path,
        spec=FeatureSpec(),
        settings=TrainSettings(epochs=12, batch_size=16, device="cpu"),
        config_overrides={"d_model": 32, "ff_dim": 64, "embed_dim": 32, "layers": 1},
        cache=data_dir / "cache",
        candidates=5,
    )
    assert report.clips == 40 and report.train + report.test == 40 and not report.skipped
    assert report.metrics["retrieval"]["candidates"] == 5
    assert report.metrics["twins"]["pool"] == 6
    engine = db.make_engine(f"sqlite:///{data_dir / 'catalog.db'}")
    db.upgrade(engine)
    assert register_synthetic_music(engine, videos, rows) == 40
    store = EdgeStore(
        root / "vectors"
    )  # the embedded default backend, outside the data dir the CLI tests use
    result = embed_music(engine, load_bundle(model_path), model_path, store, batch_size=16)
    assert (result.embedded, result.unchanged, result.failed) == (40, 0, [])
    assert store.count(TRACKS, vector="music") == 40
    engine.dispose()
    scorer = VideoScorer(load_bundle(model_path), store, device="cpu")
    yield Trained(data_dir, videos, rows, model_path, store, scorer)
    store.close()


def test_scores_are_ranked_and_split_into_video_and_text(trained: Trained) -> None:
    path = trained.videos / trained.rows[0]["video"]
    plain = trained.scorer.score(path, n=10)
    assert len(plain.tracks) == 10 and plain.frames == 4 and plain.soundtrack == "usable"
    scores = [t.score for t in plain.tracks]
    assert scores == sorted(scores, reverse=True)
    for t in plain.tracks:
        assert t.text == 0.0 and t.video == pytest.approx(t.score, abs=1e-5)
    guided = trained.scorer.score(path, prompt="fast busy Indian percussion", n=10)
    assert any(abs(t.text) > 1e-4 for t in guided.tracks)
    for t in guided.tracks:
        assert t.video + t.text == pytest.approx(t.score, abs=1e-5)
    assert set(plain.timings) == {"decode_s", "frame_encoding_s", "fusion_s", "search_s"}


def test_filters_restrict_the_candidates(trained: Trained) -> None:
    path = trained.videos / trained.rows[1]["video"]
    result = trained.scorer.score(path, n=40, filters={"culture": "indian"})
    expected = sum(1 for r in trained.rows if r["tags"]["culture"] == "indian")
    assert len(result.tracks) == expected > 0
    assert all("indian" in t.payload["cultures"] for t in result.tracks)
    assert all(t.payload["music_model"] == trained.scorer.bundle.version for t in result.tracks)
    # Within the filter, the order is the unfiltered order.
    everything = [t.track_id for t in trained.scorer.score(path, n=40).tracks]
    assert [t.track_id for t in result.tracks] == [
        i for i in everything if i in {t.track_id for t in result.tracks}
    ]
    shouted = trained.scorer.score(path, n=40, filters={"Culture": "INDIAN"})
    assert [t.track_id for t in shouted.tracks] == [t.track_id for t in result.tracks]
    instrument = next(r["tags"]["instrument"] for r in trained.rows if r["tags"]["culture"] == "indian")
    both = trained.scorer.score(path, n=40, filters={"culture": "indian", "genre": instrument})
    assert len(both.tracks) == sum(
        1 for r in trained.rows if r["tags"]["culture"] == "indian" and r["tags"]["instrument"] == instrument
    )
    assert all(instrument in t.payload["genres"] for t in both.tracks)
    assert trained.scorer.score(path, n=40, filters={"culture": "martian"}).tracks == []


def test_filters_map_to_the_store_filter() -> None:
    assert track_filter(None) is None and track_filter({}) is None
    assert track_filter({"culture": "indian", "year": " 1999 "}) == Filter.where(
        MatchAny("cultures", ("indian", "Indian", "INDIAN")), Match("year", 1999)
    )
    assert track_filter({"artist": "ravi shankar"}) == Filter.where(
        MatchAny("artist", ("ravi shankar", "Ravi shankar", "Ravi Shankar", "RAVI SHANKAR"))
    )
    with pytest.raises(
        ConfigError, match="cannot filter on 'title': the fields are artist, artist_id, culture"
    ):
        track_filter({"title": "x"})
    with pytest.raises(ConfigError, match="year is a whole number"):
        track_filter({"year": "recent"})


def test_the_true_soundtrack_ranks_better_than_chance_on_training_clips(trained: Trained) -> None:
    ranks = []
    for row in trained.rows[:20]:
        result = trained.scorer.score(trained.videos / row["video"], n=40)
        order = [t.payload["title"].split(" ")[0] for t in result.tracks]
        ranks.append(order.index(row["clip_id"]) + 1)
    assert np.median(ranks) < 20.5 / 2  # chance: median 20.5 of 40


def test_videos_without_usable_audio_score_on_frames(trained: Trained, tmp_path: Path) -> None:
    silent = trained.scorer.score(videofiles.without_audio(tmp_path / "silent.mp4"), n=3)
    assert len(silent.tracks) == 3 and silent.soundtrack == "no audio stream"
    broken = trained.scorer.score(videofiles.broken_audio(tmp_path / "broken.mkv"), prompt="calm piano", n=3)
    assert len(broken.tracks) == 3 and broken.soundtrack.startswith("audio stream cannot be decoded")
    raw = trained.scorer.score(videofiles.raw_h264(tmp_path / "raw.h264", seconds=6.0), n=3)
    assert len(raw.tracks) == 3
    text = tmp_path / "clip.mp4"
    text.write_text("not a video")
    with pytest.raises(VideoError, match=r"clip\.mp4: not a video file"):
        trained.scorer.score(text)


def rejects(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(IngestReject).where(IngestReject.source == "embed-music")
        ).scalar_one()


def test_embedding_is_incremental(trained: Trained, catalog_engine: sa.Engine, tmp_path: Path) -> None:
    rows = trained.rows[:6]
    assert register_synthetic_music(catalog_engine, trained.videos, rows) == 6
    assert register_synthetic_music(catalog_engine, trained.videos, rows) == 0
    bundle = load_bundle(trained.model_path)
    store = EdgeStore(tmp_path / "vectors")
    first = embed_music(catalog_engine, bundle, trained.model_path, store, batch_size=4)
    assert (first.embedded, first.unchanged) == (6, 0)
    again = embed_music(catalog_engine, bundle, trained.model_path, store)
    assert (again.embedded, again.unchanged) == (0, 6)
    with catalog_engine.begin() as conn:  # one track's audio changed, another's file went missing
        conn.execute(
            sa.text(
                "UPDATE audio_asset SET checksum = 'changed' WHERE id = (SELECT MIN(id) FROM audio_asset)"
            )
        )
        conn.execute(
            sa.text(
                "UPDATE audio_asset SET uri = '/nonexistent/x.wav' WHERE id = (SELECT MAX(id) FROM audio_asset)"
            )
        )
        conn.execute(
            sa.text("DELETE FROM track_embedding WHERE track_id = (SELECT MAX(track_id) FROM audio_asset)")
        )
        last = conn.execute(sa.text("SELECT MAX(track_id) FROM audio_asset")).scalar_one()
        middle = conn.execute(sa.text("SELECT MIN(track_id) + 2 FROM audio_asset")).scalar_one()
    store.delete(TRACKS, [middle])  # a vector lost from the store (its catalog row still says done)
    third = embed_music(catalog_engine, bundle, trained.model_path, store)
    assert (third.embedded, third.unchanged) == (2, 3)
    assert third.failed == [f"track {last} (/nonexistent/x.wav): file is missing"]
    assert rejects(catalog_engine) == 1
    fourth = embed_music(catalog_engine, bundle, trained.model_path, store)  # a missing file is tried again
    assert (fourth.embedded, fourth.unchanged, len(fourth.failed)) == (0, 5, 1)
    assert rejects(catalog_engine) == 1
    assert store.count(TRACKS, vector="music") == 6  # the missing file's vector from the first run stays

    # The stamp survives an index rebuild from the catalog: nothing to embed afterwards.
    rebuilt = rebuild_from_catalog(catalog_engine, store, TRACKS)
    assert rebuilt.carried == {"music": 6}
    [point] = store.retrieve(TRACKS, [middle])
    assert point.payload["music_model"] == bundle.version and point.payload["track_id"] == middle
    assert embed_music(catalog_engine, bundle, trained.model_path, store).embedded == 0

    # A new model version re-embeds every readable track; the old model's scorer refuses the store.
    newer = replace(bundle, version="0123456789abcdef")
    switched = embed_music(catalog_engine, newer, trained.model_path, store)
    assert (switched.embedded, switched.unchanged, len(switched.failed)) == (5, 0, 1)
    with pytest.raises(
        ConfigError, match=r"1 of 6 'music' vectors were not embedded by model 0123456789abcdef"
    ):
        VideoScorer(newer, store, device="cpu")
    with pytest.raises(
        ConfigError, match=rf"5 of 6 'music' vectors were not embedded by model {bundle.version}"
    ):
        VideoScorer(bundle, store, device="cpu")
    store.close()


def test_an_interrupted_run_keeps_its_committed_batches(trained: Trained, sqlite_engine: sa.Engine) -> None:
    register_synthetic_music(sqlite_engine, trained.videos, trained.rows[:5])
    bundle = load_bundle(trained.model_path)
    store = ClientStore(":memory:")

    def crash(number: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        embed_music(sqlite_engine, bundle, trained.model_path, store, batch_size=2, on_batch=crash)
    assert store.count(TRACKS, vector="music") == 2
    resumed = embed_music(sqlite_engine, bundle, trained.model_path, store, batch_size=2)
    assert (resumed.embedded, resumed.unchanged) == (3, 2)
    with sqlite_engine.connect() as conn:
        runs = conn.execute(
            sa.text("SELECT status FROM pipeline_run WHERE job = 'embed-music' ORDER BY id")
        ).scalars()
        assert list(runs) == ["failed", "done"]


def test_the_collection_takes_the_model_size(trained: Trained, sqlite_engine: sa.Engine) -> None:
    register_synthetic_music(sqlite_engine, trained.videos, trained.rows[:3])
    bundle = load_bundle(trained.model_path)
    dim = bundle.model.config.embed_dim
    store = ClientStore(":memory:")
    # Created by another job with the default `music` size and no music vectors yet: resized in place.
    store.ensure_collection(tracks_spec({"audio_dsp": 4}))
    store.upsert(TRACKS, [Point(999, {"audio_dsp": np.ones(4)}, {"title": "kept"})])
    with pytest.raises(
        NotFoundError, match=r"holds no 'music' vectors in 'tracks': run `recsys embed music`"
    ):
        VideoScorer(bundle, store, device="cpu")
    first = embed_music(sqlite_engine, bundle, trained.model_path, store)
    assert first.resized and first.embedded == 3 and store.spec(TRACKS).sizes["music"] == dim
    [kept] = store.retrieve(TRACKS, [999], with_vectors=True)
    assert kept.payload == {"title": "kept"} and set(kept.vectors) == {"audio_dsp"}
    # Music vectors of another size are not dropped unless asked.
    other = ClientStore(":memory:")
    other.ensure_collection(tracks_spec({"music": dim + 1}))
    other.upsert(TRACKS, [Point(999, {"music": np.ones(dim + 1)}, {"music_model": "old"})])
    with pytest.raises(
        DimensionMismatchError,
        match=rf"holds 1 'music' vectors of size {dim + 1}, the model makes {dim}: run `recsys embed music --resize`",
    ):
        embed_music(sqlite_engine, bundle, trained.model_path, other)
    with pytest.raises(ConfigError, match=rf"'music' vectors have {dim + 1} dimensions"):
        VideoScorer(bundle, other, device="cpu")
    resized = embed_music(sqlite_engine, bundle, trained.model_path, other, resize=True)
    assert resized.resized and resized.embedded == 3
    assert other.count(TRACKS, vector="music") == 3
    [old] = other.retrieve(TRACKS, [999])
    assert "music_model" not in old.payload


def test_score_video_command(trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.cli import app

    monkeypatch.setenv("RECSYS_DATA_DIR", str(trained.data_dir))
    monkeypatch.setenv("RECSYS_DEVICE", "cpu")
    runner = CliRunner()
    video = str(trained.videos / trained.rows[2]["video"])
    unembedded = runner.invoke(app, ["score-video", video])
    assert unembedded.exit_code == 1 and "run `recsys embed music`" in unembedded.output
    embedded = runner.invoke(app, ["embed", "music", "--json"])  # into the data dir's embedded store
    assert embedded.exit_code == 0, embedded.output
    assert json.loads(embedded.stdout)["embedded"] == 40
    again = runner.invoke(app, ["embed", "music"])
    assert again.exit_code == 0 and "music vectors: 0 embedded, 40 unchanged, 0 failed" in again.output
    result = runner.invoke(app, ["score-video", video, "--prompt", "slow celtic flute", "--n", "5", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert len(payload["tracks"]) == 5 and payload["prompt"] == "slow celtic flute"
    assert {"score", "video", "text", "track_id"} <= payload["tracks"][0].keys()
    table = runner.invoke(app, ["score-video", video, "--filter", "culture=japanese", "--n", "3"])
    assert table.exit_code == 0 and "rank" in table.output
    assert table.output.count("japanese") == 3  # each row's title names its culture
    unknown = runner.invoke(app, ["score-video", video, "--filter", "mood=calm"])
    assert unknown.exit_code == 1 and "cannot filter on 'mood'" in unknown.output
    bad = tmp_path / "x.mp4"
    bad.write_text("nope")
    failed = runner.invoke(app, ["score-video", str(bad)])
    assert failed.exit_code == 1 and "x.mp4: not a video file" in failed.output
    assert runner.invoke(app, ["score-video", video, "--filter", "culture"]).exit_code == 1


@pytest.mark.shared_data
def test_every_real_video_scores_with_and_without_a_prompt(trained: Trained, shared_data: Path) -> None:
    videos = sorted((shared_data / "video").glob("*.mp4"))
    assert len(videos) == 6
    for path in videos:
        for prompt in (None, "warm acoustic, slowly building"):
            result = trained.scorer.score(path, prompt=prompt, n=5)
            assert len(result.tracks) == 5 and result.frames >= 2, path.name
            assert result.soundtrack == "usable"
            for t in result.tracks:
                assert t.video + t.text == pytest.approx(t.score, abs=1e-5)


def test_train_embed_and_evaluate_commands(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from pipelines.cli import app

    data_dir = tmp_path / "data"
    shutil.copytree(trained.data_dir / "cache", data_dir / "trimodal" / "cache" / FeatureSpec().key())
    monkeypatch.setenv("RECSYS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("RECSYS_DEVICE", "cpu")
    runner = CliRunner()
    train = runner.invoke(
        app, ["train", "trimodal", "--videos", str(trained.videos), "--epochs", "2", "--json"]
    )
    assert train.exit_code == 0, train.output
    report = json.loads(train.stdout)
    assert report["clips"] == 40 and report["metrics"]["retrieval"]["queries"] == report["test"]
    missing = runner.invoke(app, ["train", "trimodal", "--videos", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "not a directory of videos" in missing.output
    embed = runner.invoke(app, ["embed", "music"])  # the catalog was never created here
    assert embed.exit_code == 1 and "db upgrade" in embed.output
    out = tmp_path / "eval.json"
    evaluate = runner.invoke(
        app,
        [
            "evaluate",
            "video-retrieval",
            "--json",
            str(out),
            "--candidates",
            "5",
            "--ablation",
            "0,0.5",
            "--epochs",
            "1",
        ],
    )
    assert evaluate.exit_code == 0, evaluate.output
    result = json.loads(out.read_text())
    assert set(result["ablation"]) == {"text_dropout=0", "text_dropout=0.5"}
    assert result["ablation"]["text_dropout=0.5"]["retrieval"] == result["retrieval"]
    assert "video+text" in evaluate.stdout


def test_words_alone_rank_the_music_space(trained: Trained) -> None:
    from recsys.errors import InputError
    from recsys.recommend.text_search import search_music

    found = search_music(trained.scorer, "  slow   calm Indian strings ", n=10)
    assert len(found) == 10
    assert [t.score for t in found] == sorted((t.score for t in found), reverse=True)
    for t in found:  # no video: the whole score is the words' part
        assert t.video == 0.0 and t.text == pytest.approx(t.score, abs=1e-5)
    same = search_music(trained.scorer, "slow calm Indian strings", n=10)
    assert [t.track_id for t in same] == [t.track_id for t in found]
    greek = search_music(trained.scorer, "slow calm Indian strings", n=40, filters={"culture": "greek"})
    expected = sum(1 for r in trained.rows if r["tags"]["culture"] == "greek")
    assert len(greek) == expected and all("greek" in t.payload["cultures"] for t in greek)
    with pytest.raises(InputError, match="a few words"):
        search_music(trained.scorer, "   ")
    with pytest.raises(InputError, match="at most 500"):
        search_music(trained.scorer, "x" * 501)
