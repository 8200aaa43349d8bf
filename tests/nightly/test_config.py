"""The pipeline file: defaults without one, relative paths, and one line naming the key of any mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.nightly.config import NightlyConfig, default_path, load_config, to_toml
from recsys.config import load_settings
from recsys.errors import ConfigError


@pytest.fixture
def settings(tmp_path: Path):  # type: ignore[no-untyped-def]
    return load_settings(data_dir=tmp_path / "data")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline" / "nightly.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_no_file_at_the_default_path_means_no_sources(settings) -> None:  # type: ignore[no-untyped-def]
    config = load_config(None, settings)
    assert config.sources.is_empty() and config.path is None
    assert default_path(settings) == settings.data_dir / "nightly.toml"


def test_a_named_file_that_does_not_exist_is_an_error(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=r"missing\.toml: no such pipeline file"):
        load_config(tmp_path / "missing.toml", settings)


def test_relative_paths_are_taken_from_the_file_s_folder(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = _write(
        tmp_path,
        '[sources]\nmpd = ["slices", "/abs/one.json"]\naudio = ["music"]\n'
        '[[sources.tables]]\npath = "t.csv"\nkind = "tracks"\n'
        '[als]\ncadence = "weekly"\nfactors = 8\n[gate]\ntolerance = 0.02\n',
    )
    config = load_config(path, settings)
    folder = path.parent.resolve()
    assert config.sources.mpd == [folder / "slices", Path("/abs/one.json")]
    assert config.sources.audio == [folder / "music"]
    assert config.sources.tables[0].path == folder / "t.csv"
    assert (config.als.cadence, config.als.factors, config.gate.tolerance) == ("weekly", 8, 0.02)


def test_the_video_folder_and_descriptions_are_taken_from_the_file_s_folder(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = _write(
        tmp_path,
        '[trimodal]\nenabled = true\nvideos = "clips"\ndescriptions = "words.jsonl"\nepochs = 3\n',
    )
    config = load_config(path, settings)
    folder = path.parent.resolve()
    assert (config.trimodal.videos, config.trimodal.descriptions) == (
        folder / "clips",
        folder / "words.jsonl",
    )
    assert (config.trimodal.cadence, config.trimodal.frames, config.trimodal.epochs) == (
        "weekly",
        "descriptor",
        3,
    )
    assert load_config(_write(tmp_path, "[trimodal]\n"), settings).trimodal.videos is None


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[als]\nfactors = 0\n", "als.factors=0: input should be greater than or equal to 1"),
        (
            '[als]\ncadence = "hourly"\n',
            "als.cadence='hourly': input should be 'always', 'daily', 'weekly' or 'never'",
        ),
        ("[als]\nfactor = 8\n", "als.factor: not a pipeline key"),
        ("[sourcez]\n", "sourcez: not a pipeline key"),
        ('[encoders]\naudio = ["mert"]\n', "encoders.audio.0='mert': input should be 'dsp' or 'culturemert'"),
        ('[[sources.tables]]\npath = "x.csv"\n', "sources.tables.0.kind: field required"),
        ("[gate]\ntolerance = -1\n", "gate.tolerance=-1: input should be greater than or equal to 0"),
        ("[trimodal]\nepochs = 0\n", "trimodal.epochs=0: input should be greater than or equal to 1"),
        (
            "[trimodal]\ntext_dropout = 1.5\n",
            "trimodal.text_dropout=1.5: input should be less than or equal to 1",
        ),
        (
            '[trimodal]\nframes = "pixels"\n',
            "trimodal.frames='pixels': input should be 'descriptor' or 'clip'",
        ),
        (
            '[trimodal]\nmetric = "recall@3"\n',
            "trimodal.metric='recall@3': input should be 'recall@1', 'recall@5' or 'recall@10'",
        ),
        ("[trimodal]\nenabled = true\n", "trimodal.videos: required when trimodal.enabled is true"),
        (
            '[trimodal]\nvideos = "v"\nclip_model = "openai/clip"\n',
            "trimodal.clip_model='openai/clip': only with frames = \"clip\"",
        ),
        ('[trimodal]\nvideo = "v"\n', "trimodal.video: not a pipeline key"),
    ],
)
def test_a_mistake_is_one_line_naming_the_key(settings, tmp_path: Path, text: str, line: str) -> None:  # type: ignore[no-untyped-def]
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, settings)
    message = str(caught.value)
    assert message == f"{path}: {line}" and "\n" not in message


def test_invalid_toml_is_one_line(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = _write(tmp_path, "[als\nfactors = 8\n")
    with pytest.raises(ConfigError, match=r"nightly\.toml: not valid TOML: ") as caught:
        load_config(path, settings)
    assert "\n" not in str(caught.value)


def test_a_written_config_reads_back_the_same(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = _write(
        tmp_path,
        '[sources]\nmpd = ["a \\"quoted\\" dir"]\nspotify_playlists = ["37i9dQZF1DXcBWIGoYBM5M"]\n'
        '[[sources.listens]]\npath = "l.tsv"\nformat = "lastfm-1k"\n[encoders]\nmusic = true\n'
        '[trimodal]\nenabled = true\nvideos = "clips"\nframes = "clip"\nclip_model = "/m/clip"\n'
        'text_dropout = 0.25\nquery = "video"\n',
    )
    config = load_config(path, settings)
    again = _write(tmp_path, to_toml(config))
    assert load_config(again, settings).model_dump(exclude={"path"}) == config.model_dump(exclude={"path"})
    assert NightlyConfig().encoders.audio == ["dsp"]


def test_the_demo_writes_a_pipeline_of_its_own_sources_and_keeps_a_user_s(tmp_path: Path) -> None:
    from pipelines.demo.job import DemoPlan, write_nightly_config

    settings = load_settings(data_dir=tmp_path / "data")
    settings.ensure_data_dir()
    lines: list[str] = []
    write_nightly_config(
        settings.data_dir, settings.data_dir / "demo" / "mpd", DemoPlan(video_clips=0), lines.append
    )
    config = load_config(None, settings)
    assert config.path == settings.data_dir / "nightly.toml"
    assert config.sources.mpd == [(settings.data_dir / "demo" / "mpd").resolve()]
    assert (config.encoders.audio, config.encoders.music) == (["dsp"], False)
    assert (config.als.factors, config.als.iterations) == (64, 15)
    config.path.write_text("[als]\nfactors = 8\n")
    write_nightly_config(settings.data_dir, settings.data_dir / "demo" / "mpd", DemoPlan(), lines.append)
    assert load_config(None, settings).als.factors == 8 and lines[-1].startswith("nightly pipeline: kept ")


def test_the_documented_example_is_a_valid_pipeline(settings) -> None:  # type: ignore[no-untyped-def]
    example = Path(__file__).resolve().parents[2] / "docs" / "nightly.example.toml"
    config = load_config(example, settings)
    assert config.sources.tables[0].kind == "tracks" and config.sources.listens[0].format == "csv"
    assert config.trimodal.videos == example.parent / "incoming" / "videos"
    paths = {"sources": True, "path": True, "trimodal": {"videos"}}  # the example names a folder
    assert config.model_dump(exclude=paths) == NightlyConfig().model_dump(exclude=paths)
