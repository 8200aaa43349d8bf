"""The one contract every playlist encoder honours."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


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
