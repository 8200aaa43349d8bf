"""The ``Embedder`` contract: decoded audio in, one fixed-length vector per clip out.

Every audio embedder (CultureMERT, the DSP descriptors, the ones to come) honours
it, and one shared test suite (``tests/embedders/contract.py``) runs against each:

- ``name``: the named vector it fills in the ``tracks`` collection (``audio``, ``audio_dsp``);
- ``kind`` and ``version``: recorded in ``model_version``; a different ``version``
  means different vectors, so the embed job re-embeds every track;
- ``dim``: the length of every vector;
- ``sample_rate``: the rate the clips handed to ``embed`` must have;
- ``embed(clips)``: a list of mono float32 arrays at ``sample_rate`` → a
  ``(len(clips), dim)`` float32 array, finite, row ``i`` for clip ``i``,
  independent of the other clips in the batch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np


class Embedder(ABC):
    """Turns clips of decoded audio into vectors (see the module docstring for the contract)."""

    name: str
    kind: str
    sample_rate: int

    @property
    @abstractmethod
    def version(self) -> str:
        """Identifies the vectors: same version, same vector for the same audio."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """Length of each vector."""

    @abstractmethod
    def embed(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """``(len(clips), dim)`` float32 vectors for mono float32 clips at ``sample_rate``."""

    def params(self) -> dict[str, Any]:
        """Settings that produced the vectors, stored with the model version."""
        return {}

    def check_clips(self, clips: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The clips as 1-D float32 arrays; raises ``ValueError`` on anything else."""
        out = []
        for i, clip in enumerate(clips):
            array = np.asarray(clip, dtype=np.float32)
            if array.ndim != 1 or array.size == 0:
                raise ValueError(f"clip {i}: expected a non-empty 1-D array, got shape {array.shape}")
            out.append(array)
        return out


def l2_normalise(vectors: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, eps)).astype(np.float32)
