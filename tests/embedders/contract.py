"""The Embedder contract, written once; every embedder's test module subclasses ``EmbedderContract``."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.embedders.base import Embedder


def clips(rate: int, seed: int = 0) -> list[np.ndarray]:
    """Three different clips: a chord, noise, and a short rhythmic pattern."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(3.0 * rate)) / rate
    chord = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6))
    noise = rng.normal(0, 0.1, int(2.0 * rate))
    pulses = np.zeros(int(1.5 * rate))
    pulses[:: rate // 4] = 0.9
    return [x.astype(np.float32) for x in (chord, noise, pulses)]


class EmbedderContract:
    """Subclasses provide the ``embedder`` fixture."""

    @pytest.fixture
    def embedder(self) -> Embedder:
        raise NotImplementedError

    def test_shape_dtype_and_finite(self, embedder: Embedder) -> None:
        out = embedder.embed(clips(embedder.sample_rate))
        assert out.shape == (3, embedder.dim) and out.dtype == np.float32
        assert np.isfinite(out).all()

    def test_rows_do_not_depend_on_the_batch(self, embedder: Embedder) -> None:
        batch = clips(embedder.sample_rate)
        together = embedder.embed(batch)
        alone = np.stack([embedder.embed([clip])[0] for clip in batch])
        np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-5)

    def test_deterministic_and_discriminating(self, embedder: Embedder) -> None:
        first = embedder.embed(clips(embedder.sample_rate))
        second = embedder.embed(clips(embedder.sample_rate))
        np.testing.assert_allclose(first, second, rtol=1e-5, atol=1e-6)
        assert not np.allclose(first[0], first[1], atol=1e-3)

    def test_identity(self, embedder: Embedder) -> None:
        assert embedder.name in {"audio", "audio_dsp"}
        assert isinstance(embedder.version, str) and 0 < len(embedder.version) <= 128
        assert embedder.dim > 0 and embedder.sample_rate > 0
        assert embedder.kind and isinstance(embedder.params(), dict)

    def test_empty_batch_and_bad_clips(self, embedder: Embedder) -> None:
        assert embedder.embed([]).shape == (0, embedder.dim)
        with pytest.raises(ValueError, match="clip 0"):
            embedder.embed([np.zeros((2, 100), dtype=np.float32)])
