"""CultureMERT (and any MERT/HuBERT-shaped checkpoint) as an audio embedder.

Clips (mono float32 at the checkpoint's rate, 24 kHz for MERT) are cut into
windows (5 s by default, the pre-training context; ``hop_s`` sets the stride and
the last window is moved back to end with the clip so every window has full
length). Windows of all clips in a call are batched together, each normalised
like MERT's feature extractor (zero mean, unit variance), run through
``HubertModel`` with every hidden state, pooled over time, averaged over a clip's
windows, and finally pooled over layers: one layer, the mean of all, or stored
per-layer weights. ``embed_frames`` returns the frame-level features (75 per
second) for the trimodal model instead.

CPU and float32 by default; on CUDA the model runs in bfloat16 (float16 where
bfloat16 is unsupported). ``precision="int8"`` (``RECSYS_AUDIO_PRECISION``) is a faster
CPU path with int8 linear layers (:mod:`recsys.embedders.precision`); it is part of the
version, so its vectors never mix with float32 ones.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recsys.devices import resolve_device
from recsys.embedders.base import Embedder
from recsys.embedders.checkpoints import (
    DEFAULT_MODEL,
    DEFAULT_REVISION,
    Checkpoint,
    load_hubert,
    normalises_input,
    read_config,
    resolve_checkpoint,
    sample_rate_of,
)
from recsys.embedders.precision import apply_precision, check_precision
from recsys.errors import ConfigError
from recsys.media.audio import window_starts

NORM_EPS = 1e-7  # Wav2Vec2FeatureExtractor's zero_mean_unit_var_norm


@dataclass(frozen=True)
class CultureMertConfig:
    """Which checkpoint and how its hidden states become one vector per clip."""

    model: str = DEFAULT_MODEL  # Hugging Face id or local directory
    revision: str = DEFAULT_REVISION
    window_s: float = 5.0
    hop_s: float | None = None  # None: equal to window_s (no overlap)
    min_clip_s: float = 1.0  # shorter clips are zero-padded to this
    batch_size: int = 8  # windows per forward pass (on the CPU, at most cpu_batch_size)
    cpu_batch_size: int = 1  # windows per pass on the CPU, where wider passes are slower (see _forward)
    layers: str = "mean"  # "mean", a layer index ("6"), or "weights" (layer_weights)
    layer_weights: tuple[float, ...] | None = None  # one per hidden state (13 for the 95M model)
    device: str = "auto"  # auto: cuda when available, else cpu
    precision: str = "float32"  # "float32", "int8" or "int8-bf16" (CPU only: int8 linear layers)
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.window_s <= 0 or (self.hop_s is not None and self.hop_s <= 0):
            raise ConfigError("window_s and hop_s must be positive")
        if self.batch_size < 1 or self.cpu_batch_size < 1:
            raise ConfigError("batch_size and cpu_batch_size must be at least 1")
        if self.layers == "weights" and not self.layer_weights:
            raise ConfigError("layers='weights' needs layer_weights (one per hidden state)")
        if self.layers not in {"mean", "weights"} and not self.layers.lstrip("-").isdigit():
            raise ConfigError(f"layers must be 'mean', 'weights' or a layer index, not {self.layers!r}")
        check_precision(self.precision)


def pick_dtype(device: Any) -> Any:
    import torch

    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


@dataclass
class _Window:
    clip: int
    start: int
    samples: np.ndarray
    weight: float = field(default=1.0)


class CultureMertEmbedder(Embedder):
    """MERT-family hidden states pooled over time and layers: one vector per clip."""

    name = "audio"
    kind = "culturemert"

    def __init__(
        self, config: CultureMertConfig | None = None, *, checkpoint: Checkpoint | None = None
    ) -> None:
        self.config = config or CultureMertConfig()
        self.checkpoint = checkpoint or resolve_checkpoint(
            self.config.model, self.config.revision, cache_dir=self.config.cache_dir
        )
        raw = read_config(self.checkpoint.path)
        self.sample_rate = sample_rate_of(self.checkpoint.path, raw)
        self.normalise = normalises_input(self.checkpoint.path)
        self.device = resolve_device(self.config.device)
        self.dtype = pick_dtype(self.device)
        self.model = apply_precision(
            load_hubert(self.checkpoint.path).to(self.device, self.dtype), self.config.precision, self.device
        )
        self.n_states = int(self.model.config.num_hidden_layers) + 1
        self.hidden = int(self.model.config.hidden_size)
        self._layer_weights = self._weights()
        self._version = self.checkpoint.version

    # ------------------------------------------------------------------ contract

    @property
    def version(self) -> str:
        cfg = self.config
        hop = cfg.hop_s if cfg.hop_s is not None else cfg.window_s
        # float32 adds nothing, so the versions (and vectors) recorded before precisions existed stay valid
        precision = "" if cfg.precision == "float32" else f"|{cfg.precision}"
        return f"{self._version}|w{cfg.window_s:g}h{hop:g}{precision}|{self._layer_spec()}"[:128]

    @property
    def dim(self) -> int:
        return self.hidden

    def params(self) -> dict[str, Any]:
        out = asdict(self.config)
        out["cache_dir"] = None if self.config.cache_dir is None else str(self.config.cache_dir)
        out.update(checkpoint=str(self.checkpoint.path), sample_rate=self.sample_rate, dtype=str(self.dtype))
        return out

    def embed(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """``(len(clips), hidden)`` float32: time-pooled, window-averaged, layer-pooled hidden states."""
        per_layer = self.layer_states(clips)  # (N, L, D)
        return np.einsum("nld,l->nd", per_layer, self._layer_weights).astype(np.float32)

    # ------------------------------------------------------------------ more outputs

    def layer_states(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """``(len(clips), n_states, hidden)``: every hidden state pooled over time and windows."""
        clips = self.check_clips(clips)
        sums = np.zeros((len(clips), self.n_states, self.hidden), dtype=np.float64)
        weights = np.zeros(len(clips), dtype=np.float64)
        for batch in self._batches(self._windows(clips)):
            pooled = self._forward([w.samples for w in batch], pool=True)  # (B, L, D)
            for window, vector in zip(batch, pooled, strict=True):
                sums[window.clip] += window.weight * vector
                weights[window.clip] += window.weight
        return (sums / weights[:, None, None]).astype(np.float32)

    def embed_frames(self, clips: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per clip, ``(frames, hidden)`` layer-pooled frame features at 75 frames per second.

        Overlapping windows contribute each stretch of time once: a window keeps
        only the frames after those its predecessor already covered.
        """
        clips = self.check_clips(clips)
        hop = int(np.prod(self.model.config.conv_stride))  # samples per frame
        pieces: dict[int, list[tuple[int, np.ndarray]]] = defaultdict(list)
        for batch in self._batches(self._windows(clips)):
            states = self._forward([w.samples for w in batch])  # (B, L, T, D)
            frames = np.einsum("bltd,l->btd", states, self._layer_weights)  # (B, T, D)
            for window, feats in zip(batch, frames, strict=True):
                pieces[window.clip].append((window.start, feats))
        out = []
        for index in range(len(clips)):
            covered = 0
            kept = []
            for start, feats in sorted(pieces[index], key=lambda item: item[0]):
                first = max(0, -(-(covered - start) // hop))  # first frame at or after `covered`
                kept.append(feats[first:])
                covered = start + len(feats) * hop
            out.append(np.concatenate(kept).astype(np.float32))
        return out

    # ------------------------------------------------------------------ internals

    def _windows(self, clips: list[np.ndarray]) -> list[_Window]:
        cfg = self.config
        size = round(cfg.window_s * self.sample_rate)
        hop = round((cfg.hop_s if cfg.hop_s is not None else cfg.window_s) * self.sample_rate)
        shortest = round(cfg.min_clip_s * self.sample_rate)
        windows = []
        for index, clip in enumerate(clips):
            if len(clip) < shortest:
                clip = np.pad(clip, (0, shortest - len(clip)))
            for start in window_starts(len(clip), size, hop):
                windows.append(_Window(index, start, clip[start : start + size]))
        return windows

    def _batches(self, windows: list[_Window]) -> list[list[_Window]]:
        """Windows grouped by length (no padding inside a batch), ``batch_size`` at a time."""
        by_length: dict[int, list[_Window]] = defaultdict(list)
        for window in windows:
            by_length[len(window.samples)].append(window)
        batches = []
        for group in by_length.values():
            for i in range(0, len(group), self.config.batch_size):
                batches.append(group[i : i + self.config.batch_size])
        return batches

    def _forward(self, samples: list[np.ndarray], *, pool: bool = False) -> np.ndarray:
        """Hidden states of equal-length windows: ``(B, n_states, T, hidden)`` float32, or with
        ``pool`` their mean over time, ``(B, n_states, hidden)``, computed on the device.

        On the CPU a batch goes through the model ``cpu_batch_size`` windows at a time (one
        by default): two cores gain nothing from wider passes, and the activations of the
        convolutional front end (about 50 MB per 5 s window per layer) outgrow the caches.
        Embedding 8 windows of 5 s with the full-size model on two cores ran at 7.3x real
        time one window per pass, 6.9x two and 6.4x four; the bare forward of eight at once
        ran at 5.7x.
        """
        step = self.config.cpu_batch_size if self.device.type == "cpu" else len(samples)
        if len(samples) > step:
            parts = [self._forward(samples[i : i + step], pool=pool) for i in range(0, len(samples), step)]
            return np.concatenate(parts)
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.stack(samples)).to(self.device, torch.float32)  # (B, S)
            if self.normalise:
                mean = x.mean(dim=1, keepdim=True)
                var = x.var(dim=1, unbiased=False, keepdim=True)
                x = (x - mean) / torch.sqrt(var + NORM_EPS)
            out = self.model(x.to(self.dtype), output_hidden_states=True)
            if pool:
                pooled = torch.stack([h.float().mean(dim=1) for h in out.hidden_states], dim=1)  # (B, L, D)
                return pooled.cpu().numpy()
            states = torch.stack(out.hidden_states, dim=1)  # (B, L, T, D)
            return states.float().cpu().numpy()

    def _weights(self) -> np.ndarray:
        cfg = self.config
        if cfg.layers == "mean":
            return np.full(self.n_states, 1.0 / self.n_states)
        if cfg.layers == "weights":
            weights = np.asarray(cfg.layer_weights, dtype=np.float64)
            if weights.shape != (self.n_states,):
                raise ConfigError(
                    f"layer_weights has {weights.size} values; the model has {self.n_states} hidden states"
                )
            if weights.sum() <= 0:
                raise ConfigError("layer_weights must sum to a positive number")
            return weights / weights.sum()
        index = int(cfg.layers)
        if not -self.n_states <= index < self.n_states:
            raise ConfigError(f"layer {index} does not exist (the model has {self.n_states} hidden states)")
        out = np.zeros(self.n_states)
        out[index] = 1.0
        return out

    def _layer_spec(self) -> str:
        if self.config.layers == "weights":
            return "lw:" + ",".join(f"{w:.3g}" for w in self._layer_weights)
        return f"layer:{self.config.layers}"
