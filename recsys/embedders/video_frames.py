"""Frame encoders: sampled video frames (T, S, S, 3) uint8 → feature sequences (T, D) float32.

Two implementations of one small contract (``name``, ``version``, ``dim``,
``input_size``, ``encode(frames)``):

- :class:`ClipFrameEncoder`: CLIP's vision tower through transformers
  (``CLIPVisionModelWithProjection``), from a Hugging Face id at a pinned revision
  (default ``openai/clip-vit-base-patch32``) or from a local directory in the
  Hugging Face format; one image embedding per frame.
- :class:`FrameDescriptor`: weight-free, for offline use and as the baseline: colour
  (saturation-weighted hue histogram, mean and spread of each channel, a 2×2 colour
  layout), brightness, edges (gradient energy and orientation balance) and motion
  between consecutive sampled frames (mean absolute change, share of pixels that
  changed, colour-histogram distance).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from recsys.devices import DeviceLike, resolve_device
from recsys.errors import ConfigError

CLIP_DEFAULT_MODEL = "openai/clip-vit-base-patch32"
CLIP_DEFAULT_REVISION = "3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class FrameEncoder(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def input_size(self) -> int: ...

    def encode(self, frames: np.ndarray) -> np.ndarray: ...


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"expected frames of shape (T, H, W, 3), got {frames.shape}")
    return frames


# --------------------------------------------------------------------------- weight-free


def _hsv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(…, 3) floats in 0..1 → hue (0..1), saturation, value."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    value = rgb.max(axis=-1)
    low = rgb.min(axis=-1)
    chroma = value - low
    sat = np.where(value > 1e-6, chroma / np.maximum(value, 1e-6), 0.0)
    safe = np.maximum(chroma, 1e-6)
    hue = np.where(
        value == r, ((g - b) / safe) % 6.0, np.where(value == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)
    )
    hue = np.where(chroma > 1e-6, hue / 6.0, 0.0)
    return hue, sat, value


@dataclass(frozen=True)
class FrameDescriptor:
    """Weight-free frame features; see the module docstring for what each block measures."""

    hue_bins: int = 12
    size: int = 64
    name: str = "descriptor"

    @property
    def version(self) -> str:
        return f"descriptor-v2-h{self.hue_bins}-s{self.size}"

    @property
    def dim(self) -> int:
        return self.hue_bins + 4 + 6 + 12 + 3 + 3

    @property
    def input_size(self) -> int:
        return self.size

    def encode(self, frames: np.ndarray) -> np.ndarray:
        frames = _check_frames(frames)
        rgb = frames.astype(np.float32) / 255.0  # (T, H, W, 3)
        t, h, w, _ = rgb.shape
        hue, sat, val = _hsv(rgb)  # (T, H, W)
        bins = np.minimum((hue * self.hue_bins).astype(np.int64), self.hue_bins - 1)
        hist = np.zeros((t, self.hue_bins), dtype=np.float32)
        for i in range(t):
            hist[i] = np.bincount(bins[i].ravel(), weights=sat[i].ravel(), minlength=self.hue_bins)
        hist /= h * w
        tone = np.stack(
            [sat.mean(axis=(1, 2)), sat.std(axis=(1, 2)), val.mean(axis=(1, 2)), val.std(axis=(1, 2))], axis=1
        )
        channels = np.concatenate([rgb.mean(axis=(1, 2)), rgb.std(axis=(1, 2))], axis=1)  # (T, 6)
        layout = np.stack(
            [
                rgb[:, : h // 2, : w // 2].mean(axis=(1, 2)),
                rgb[:, : h // 2, w // 2 :].mean(axis=(1, 2)),
                rgb[:, h // 2 :, : w // 2].mean(axis=(1, 2)),
                rgb[:, h // 2 :, w // 2 :].mean(axis=(1, 2)),
            ],
            axis=1,
        ).reshape(t, 12)
        gray = rgb.mean(axis=-1)  # (T, H, W)
        gx = np.abs(np.diff(gray, axis=2)).mean(axis=(1, 2))
        gy = np.abs(np.diff(gray, axis=1)).mean(axis=(1, 2))
        edges = np.stack([gx + gy, (gx - gy) / np.maximum(gx + gy, 1e-6), (gx + gy > 0.05) * 1.0], axis=1)
        motion = np.zeros((t, 3), dtype=np.float32)
        if t > 1:
            change = np.abs(np.diff(rgb, axis=0)).max(axis=-1)  # (T-1, H, W): largest channel change
            motion[1:, 0] = change.mean(axis=(1, 2))
            motion[1:, 1] = (change > 0.1).mean(axis=(1, 2))
            motion[1:, 2] = 0.5 * np.abs(np.diff(hist, axis=0)).sum(axis=1)
        out = np.concatenate([hist, tone, channels, layout, edges, motion], axis=1).astype(np.float32)
        return np.nan_to_num(out)


# --------------------------------------------------------------------------- CLIP


def load_clip_vision(
    model: str = CLIP_DEFAULT_MODEL, revision: str | None = CLIP_DEFAULT_REVISION, device: DeviceLike = "cpu"
) -> tuple[Any, dict[str, Any]]:
    """CLIP's vision tower with its projection, and the preprocessing constants, from an id or a directory."""
    from transformers import AutoConfig, CLIPVisionModelWithProjection

    local = Path(model).expanduser()
    source = str(local) if local.is_dir() else model
    where = {"revision": None if local.is_dir() else revision, "local_files_only": local.is_dir()}
    try:
        config = AutoConfig.from_pretrained(source, **where)
        if config.model_type == "clip":
            # A full CLIP checkpoint: its vision config does not carry the shared projection size.
            vision = config.vision_config
            vision.projection_dim = config.projection_dim
        elif config.model_type == "clip_vision_model":
            vision = config
        else:
            raise ValueError(f"model type {config.model_type!r} is not CLIP")
        loader: Any = CLIPVisionModelWithProjection
        network, loading = loader.from_pretrained(source, config=vision, output_loading_info=True, **where)
    except (OSError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot load the CLIP vision model {model!r}: {first}") from None
    broken = list(loading.get("missing_keys", [])) + [str(k) for k in loading.get("mismatched_keys", [])]
    if broken:
        raise ConfigError(
            f"the CLIP vision model {model!r} lacks or mismatches weights: {', '.join(broken[:3])}"
        )
    prep = {"mean": CLIP_MEAN, "std": CLIP_STD, "size": int(network.config.image_size)}
    if local.is_dir() and (local / "preprocessor_config.json").is_file():
        raw = json.loads((local / "preprocessor_config.json").read_text())
        prep["mean"] = tuple(raw.get("image_mean", CLIP_MEAN))
        prep["std"] = tuple(raw.get("image_std", CLIP_STD))
    return network.eval().to(device), prep


class ClipFrameEncoder:
    """CLIP image embeddings per frame; frames must already be (T, size, size, 3) at ``input_size``."""

    name = "clip"

    def __init__(
        self,
        model: str = CLIP_DEFAULT_MODEL,
        revision: str | None = CLIP_DEFAULT_REVISION,
        device: DeviceLike = "auto",
        batch_size: int = 32,
        network: Any = None,
        preprocessing: dict[str, Any] | None = None,
    ) -> None:
        import torch

        self.model_id, self.revision = model, revision
        self.device = resolve_device(device)
        if network is None:
            network, preprocessing = load_clip_vision(model, revision, self.device)
        self.network = network.eval().to(self.device)
        prep = preprocessing or {"mean": CLIP_MEAN, "std": CLIP_STD, "size": network.config.image_size}
        self._size = int(prep["size"])
        self._mean = torch.tensor(prep["mean"], dtype=torch.float32).view(1, 3, 1, 1)
        self._std = torch.tensor(prep["std"], dtype=torch.float32).view(1, 3, 1, 1)
        self.batch_size = batch_size
        self._dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        if self._dtype != torch.float32:
            self.network = self.network.to(self._dtype)

    @property
    def version(self) -> str:
        return f"clip-{self.model_id}@{self.revision or 'local'}"

    @property
    def dim(self) -> int:
        return int(self.network.config.projection_dim)

    @property
    def input_size(self) -> int:
        return self._size

    def encode(self, frames: np.ndarray) -> np.ndarray:
        import torch

        frames = _check_frames(frames)
        if frames.shape[1] != self._size or frames.shape[2] != self._size:
            raise ValueError(f"CLIP expects {self._size}x{self._size} frames, got {frames.shape[1:3]}")
        out = []
        with torch.inference_mode():
            for start in range(0, len(frames), self.batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(frames[start : start + self.batch_size]))
                pixels = batch.permute(0, 3, 1, 2).float().div_(255.0)  # (B, 3, S, S)
                pixels = ((pixels - self._mean) / self._std).to(self.device, self._dtype)
                embeds = self.network(pixel_values=pixels).image_embeds  # (B, D)
                out.append(embeds.float().cpu().numpy())
        return np.concatenate(out).astype(np.float32)


def make_frame_encoder(
    kind: str, model: str | None = None, revision: str | None = None, device: DeviceLike = "auto"
) -> FrameEncoder:
    """``descriptor`` (weight-free) or ``clip`` (an id at ``revision``, or a local directory)."""
    if kind == "descriptor":
        return FrameDescriptor()
    if kind == "clip":
        return ClipFrameEncoder(model or CLIP_DEFAULT_MODEL, revision or CLIP_DEFAULT_REVISION, device)
    raise ConfigError(f"unknown frame encoder {kind!r} (descriptor or clip)")
