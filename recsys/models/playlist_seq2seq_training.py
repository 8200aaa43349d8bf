"""Training of the seq2seq playlist autoencoder: the Lightning Trainer loop and its report.

:func:`fit_seq2seq` builds the vocabulary, windows long playlists, trains
:class:`~recsys.models.playlist_seq2seq.Seq2SeqLightning` and returns the encoder.
Determinism: one seed fixes initialisation, shuffling, dropout and negative sampling.
On CUDA, training runs in bf16 mixed precision by default.

Several devices or nodes (``config.strategy``, ``devices``, ``num_nodes``; see
:mod:`recsys.models.distributed`): the batches are dealt to the ranks, every training
sequence to exactly one rank per epoch, and the returned encoder holds rank 0's weights
(the same on every rank). With ``ddp_spawn`` the calling process gets them back.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import lightning as L
import torch

from recsys.devices import resolve_device
from recsys.models.distributed import EPOCH_LOSSES, trainer_options
from recsys.models.playlist_seq2seq import Seq2SeqConfig, Seq2SeqEncoder, Seq2SeqLightning
from recsys.models.track_vocab import EOS, BucketDataset, TrackVocab, collate_bucket, split_windows


@dataclass
class FitReport:
    """What a training run did: sizes, epochs, losses and time."""

    playlists: int
    sequences: int
    windowed_playlists: int
    vocab_size: int
    coverage: float
    epochs: int
    epoch_losses: list[float]
    seconds: float
    playlists_per_second: float
    precision: str
    device: str
    strategy: str = "auto"
    world_size: int = 1  # processes that trained (devices × nodes)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _EpochLosses(L.Callback):
    """The mean training loss of every epoch (averaged across ranks).

    Also kept in the callback metrics, which ``ddp_spawn`` hands back to the calling
    process (the callback's own list stays in the worker).
    """

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get("train_loss")
        if value is not None:
            self.losses.append(float(value))
            trainer.callback_metrics[EPOCH_LOSSES] = torch.tensor(self.losses, dtype=torch.float64)

    def result(self, trainer: L.Trainer) -> list[float]:
        carried = trainer.callback_metrics.get(EPOCH_LOSSES)
        if carried is not None and len(carried) > len(self.losses):
            return [float(v) for v in carried]
        return self.losses


def _precision(config: Seq2SeqConfig, accelerator: str) -> str:
    if config.precision != "auto":
        return config.precision
    return "bf16-mixed" if accelerator == "gpu" else "32-true"


def fit_seq2seq(
    playlists: Sequence[Sequence[int]],
    config: Seq2SeqConfig,
    *,
    device: str = "auto",
    max_seconds: float | None = None,
    progress: bool = False,
    callbacks: Iterable[L.Callback] = (),
) -> tuple[Seq2SeqEncoder, FitReport]:
    """Build the vocabulary, train the autoencoder with Lightning and return the encoder.

    ``device`` picks the accelerator (``auto``: CUDA when present); the config's
    ``strategy``, ``devices`` and ``num_nodes`` go to the Trainer. ``max_seconds`` stops
    training after that long (the report says how many epochs ran). ``callbacks`` are
    added to the Trainer's (with ``ddp_spawn`` they must pickle: they run in the workers).
    """
    L.seed_everything(config.seed, workers=True, verbose=False)
    vocab = TrackVocab.build(playlists, min_count=config.min_count, max_size=config.max_vocab)
    windows = split_windows([vocab.encode(p) for p in playlists], config.max_len)
    counts = vocab.counts.copy()
    counts[EOS] = len(windows.sequences)
    module = Seq2SeqLightning(asdict(config), len(vocab), counts.tolist())
    generator = torch.Generator().manual_seed(config.seed)
    loader = torch.utils.data.DataLoader(
        BucketDataset(windows.sequences, config.batch_size, seed=config.seed, shards=config.world_size),
        batch_size=None,
        shuffle=True,
        collate_fn=collate_bucket,  # type: ignore[arg-type]  # batch_size=None: one item per call
        # Several ranks: Lightning's distributed sampler shuffles with the global seed (and a
        # generator does not survive the trip to ddp_spawn's workers).
        generator=generator if config.world_size == 1 else None,
    )
    resolved = resolve_device(device)
    accelerator = "gpu" if resolved.type == "cuda" else "cpu"
    precision = _precision(config, accelerator)
    losses = _EpochLosses()
    trainer = L.Trainer(
        accelerator=accelerator,
        **trainer_options(config.strategy, config.devices, config.num_nodes),
        precision=precision,  # type: ignore[arg-type]
        max_epochs=config.epochs,
        max_time={"seconds": int(max_seconds)} if max_seconds else None,
        gradient_clip_val=config.grad_clip,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        deterministic=accelerator == "cpu",
        callbacks=[losses, *callbacks],
    )
    started = time.perf_counter()
    trainer.fit(module, loader)
    seconds = time.perf_counter() - started
    epoch_losses = losses.result(trainer)
    epochs = len(epoch_losses)
    report = FitReport(
        playlists=len(playlists),
        sequences=len(windows.sequences),
        windowed_playlists=windows.windowed_playlists,
        vocab_size=len(vocab),
        coverage=vocab.coverage(playlists),
        epochs=epochs,
        epoch_losses=epoch_losses,
        seconds=seconds,
        playlists_per_second=len(windows.sequences) * epochs / seconds if seconds > 0 else 0.0,
        precision=precision,
        device=str(resolved),
        strategy=config.strategy,
        world_size=trainer.world_size,
    )
    module.model.cpu()
    return Seq2SeqEncoder(config, vocab, module.model, device=device), report
