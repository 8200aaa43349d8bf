"""Frame encoders: sampled video frames (T, S, S, 3) uint8 → feature sequences (T, D) float32.

Two implementations of one small contract (``name``, ``version``, ``dim``,
``input_size``, ``encode(frames)``):

- :class:`ClipFrameEncoder`: CLIP's vision tower through transformers
  (``CLIPVisionModelWithProjection``), from a Hugging Face id at a pinned revision
  (default ``openai/clip-vit-base-patch32``) or from a local directory in the
  Hugging Face format; one image embedding per frame. Preprocessing (resize of the
  short side, centre crop, scaling and normalisation) is one batched tensor
  operation over all frames (:func:`clip_pixels`). On the CPU the vision tower runs
  in ``float32`` or, with ``precision="int8"``, with its Linear layers dynamically
  quantised to int8 (weights int8 per output channel, activations quantised per
  batch): about 4x less weight memory traffic and the CPU's int8 dot-product
  instructions, at a cosine of about 0.999 to the ``float32`` vectors. On a GPU it
  runs in ``float16``. The precision is part of the encoder's ``version``, so
  features of different paths are never cached or compared as one. On the CPU the
  encoder also has the process keep freed memory for reuse
  (:func:`recsys.devices.keep_freed_memory`): the tower's activations are then not
  page-faulted in afresh on every call.
- :class:`FrameDescriptor`: weight-free, for offline use and as the baseline: colour
  (saturation-weighted hue histogram, mean and spread of each channel, a 2×2 colour
  layout), brightness, edges (gradient energy and orientation balance) and motion
  between consecutive sampled frames (mean absolute change, share of pixels that
  changed, colour-histogram distance).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from recsys.devices import DeviceLike, keep_freed_memory, resolve_device
from recsys.errors import ConfigError

if TYPE_CHECKING:
    import torch

CLIP_DEFAULT_MODEL = "openai/clip-vit-base-patch32"
CLIP_DEFAULT_REVISION = "3d74acf9a28c67741b2f4f2ea7635f0aaf6f0268"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
FRAME_PRECISIONS = ("float32", "int8")


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


def clip_pixels(
    frames: np.ndarray, size: int, mean: tuple[float, ...], std: tuple[float, ...]
) -> torch.Tensor:
    """Frames (T, H, W, 3) uint8 RGB → CLIP pixel values (T, 3, size, size) float32, in one batched pass.

    What CLIP's image processor does to one picture at a time (short side resized to
    ``size`` with antialiased bicubic filtering as PIL does it, the long side
    truncated to whole pixels, centre crop, scale to 0..1,
    normalise by ``mean`` and ``std``), done for all frames at once: frames already
    at ``size`` (FFmpeg scaled them while converting to RGB) only pass through the
    fused scale-and-normalise (one multiply-add per value), and come out in
    channels-last memory order (the permuted view of the decoded pixels), which the
    patch-embedding convolution accepts as it is.
    """
    import torch  # deferred: torch (ml extra)

    frames = _check_frames(frames)
    batch = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # (T, 3, H, W) channels-last
    h, w = batch.shape[2:]
    scale = torch.tensor([1.0 / (255.0 * s) for s in std], dtype=torch.float32).view(1, 3, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(mean, std, strict=True)], dtype=torch.float32).view(
        1, 3, 1, 1
    )
    if (h, w) == (size, size):
        return torch.addcmul(shift, batch.float(), scale)  # (T, 3, S, S)
    short, long = (h, w) if h <= w else (w, h)
    long = max(size, int(size * long / short))  # the processor's rule: the long side truncated
    new_h, new_w = (size, long) if h <= w else (long, size)
    # uint8 in, uint8 out: torch's antialiased uint8 kernel gives PIL's resampled picture to the value.
    resized = torch.nn.functional.interpolate(
        batch.contiguous(), size=(new_h, new_w), mode="bicubic", antialias=True, align_corners=False
    )  # (T, 3, H', W') uint8
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return torch.addcmul(shift, resized[:, :, top : top + size, left : left + size].float(), scale)


def quantize_int8(network: Any) -> Any:
    """``network`` with every Linear layer replaced by a dynamically quantised int8 Linear (CPU only)."""
    import torch  # deferred: torch (ml extra)

    with warnings.catch_warnings():
        # torch 2.13 points eager-mode quantisation users at torchao; the API itself is unchanged.
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(network, {torch.nn.Linear}, dtype=torch.qint8)


class ClipFrameEncoder:
    """CLIP image embeddings per frame; frames of any size are resized and centre-cropped to ``input_size``.

    ``precision`` is ``float32`` or ``int8`` (Linear layers quantised, CPU only); on a
    GPU the tower runs in ``float16`` whatever is asked. :attr:`precision` says which
    path runs, and :attr:`version` carries it.
    """

    name = "clip"

    def __init__(
        self,
        model: str = CLIP_DEFAULT_MODEL,
        revision: str | None = CLIP_DEFAULT_REVISION,
        device: DeviceLike = "auto",
        batch_size: int = 32,
        network: Any = None,
        preprocessing: dict[str, Any] | None = None,
        precision: str = "float32",
    ) -> None:
        import torch

        if precision not in FRAME_PRECISIONS:
            raise ConfigError(f"unknown video precision {precision!r} ({' or '.join(FRAME_PRECISIONS)})")
        self.model_id, self.revision = model, revision
        self.device = resolve_device(device)
        if network is None:
            network, preprocessing = load_clip_vision(model, revision, self.device)
        self.network = network.eval().to(self.device)
        prep = preprocessing or {"mean": CLIP_MEAN, "std": CLIP_STD, "size": network.config.image_size}
        self._size = int(prep["size"])
        self._mean = tuple(float(v) for v in prep["mean"])
        self._std = tuple(float(v) for v in prep["std"])
        self._projection_dim = int(network.config.projection_dim)
        self.batch_size = batch_size
        self._dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        if self.device.type == "cpu":
            keep_freed_memory()  # the tower's large activations reused, not page-faulted in per call
        if self._dtype != torch.float32:
            self.network = self.network.to(self._dtype)
            self.precision = "float16"
        elif precision == "int8":
            self.network = quantize_int8(self.network)
            self.precision = "int8"
        else:
            self.precision = "float32"

    @property
    def version(self) -> str:
        base = f"clip-{self.model_id}@{self.revision or 'local'}"
        return base if self.precision == "float32" else f"{base}+{self.precision}"

    @property
    def dim(self) -> int:
        return self._projection_dim

    @property
    def input_size(self) -> int:
        return self._size

    def encode(self, frames: np.ndarray) -> np.ndarray:
        import torch

        frames = _check_frames(frames)
        out = []
        with torch.inference_mode():
            for start in range(0, len(frames), self.batch_size):
                pixels = clip_pixels(
                    frames[start : start + self.batch_size], self._size, self._mean, self._std
                )
                embeds = self.network(pixel_values=pixels.to(self.device, self._dtype)).image_embeds  # (B, D)
                out.append(embeds.float().cpu().numpy())
        return np.concatenate(out).astype(np.float32)


def make_frame_encoder(
    kind: str,
    model: str | None = None,
    revision: str | None = None,
    device: DeviceLike = "auto",
    precision: str = "float32",
) -> FrameEncoder:
    """``descriptor`` (weight-free) or ``clip`` (an id at ``revision``, or a local directory) at ``precision``."""
    if precision not in FRAME_PRECISIONS:
        raise ConfigError(f"unknown video precision {precision!r} ({' or '.join(FRAME_PRECISIONS)})")
    if kind == "descriptor":
        return FrameDescriptor()
    if kind == "clip":
        return ClipFrameEncoder(
            model or CLIP_DEFAULT_MODEL, revision or CLIP_DEFAULT_REVISION, device, precision=precision
        )
    raise ConfigError(f"unknown frame encoder {kind!r} (descriptor or clip)")
