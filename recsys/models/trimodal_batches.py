"""The trimodal model's inputs: padded feature arrays of N clips, batches of them, and their cache file.

:class:`Features` holds numpy arrays (the training job and the evaluation turn them
into torch tensors with :func:`to_batch`); :func:`save_features` writes the train and
test features beside the model bundle, for evaluation and ablations.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recsys.errors import NotFoundError


@dataclass
class Features:
    """Padded feature tensors of N clips (numpy; the trainer turns them into torch)."""

    ids: list[str]
    descriptions: list[str]
    tags: list[dict[str, str]]
    video: np.ndarray  # (N, Tv, Dv)
    video_mask: np.ndarray  # (N, Tv) bool
    music: np.ndarray  # (N, Tm, Dm)
    music_mask: np.ndarray
    text: np.ndarray  # (N, L, Dt)
    text_mask: np.ndarray
    twins: list[list[np.ndarray]] = field(default_factory=list)  # music-only variants' frames (synthetic set)

    def subset(self, rows: Sequence[int]) -> Features:
        rows = list(rows)
        pick = lambda a: a[rows]  # noqa: E731
        return Features(
            [self.ids[i] for i in rows],
            [self.descriptions[i] for i in rows],
            [self.tags[i] for i in rows],
            pick(self.video),
            pick(self.video_mask),
            pick(self.music),
            pick(self.music_mask),
            pick(self.text),
            pick(self.text_mask),
            [self.twins[i] for i in rows] if self.twins else [],
        )

    def __len__(self) -> int:
        return len(self.ids)


def pad(sequences: Sequence[np.ndarray], max_len: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """List of (T_i, D) → (N, T, D) zero-padded and a (N, T) mask."""
    length = max(len(s) for s in sequences)
    if max_len is not None:
        length = min(length, max_len)
    dim = sequences[0].shape[1]
    out = np.zeros((len(sequences), length, dim), np.float32)
    mask = np.zeros((len(sequences), length), bool)
    for i, seq in enumerate(sequences):
        n = min(len(seq), length)
        out[i, :n], mask[i, :n] = seq[:n], True
    return out, mask


def to_batch(features: Features, rows: Any = slice(None)) -> dict[str, Any]:
    """The rows' arrays as torch tensors, keyed as the model's inputs."""
    import torch  # deferred: torch, only where tensors are made (the features themselves are numpy)

    return {
        "video": torch.from_numpy(features.video[rows]),
        "video_mask": torch.from_numpy(features.video_mask[rows]),
        "text": torch.from_numpy(features.text[rows]),
        "text_mask": torch.from_numpy(features.text_mask[rows]),
        "music": torch.from_numpy(features.music[rows]),
        "music_mask": torch.from_numpy(features.music_mask[rows]),
    }


def save_features(path: Path, train: Features, test: Features) -> None:
    """The cached train and test tensors beside the model, for evaluation and ablations."""
    arrays: dict[str, Any] = {}
    for name, part in (("train", train), ("test", test)):
        for key in ("video", "video_mask", "music", "music_mask", "text", "text_mask"):
            arrays[f"{name}_{key}"] = getattr(part, key)
        arrays[f"{name}_meta"] = np.array(
            json.dumps({"ids": part.ids, "descriptions": part.descriptions, "tags": part.tags})
        )
        twins = part.twins or [[] for _ in part.ids]
        arrays[f"{name}_twin_counts"] = np.array([len(t) for t in twins], dtype=np.int64)
        flat = [seq for t in twins for seq in t]
        if flat:
            padded, mask = pad(flat, 64)
            arrays[f"{name}_twin_music"], arrays[f"{name}_twin_mask"] = padded, mask
    partial = path.with_suffix(".partial.npz")
    np.savez_compressed(partial, **arrays)
    partial.replace(path)


def load_features(path: Path) -> tuple[Features, Features]:
    """The train and test features :func:`save_features` wrote."""
    if not path.is_file():
        raise NotFoundError(f"no training features at {path} (run `recsys train trimodal` first)")
    data = np.load(path)
    out = []
    for name in ("train", "test"):
        meta = json.loads(str(data[f"{name}_meta"]))
        counts = data[f"{name}_twin_counts"]
        twins: list[list[np.ndarray]] = []
        if f"{name}_twin_music" in data:
            music, mask = data[f"{name}_twin_music"], data[f"{name}_twin_mask"]
            start = 0
            for c in counts:
                twins.append([music[j][mask[j]] for j in range(start, start + int(c))])
                start += int(c)
        out.append(
            Features(
                meta["ids"],
                meta["descriptions"],
                meta["tags"],
                video=data[f"{name}_video"],
                video_mask=data[f"{name}_video_mask"],
                music=data[f"{name}_music"],
                music_mask=data[f"{name}_music_mask"],
                text=data[f"{name}_text"],
                text_mask=data[f"{name}_text_mask"],
                twins=twins,
            )
        )
    return out[0], out[1]
