"""Training of the trimodal model on cached features: the Lightning Trainer loop.

The input statistics of each tower come from the training features; small models
train fastest on one CPU thread, so the loop runs with ``cpu_threads`` threads and
restores torch's setting after.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from recsys.devices import resolve_device
from recsys.models.trimodal import TrimodalConfig, TrimodalLightning, TrimodalModel
from recsys.models.trimodal_batches import Features, to_batch


def _stats(values: np.ndarray, mask: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation (D,) of the valid frames."""
    valid = values[mask]  # (M, D)
    return torch.from_numpy(valid.mean(axis=0)), torch.from_numpy(valid.std(axis=0))


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 40
    batch_size: int = 128
    device: str = "auto"
    # Small models train fastest on one CPU thread: more threads spin against each other
    # (measured 20x slower per step with 2 threads on a busy 2-core machine).
    cpu_threads: int = 1


def train_model(
    features: Features, config: TrimodalConfig, settings: TrainSettings | None = None
) -> TrimodalModel:
    """A TrimodalModel trained on ``features`` (input statistics from them); returned in eval mode on CPU."""
    settings = settings or TrainSettings()
    L.seed_everything(config.seed, workers=True, verbose=False)
    module = TrimodalLightning(config)
    module.model.video.set_input_stats(*_stats(features.video, features.video_mask))
    module.model.text.set_input_stats(*_stats(features.text, features.text_mask))
    module.model.music.set_input_stats(*_stats(features.music, features.music_mask))

    tensors = to_batch(features)

    class _Rows(Dataset):
        def __len__(self) -> int:
            return len(features)

        def __getitem__(self, i: int) -> dict[str, Any]:
            return {k: v[i] for k, v in tensors.items()}

    loader = DataLoader(
        _Rows(),
        batch_size=min(settings.batch_size, len(features)),
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(config.seed),
    )
    device = resolve_device(settings.device)
    threads = torch.get_num_threads()
    if device.type != "cuda":
        torch.set_num_threads(settings.cpu_threads)
    trainer = L.Trainer(
        max_epochs=settings.epochs,
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=False,
    )
    try:
        trainer.fit(module, loader)
    finally:
        torch.set_num_threads(threads)
    return module.model.cpu().eval()


def default_config(features: Features, **overrides: Any) -> TrimodalConfig:
    """The default config with the input sizes of ``features``."""
    config = TrimodalConfig(
        video_dim=features.video.shape[2], text_dim=features.text.shape[2], music_dim=features.music.shape[2]
    )
    return replace(config, **overrides)
