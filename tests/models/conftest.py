"""Tiny models on synthetic playlists; one torch thread (the RNN steps are too small to share)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from recsys.models.playlist_seq2seq import Seq2SeqConfig


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(**overrides: object) -> Seq2SeqConfig:
    values: dict[str, object] = {
        "embed_dim": 8,
        "hidden": 16,
        "batch_size": 32,
        "epochs": 2,
        "min_count": 1,
        "sampled_negatives": 0,
        "dropout": 0.0,
        "seed": 3,
    }
    values.update(overrides)
    return Seq2SeqConfig(**values)  # type: ignore[arg-type]


def motif_playlists(n_pairs: int = 60, seed: int = 0) -> tuple[list[list[int]], np.ndarray]:
    """Planted order: playlists of three 4-track motifs, each pair the same motifs forward and reversed.

    Label 0: every motif in its forward order; label 1: every motif reversed. The two
    playlists of a pair hold exactly the same tracks, so only order tells them apart.
    """
    rng = np.random.default_rng(seed)
    motifs = [[100 + 4 * m + k for k in range(4)] for m in range(6)]
    playlists: list[list[int]] = []
    labels: list[int] = []
    for _ in range(n_pairs):
        chosen = rng.choice(len(motifs), size=3, replace=False)
        playlists.append([t for m in chosen for t in motifs[m]])
        playlists.append([t for m in chosen for t in reversed(motifs[m])])
        labels += [0, 1]
    return playlists, np.asarray(labels)
