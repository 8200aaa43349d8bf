"""Weight-free music frame features: mono audio → one feature vector per second (T, D) float32.

The music tower of the trimodal model reads a sequence, not one pooled vector, so
this computes per-second statistics of short-time features (librosa STFT, 2048-point
frames, hop 256 at 16 kHz by default):

- timbre: the mean log-mel spectrum (``n_mels`` bands) and spectral flatness;
- pitch: the mean chroma (12 pitch classes) and its peak sharpness;
- rhythm: onset-strength mean, spread and peak, and onsets counted in the second
  (local maxima above the clip's mean plus one standard deviation);
- loudness: RMS mean and spread;
- brightness: spectral centroid (normalised by Nyquist).

A clip shorter than a second gives one row. Where CultureMERT frame features are
available they can replace this encoder: anything with ``encode(audio) -> (T, D)``
at ``sample_rate`` serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=8)
def _bases(sample_rate: int, n_fft: int, n_mels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mel filter bank (M, F), chroma filter bank (12, F) and bin frequencies (F,), built once."""
    import librosa

    mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)
    chroma = librosa.filters.chroma(sr=sample_rate, n_fft=n_fft, tuning=0.0)
    freqs = librosa.fft_frequencies(sr=sample_rate, n_fft=n_fft)
    return mel, chroma, freqs


@dataclass(frozen=True)
class MusicFrameEncoder:
    sample_rate: int = 16_000
    n_mels: int = 32
    n_fft: int = 2048
    hop: int = 256
    seconds_per_step: float = 1.0
    max_seconds: float = 30.0
    name: str = "music-frames"

    @property
    def version(self) -> str:
        return f"music-frames-v1-sr{self.sample_rate}-m{self.n_mels}-h{self.hop}-s{self.seconds_per_step}"

    @property
    def dim(self) -> int:
        return self.n_mels + 1 + 12 + 1 + 4 + 2 + 1

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """(T, dim) for mono float32 audio at ``sample_rate``; at most ``max_seconds`` are read."""
        import librosa

        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1 or audio.size == 0:
            raise ValueError(f"expected non-empty mono audio, got shape {audio.shape}")
        audio = audio[: int(self.max_seconds * self.sample_rate)]
        if audio.size < self.n_fft:
            audio = np.pad(audio, (0, self.n_fft - audio.size))
        mel_basis, chroma_basis, freqs = _bases(self.sample_rate, self.n_fft, self.n_mels)
        magnitude = np.abs(librosa.stft(audio, n_fft=self.n_fft, hop_length=self.hop))  # (F, N)
        spec = magnitude**2
        log_mel = np.log10(mel_basis @ spec + 1e-8)  # (M, N)
        chroma = chroma_basis @ spec  # (12, N)
        chroma = chroma / np.maximum(chroma.max(axis=0, keepdims=True), 1e-10)
        amplitude = magnitude + 1e-10
        flat = np.exp(np.log(amplitude).mean(axis=0)) / amplitude.mean(axis=0)  # (N,)
        centroid = (freqs[:, None] * magnitude).sum(axis=0) / np.maximum(magnitude.sum(axis=0), 1e-10)
        centroid = centroid / (self.sample_rate / 2)
        rms = np.sqrt(spec.mean(axis=0))  # (N,)
        onset = np.maximum(0.0, np.diff(log_mel, axis=1, prepend=log_mel[:, :1])).mean(axis=0)  # (N,)
        threshold = onset.mean() + onset.std()
        peaks = (onset[1:-1] > onset[:-2]) & (onset[1:-1] >= onset[2:]) & (onset[1:-1] > threshold)
        peaks = np.concatenate([[False], peaks, [False]])
        per_step = max(1, round(self.seconds_per_step * self.sample_rate / self.hop))
        n = spec.shape[1]
        rows = []
        for start in range(0, max(1, n - per_step // 2), per_step):
            sl = slice(start, min(n, start + per_step))
            c = chroma[:, sl].mean(axis=1)
            o = onset[sl]
            rows.append(
                np.concatenate(
                    [
                        log_mel[:, sl].mean(axis=1),
                        [flat[sl].mean()],
                        c / max(1e-6, float(c.sum())),
                        [float(c.max() / max(1e-6, float(c.mean())))],
                        [o.mean(), o.std(), o.max(), peaks[sl].sum() / self.seconds_per_step],
                        [np.log10(rms[sl].mean() + 1e-8), rms[sl].std() / max(1e-8, float(rms[sl].mean()))],
                        [centroid[sl].mean()],
                    ]
                )
            )
        return np.nan_to_num(np.stack(rows).astype(np.float32))
