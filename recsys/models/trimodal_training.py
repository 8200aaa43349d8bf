"""Training of the trimodal model on cached features: the Lightning Trainer loop.

The input statistics of each tower come from the training features; small models
train fastest on one CPU thread, so the loop runs with ``cpu_threads`` threads and
restores torch's setting after.

Several devices or nodes (``strategy``, ``devices``, ``num_nodes`` of
:class:`TrainSettings`; see :mod:`recsys.models.distributed`): Lightning deals the
clips to the ranks with a distributed sampler (which repeats up to ``world size − 1``
clips per epoch when their number does not divide), the logged losses are averaged
across ranks, and the returned model holds rank 0's weights (with ``ddp_spawn`` they
come back to the calling process).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from recsys.devices import resolve_device
from recsys.models.distributed import check_distribution, distribution_record, trainer_options
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
    # Data-parallel training (recsys.models.distributed): one process per device and node.
    strategy: str = "auto"  # auto, ddp or ddp_spawn
    devices: int = 1  # per node
    num_nodes: int = 1

    def __post_init__(self) -> None:
        check_distribution(self.strategy, self.devices, self.num_nodes)

    @property
    def world_size(self) -> int:
        return self.devices * self.num_nodes

    def distribution(self) -> dict[str, Any]:
        """Strategy, devices, nodes and world size, as the bundle records them."""
        return distribution_record(self.strategy, self.devices, self.num_nodes)


class _Rows(Dataset[dict[str, Any]]):
    """Row ``i`` of every input tensor (a module-level class: ddp_spawn pickles the loader)."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tensors = tensors
        self.size = len(next(iter(tensors.values())))

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {k: v[i] for k, v in self.tensors.items()}


def train_model(
    features: Features,
    config: TrimodalConfig,
    settings: TrainSettings | None = None,
    *,
    callbacks: Iterable[L.Callback] = (),
) -> TrimodalModel:
    """A TrimodalModel trained on ``features`` (input statistics from them); returned in eval mode on CPU.

    ``callbacks`` are added to the Trainer's (with ``ddp_spawn`` they must pickle).
    """
    settings = settings or TrainSettings()
    L.seed_everything(config.seed, workers=True, verbose=False)
    module = TrimodalLightning(config)
    module.model.video.set_input_stats(*_stats(features.video, features.video_mask))
    module.model.text.set_input_stats(*_stats(features.text, features.text_mask))
    module.model.music.set_input_stats(*_stats(features.music, features.music_mask))

    loader = DataLoader(
        _Rows(to_batch(features)),
        batch_size=min(settings.batch_size, -(-len(features) // settings.world_size)),
        shuffle=True,
        drop_last=True,
        # Several ranks: Lightning's distributed sampler shuffles with the global seed (and a
        # generator does not survive the trip to ddp_spawn's workers).
        generator=torch.Generator().manual_seed(config.seed) if settings.world_size == 1 else None,
    )
    device = resolve_device(settings.device)
    threads = torch.get_num_threads()
    if device.type != "cuda":
        torch.set_num_threads(settings.cpu_threads)
    trainer = L.Trainer(
        max_epochs=settings.epochs,
        accelerator="gpu" if device.type == "cuda" else "cpu",
        **trainer_options(settings.strategy, settings.devices, settings.num_nodes),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=False,
        callbacks=list(callbacks),
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
