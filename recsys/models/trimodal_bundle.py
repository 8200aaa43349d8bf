"""The trimodal model's bundle: one file with the model and the feature spec, and its model version.

A bundle holds the model config and weights, the :class:`FeatureSpec` naming the
encoders its inputs came from (the scorer rebuilds the same ones), the metrics of
its training run and how it was trained (strategy, devices, nodes, world size), written with ``torch.save`` and read back with ``weights_only``.
Its version is the first 16 hex digits of the file's SHA-256; the embed job records
it in ``model_version`` (kind ``trimodal``, :func:`record_bundle`) and stamps every
``music`` vector with it. The bundle lives at :func:`model_file` under the data dir.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from recsys.catalog.model_versions import record_model_version
from recsys.errors import ConfigError, NotFoundError

MODEL_KIND = "trimodal"

BUNDLE_FORMAT = 1


@dataclass(frozen=True)
class FeatureSpec:
    """Which encoders made a model's inputs; the scorer rebuilds the same ones."""

    frame_encoder: str = "descriptor"  # descriptor or clip
    clip_model: str | None = None  # an id or a directory, for frame_encoder="clip"
    clip_revision: str | None = None
    fps: float = 1.0
    text_encoder: str = "minilm"  # minilm or clip
    text_model: str | None = None
    music_sample_rate: int = 16_000
    max_video_s: float = 64.0

    def key(self) -> str:
        return hashlib.sha1(repr(sorted(asdict(self).items())).encode()).hexdigest()[:12]


def save_bundle(
    path: Path,
    model: Any,
    spec: FeatureSpec,
    metrics: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
) -> str:
    """Write the model (config and weights) with its feature spec; returns the version (content hash).

    ``training``: how it was trained (``TrainSettings.distribution()``), kept in the bundle
    and in its model version's params.
    """
    import torch  # deferred: torch, only to write or read a bundle (FeatureSpec and model_file need none)

    payload = {
        "format": BUNDLE_FORMAT,
        "config": asdict(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "spec": asdict(spec),
        "metrics": metrics or {},
        "training": training or {},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    version = _version(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(path)
    return version


@dataclass
class Bundle:
    model: Any  # TrimodalModel, eval mode, on CPU
    spec: FeatureSpec
    version: str
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)  # strategy, devices, num_nodes, world_size


def load_bundle(path: Path) -> Bundle:
    """The bundle at ``path``, its model in eval mode on the CPU; named errors for a missing or foreign file."""
    import torch  # deferred: torch, only to write or read a bundle

    from recsys.models.trimodal import TrimodalConfig, TrimodalModel  # deferred: torch

    if not path.is_file():
        raise NotFoundError(f"no trained trimodal model at {path} (run `recsys train trimodal` first)")
    data = path.read_bytes()
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, ValueError) as exc:
        raise ConfigError(f"{path}: not a trimodal model bundle ({exc})") from None
    if payload.get("format") != BUNDLE_FORMAT:
        raise ConfigError(f"{path}: bundle format {payload.get('format')} is not {BUNDLE_FORMAT}")
    model = TrimodalModel(TrimodalConfig(**payload["config"]))
    model.load_state_dict(payload["state_dict"])
    return Bundle(
        model.eval(),
        FeatureSpec(**payload["spec"]),
        _version(data),
        payload["metrics"],
        payload.get("training", {}),  # bundles written before it was recorded have none
    )


def _version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def bundle_version(path: Path) -> str:
    """The version of the bundle file at ``path`` (what :func:`load_bundle` reports), without loading it."""
    return _version(path.read_bytes())


def record_bundle(engine: sa.Engine, bundle: Bundle, path: Path) -> int:
    """The ``model_version`` id of the bundle's version, recorded on first use."""
    with engine.begin() as conn:
        return record_model_version(
            conn,
            MODEL_KIND,
            bundle.version,
            path=path,
            params={"spec": asdict(bundle.spec), "training": bundle.training},
            metrics=bundle.metrics,
        )


def model_file(data_dir: Path) -> Path:
    """Where the trained model bundle lives under the data dir."""
    return data_dir / "trimodal" / "model.pt"
