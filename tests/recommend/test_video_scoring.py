"""Video scoring end to end: a small synthetic set trained once, its music embedded from the catalog, videos scored."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from pipelines.embed_music import embed_music, register_synthetic_music
from pipelines.synthetic_av import SynthConfig, generate
from pipelines.train_trimodal import TrainSettings, run_training
from recsys.catalog import db
from recsys.errors import VideoError
from recsys.recommend.video_scoring import FeatureSpec, MusicIndex, VideoScorer, load_bundle, model_paths
from tests import videofiles


@dataclass
class Trained:
    data_dir: Path
    videos: Path
    rows: list[dict]
    model_path: Path
    index_path: Path
    scorer: VideoScorer


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    root = tmp_path_factory.mktemp("trimodal")
    videos, data_dir = root / "videos", root / "data"
    rows = generate(videos, SynthConfig(clips=40, seconds=4.0, twin_clips=2))
    model_path, index_path = model_paths(data_dir)
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
    result = embed_music(engine, load_bundle(model_path), model_path, index_path)
    assert (result.embedded, result.failed) == (40, [])
    engine.dispose()
    scorer = VideoScorer(load_bundle(model_path), MusicIndex.load(index_path), device="cpu")
    return Trained(data_dir, videos, rows, model_path, index_path, scorer)


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


def test_the_true_soundtrack_ranks_better_than_chance_on_training_clips(trained: Trained) -> None:
    titles = {
        int(t): p["title"]
        for t, p in zip(trained.scorer.index.track_ids, trained.scorer.index.payloads, strict=True)
    }
    ranks = []
    for row in trained.rows[:20]:
        result = trained.scorer.score(trained.videos / row["video"], n=40)
        order = [titles[t.track_id].split(" ")[0] for t in result.tracks]
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


def test_embedding_is_incremental(trained: Trained, catalog_engine: sa.Engine, tmp_path: Path) -> None:
    rows = trained.rows[:6]
    assert register_synthetic_music(catalog_engine, trained.videos, rows) == 6
    assert register_synthetic_music(catalog_engine, trained.videos, rows) == 0
    bundle = load_bundle(trained.model_path)
    index = tmp_path / "music.parquet"
    first = embed_music(catalog_engine, bundle, trained.model_path, index)
    assert (first.embedded, first.unchanged) == (6, 0)
    again = embed_music(catalog_engine, bundle, trained.model_path, index)
    assert (again.embedded, again.unchanged) == (0, 6)
    with catalog_engine.begin() as conn:  # one track's audio changed
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
    third = embed_music(catalog_engine, bundle, trained.model_path, index)
    assert (third.embedded, third.unchanged) == (1, 4)
    assert len(third.failed) == 1 and "file is missing" in third.failed[0]
    assert len(MusicIndex.load(index)) == 6


def test_score_video_command(trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.cli import app

    monkeypatch.setenv("RECSYS_DATA_DIR", str(trained.data_dir))
    monkeypatch.setenv("RECSYS_DEVICE", "cpu")
    runner = CliRunner()
    video = str(trained.videos / trained.rows[2]["video"])
    result = runner.invoke(app, ["score-video", video, "--prompt", "slow celtic flute", "--n", "5", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert len(payload["tracks"]) == 5 and payload["prompt"] == "slow celtic flute"
    assert {"score", "video", "text", "track_id"} <= payload["tracks"][0].keys()
    table = runner.invoke(app, ["score-video", video, "--filter", "culture=japanese", "--n", "3"])
    assert table.exit_code == 0 and "rank" in table.output
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
