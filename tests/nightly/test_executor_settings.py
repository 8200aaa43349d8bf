"""The nightly embedding steps decode and embed where RECSYS_EXECUTOR, RECSYS_RAY_ADDRESS and
RECSYS_RAY_ACTORS say, as ``recsys embed audio`` and ``recsys embed music`` do."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pipelines.embed import audio, music
from pipelines.embed.executors import RayExecutor, RayOptions
from pipelines.nightly import steps
from pipelines.nightly.config import load_config
from recsys.config import load_settings


def context(tmp_path: Path, **overrides: Any) -> steps.Context:
    settings = load_settings(data_dir=tmp_path / "data", **overrides)
    return steps.Context(settings, None, load_config(None, settings))  # type: ignore[arg-type]


def test_the_embed_steps_run_on_the_executor_the_settings_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = context(tmp_path, executor="ray", ray_address="127.0.0.1:6390", ray_actors=3)
    seen: dict[str, Any] = {}

    def embed_audio(*args: Any, executor: Any = None, **kwargs: Any) -> audio.EmbedReport:
        seen["embed-audio"] = executor
        return audio.EmbedReport(encoder="dsp", version="v1", model_version_id=1)

    def embed_music(*args: Any, executor: Any = None, **kwargs: Any) -> music.EmbedReport:
        seen["embed-music"] = executor
        return music.EmbedReport(model_version="0123456789abcdef")

    monkeypatch.setattr(steps, "embed_audio", embed_audio)
    monkeypatch.setattr(steps, "_embedders", lambda ctx: [SimpleNamespace(name="audio_dsp")])
    monkeypatch.setattr(music, "embed_music", embed_music)
    monkeypatch.setattr(steps, "load_bundle", lambda path: None)
    monkeypatch.setattr(steps.Context, "store", None)
    steps._audio_run(ctx)
    steps._music_run(ctx)
    for step in ("embed-audio", "embed-music"):
        assert isinstance(seen[step], RayExecutor), step
        assert seen[step].options == RayOptions(address="127.0.0.1:6390", actors=3)


def test_by_default_they_run_in_this_process(tmp_path: Path) -> None:
    assert context(tmp_path).executor() is None
