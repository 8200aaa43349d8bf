"""A nightly pipeline over part of the real data: MPD slices and audio files linked into a folder
the test grows, the settings of a data dir of its own, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipelines.nightly.config import NightlyConfig, load_config
from recsys.catalog import db
from recsys.config import Settings, load_settings
from tests.conftest import unavailable

# The smallest audio files of the shared set (seconds each), so the DSP encoder is quick.
AUDIO = (
    "456440__inspectorj__bird-whistling-robin-single-13.ogg",
    "sorohanro_-_solo-trumpet-06.ogg",
    "198-209-0000.ogg",
    "5703-47212-0000.ogg",
)


@dataclass
class Pipeline:
    """A data dir, a catalog and a pipeline file whose source folders the test fills."""

    root: Path
    settings: Settings
    engine: sa.Engine
    slices: list[Path]  # every real slice, in name order
    audio: list[Path]

    @property
    def mpd_dir(self) -> Path:
        return self.root / "mpd"

    @property
    def audio_dir(self) -> Path:
        return self.root / "audio"

    def add_slices(self, start: int, stop: int) -> list[Path]:
        return _link(self.slices[start:stop], self.mpd_dir)

    def add_audio(self, start: int, stop: int) -> list[Path]:
        return _link(self.audio[start:stop], self.audio_dir)

    def config(self, **sections: dict[str, Any]) -> NightlyConfig:
        """The pipeline file: the two source folders, the DSP encoder, a small ALS, a strict gate;
        ``sections`` replace keys (``als={"cadence": "weekly"}``)."""
        data: dict[str, dict[str, Any]] = {
            "sources": {"mpd": ["mpd"], "audio": ["audio"]},
            "encoders": {"audio": ["dsp"]},
            "als": {"cadence": "always", "factors": 16, "iterations": 5},
            "gate": {"tolerance": 0.0},
            "validation": {"playlists": 30, "n": 100},
        }
        for name, values in sections.items():
            data[name] = {**data.get(name, {}), **values}
        path = self.root / "nightly.toml"
        path.write_text(
            "".join(
                f"[{name}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
                for name, values in data.items()
            )
        )
        return load_config(path, self.settings)


def _link(paths: list[Path], folder: Path) -> list[Path]:
    """Links in ``folder`` to ``paths`` (the real data is read in place, never copied)."""
    links = [folder / path.name for path in paths]
    for link, path in zip(links, paths, strict=True):
        link.symlink_to(path)
    return links


def make_pipeline(url: str, shared_data: Path, root: Path) -> Pipeline:
    """A pipeline whose catalog is at ``url`` and whose data dir and source folders are under ``root``."""
    mpd = shared_data / "mpd_trimmed"
    audio = [shared_data / "audio" / "librosa" / name for name in AUDIO]
    if not mpd.is_dir() or not all(p.is_file() for p in audio):
        unavailable(f"the trimmed MPD or the audio files are not under {shared_data}")
    (root / "mpd").mkdir(parents=True)
    (root / "audio").mkdir()
    settings = load_settings(data_dir=root / "data", database_url=url, vector_store=str(root / "vectors"))
    settings.ensure_data_dir()
    engine = db.make_engine(url)
    db.upgrade(engine)
    return Pipeline(root, settings, engine, sorted(mpd.glob("*.json")), audio)


@pytest.fixture
def pipeline(catalog_url: str, shared_data: Path, tmp_path: Path) -> Iterator[Pipeline]:
    made = make_pipeline(catalog_url, shared_data, tmp_path)
    yield made
    made.engine.dispose()
