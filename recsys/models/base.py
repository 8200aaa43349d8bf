"""The one contract every playlist encoder honours, and device selection for the models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class PlaylistEncoder(Protocol):
    """Turns playlists (ordered catalog track ids) into fixed-length vectors.

    ``embed`` returns a float32 array of shape (N, dim), one row per playlist, in order.
    A one-track playlist's vector is the encoder's vector of that track, which the
    probes use as "the track vector in the playlist space".
    """

    name: str

    @property
    def dim(self) -> int: ...

    def embed(self, playlists: Sequence[Sequence[int]]) -> np.ndarray: ...


def resolve_device(device: str) -> torch.device:
    """``auto`` → the first CUDA device when present, else the CPU; anything else as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
