"""The nightly pipeline's definition: a TOML file validated by pydantic.

Every key is optional; a missing file means no sources to pull (the model and index
steps run over what the catalog holds). A bad file is one :class:`ConfigError` line
naming the key, like the settings' (``als.factors=0: must be at least 1``).
Relative paths are taken from the file's folder.
"""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recsys.config import Settings
from recsys.errors import ConfigError

Cadence = Literal["always", "daily", "weekly", "never"]
AudioEncoder = Literal["dsp", "culturemert"]
# How long after its last success a step of each cadence is due again; an hour's slack,
# so that a job started at the same time every day finds yesterday's run due.
CADENCE_PERIOD: dict[str, timedelta | None] = {
    "always": timedelta(0),
    "daily": timedelta(days=1) - timedelta(hours=1),
    "weekly": timedelta(days=7) - timedelta(hours=1),
    "never": None,
}
FILE_NAME = "nightly.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TableSource(_Strict):
    """A CSV/Parquet file of tracks, playlist entries or listens (``recsys ingest table``)."""

    path: Path
    kind: Literal["tracks", "playlists", "listens"]
    id_prefix: str = "table"
    namespace: str = "catalog"


class ListensSource(_Strict):
    """A listening history (``recsys ingest listens``)."""

    path: Path
    format: Literal["lastfm-2k", "lastfm-1k", "csv"]
    id_prefix: str = "table"


class Sources(_Strict):
    mpd: list[Path] = Field(default_factory=list)
    audio: list[Path] = Field(default_factory=list)
    tables: list[TableSource] = Field(default_factory=list)
    listens: list[ListensSource] = Field(default_factory=list)
    spotify_playlists: list[str] = Field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.mpd or self.audio or self.tables or self.listens or self.spotify_playlists)


class Encoders(_Strict):
    """Which encoders embed: audio encoders by name, and the video–music model's ``music`` vectors."""

    audio: list[AudioEncoder] = Field(default_factory=lambda: list[AudioEncoder](["dsp"]))
    audio_cadence: Cadence = "always"
    music: bool = False  # needs a trained video–music model (``recsys train trimodal``)
    music_cadence: Cadence = "weekly"


class Als(_Strict):
    """The ALS model refitted on the catalog's playlists (``recsys train als``'s options)."""

    cadence: Cadence = "daily"
    factors: int = Field(default=64, ge=1)
    iterations: int = Field(default=15, ge=1)
    regularization: float = Field(default=0.05, ge=0)
    alpha: float = Field(default=10.0, gt=0)
    seed: int = 7


class Seq2Seq(_Strict):
    """The playlist encoder retrained and its vectors published (``recsys train playlist-encoder``'s sizes)."""

    enabled: bool = False
    cadence: Cadence = "weekly"
    arch: Literal["gru", "lstm"] = "gru"
    bidirectional: bool = False
    embed_dim: int = Field(default=64, ge=1)
    hidden: int = Field(default=128, ge=1)
    epochs: int = Field(default=5, ge=1)
    batch_size: int = Field(default=64, ge=1)
    sampled_negatives: int = Field(default=1024, ge=0)
    seed: int = 7


class Trimodal(_Strict):
    """The video–text–music model retrained on a folder of videos (``recsys train trimodal``'s options)
    and published through the gate: ``metric`` of the ``query`` mode on the held-out clips."""

    enabled: bool = False
    cadence: Cadence = "weekly"
    videos: Path | None = None  # videos with their soundtracks (and manifest.jsonl or sidecar tags)
    descriptions: Path | None = None  # by video name: JSON object, JSON lines or CSV
    frames: Literal["descriptor", "clip"] = "descriptor"
    clip_model: str | None = None  # an id or a directory, with frames = "clip"
    epochs: int = Field(default=40, ge=1)
    text_dropout: float = Field(default=0.5, ge=0, le=1)
    metric: Literal["recall@1", "recall@5", "recall@10"] = "recall@10"
    query: Literal["video", "text", "video+text"] = "video+text"

    def problem(self) -> str | None:
        """What a valid section cannot combine, as ``key: reason``."""
        if self.enabled and self.videos is None:
            return "trimodal.videos: required when trimodal.enabled is true"
        if self.clip_model is not None and self.frames != "clip":
            return f'trimodal.clip_model={self.clip_model!r}: only with frames = "clip"'
        return None


class Gate(_Strict):
    """A new model is published only if its ``metric`` is at most ``tolerance`` below the serving one's."""

    metric: Literal["r_precision", "ndcg"] = "r_precision"
    tolerance: float = Field(default=0.01, ge=0)


class Validation(_Strict):
    """The fixed validation split: playlists carved from the catalog once, never trained on."""

    playlists: int = Field(default=200, ge=10)
    seed: int = 0
    n: int = Field(default=500, ge=10)  # recommendations scored per playlist


class NightlyConfig(_Strict):
    sources: Sources = Field(default_factory=Sources)
    encoders: Encoders = Field(default_factory=Encoders)
    als: Als = Als()  # frozen: one default instance may be shared
    seq2seq: Seq2Seq = Seq2Seq()
    trimodal: Trimodal = Trimodal()
    gate: Gate = Gate()
    validation: Validation = Validation()
    path: Path | None = None  # the file it was read from (None: the defaults)

    def with_paths_from(self, folder: Path) -> NightlyConfig:
        """Relative source paths taken from ``folder`` (the config file's)."""

        def here(path: Path) -> Path:
            return path if path.is_absolute() else (folder / path)

        src = self.sources
        sources = src.model_copy(
            update={
                "mpd": [here(p) for p in src.mpd],
                "audio": [here(p) for p in src.audio],
                "tables": [t.model_copy(update={"path": here(t.path)}) for t in src.tables],
                "listens": [s.model_copy(update={"path": here(s.path)}) for s in src.listens],
            }
        )
        video = self.trimodal
        trimodal = video.model_copy(
            update={
                "videos": None if video.videos is None else here(video.videos),
                "descriptions": None if video.descriptions is None else here(video.descriptions),
            }
        )
        return self.model_copy(update={"sources": sources, "trimodal": trimodal})


def default_path(settings: Settings) -> Path:
    """``<data dir>/nightly.toml``."""
    return default_path_in(settings.data_dir)


def default_path_in(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


def load_config(path: Path | None, settings: Settings) -> NightlyConfig:
    """The pipeline of ``path`` (default ``<data dir>/nightly.toml``; a default path that does
    not exist gives the defaults: no sources). An unreadable or invalid file raises ConfigError."""
    explicit = path is not None
    path = path if path is not None else default_path(settings)
    if not path.is_file():
        if explicit:
            raise ConfigError(f"{path}: no such pipeline file")
        return NightlyConfig()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, path)


def parse_config(data: dict[str, Any], path: Path) -> NightlyConfig:
    """Validate a parsed TOML document; the first problem becomes one line naming its key."""
    if "path" in data:
        raise ConfigError(f"{path}: path: not a pipeline key")
    try:
        config = NightlyConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: " + "; ".join(_describe(e) for e in exc.errors())) from None
    if (problem := config.trimodal.problem()) is not None:
        raise ConfigError(f"{path}: {problem}")
    return config.with_paths_from(path.resolve().parent).model_copy(update={"path": path})


def _describe(error: Any) -> str:
    key = ".".join(str(part) for part in error.get("loc", ())) or "?"
    if error["type"] == "extra_forbidden":
        return f"{key}: not a pipeline key"
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    shown = f"={value!r}" if isinstance(value, str | int | float | bool) else ""
    return f"{key}{shown}: {message[:1].lower() + message[1:]}"


def to_toml(config: NightlyConfig) -> str:
    """The config as a TOML document :func:`load_config` reads back (absolute paths)."""
    src = config.sources
    lines = ["[sources]"]
    lines.append(f"mpd = [{', '.join(_q(str(p)) for p in src.mpd)}]")
    lines.append(f"audio = [{', '.join(_q(str(p)) for p in src.audio)}]")
    lines.append(f"spotify_playlists = [{', '.join(_q(p) for p in src.spotify_playlists)}]")
    for table in src.tables:
        lines += ["", "[[sources.tables]]", *_pairs(table.model_dump(mode="json"))]
    for listens in src.listens:
        lines += ["", "[[sources.listens]]", *_pairs(listens.model_dump(mode="json"))]
    for section in ("encoders", "als", "seq2seq", "trimodal", "gate", "validation"):
        lines += ["", f"[{section}]", *_pairs(getattr(config, section).model_dump(mode="json"))]
    return "\n".join(lines) + "\n"


def _pairs(values: dict[str, Any]) -> list[str]:
    """``key = value`` lines; a key whose value is None is left out (TOML has no null)."""
    return [f"{key} = {_value(value)}" for key, value in values.items() if value is not None]


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, str):
        return _q(value)
    return repr(value)


def _q(text: str) -> str:
    """A TOML basic string."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped) + '"'
