"""A weight-free audio embedder: standardised librosa descriptors.

Works with no model weights at all (offline installs, tests, a baseline for
CultureMERT). One short-time Fourier transform per clip feeds five groups of
descriptors, each summarised over time:

- timbre: MFCC means and standard deviations;
- harmony: the chroma profile and its key-invariant interval profile (the
  circular autocorrelation of the chroma profile: a scale or mode played in any
  key gives the same profile);
- spectral shape: centroid, bandwidth, roll-off, flatness, zero-crossing rate,
  contrast per band;
- rhythm: tempo, onset rate, onset strength, pulse clarity;
- loudness: level statistics and dynamic range in dB.

Every descriptor is standardised with fixed reference constants (a typical value
and a typical spread, on a log scale for frequencies and rates) so a vector never
depends on the rest of the catalog: embedding one more track changes nothing
else. Each group is then scaled to carry a fixed share of the vector's length
and the whole vector is L2-normalised, so cosine similarity weighs the groups as
``GROUP_WEIGHTS`` says.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from recsys.embedders.base import Embedder, l2_normalise
from recsys.media.rhythm import pulse_clarity, tempo_bpm

GROUPS = ("timbre", "harmony", "spectral", "rhythm", "loudness")
GROUP_WEIGHTS = {"timbre": 1.0, "harmony": 1.0, "spectral": 0.8, "rhythm": 0.6, "loudness": 0.6}
N_MFCC = 20
N_CONTRAST = 5  # contrast in the bands below 200 Hz and four octaves up to 3.2 kHz (codecs differ above)
EPS = 1e-10


@dataclass(frozen=True)
class DspConfig:
    """Analysis settings; they are part of the embedder's version."""

    # 16 kHz: every source at 16 kHz or more then shares the same band (0-8 kHz), so a
    # recording gives the same vector whatever its codec and sample rate.
    sample_rate: int = 16_000
    n_fft: int = 1024
    hop_length: int = 256
    n_mels: int = 64
    min_seconds: float = 0.25  # shorter clips are zero-padded to this


class DspAudioEmbedder(Embedder):
    """Standardised librosa descriptors (128 dimensions), L2-normalised."""

    name = "audio_dsp"
    kind = "dsp"

    def __init__(self, config: DspConfig | None = None) -> None:
        self.config = config or DspConfig()
        self.sample_rate = self.config.sample_rate

    @property
    def version(self) -> str:
        digest = hashlib.sha256(repr(sorted(self.params().items())).encode()).hexdigest()[:12]
        return f"dsp-1-{digest}"

    @property
    def dim(self) -> int:
        return sum(len(names) for names in FEATURE_NAMES.values())

    def params(self) -> dict[str, Any]:
        return {**asdict(self.config), "group_weights": GROUP_WEIGHTS, "dim": self.dim}

    def embed(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        clips = self.check_clips(clips)
        rows = [self.features(clip) for clip in clips]
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(np.stack([self.weighted(row) for row in rows]))

    def features(self, clip: np.ndarray) -> dict[str, np.ndarray]:
        """The standardised descriptor groups of one clip (before group weighting)."""
        return describe(clip, self.config)

    @staticmethod
    def weighted(groups: dict[str, np.ndarray]) -> np.ndarray:
        parts = [groups[g] * (GROUP_WEIGHTS[g] / np.sqrt(len(groups[g]))) for g in GROUPS]
        return np.concatenate(parts).astype(np.float32)


FEATURE_NAMES: dict[str, list[str]] = {
    "timbre": [f"mfcc{i}_{stat}" for stat in ("mean", "std", "delta_std") for i in range(N_MFCC)],
    "harmony": [f"chroma{i}_{stat}" for stat in ("mean", "std") for i in range(12)]
    + [f"interval{i}" for i in range(12)],
    "spectral": [
        f"{name}_{stat}"
        for name in ("centroid", "bandwidth", "rolloff", "flatness", "zcr")
        for stat in ("mean", "std")
    ]
    + [f"contrast{i}_mean" for i in range(N_CONTRAST)]
    + [f"contrast{i}_std" for i in range(N_CONTRAST)],
    "rhythm": ["tempo", "onset_rate", "onset_mean", "onset_std", "pulse_clarity"],
    "loudness": ["db_mean", "db_std", "db_p10", "db_p50", "db_p90", "db_range", "low_energy"],
}


def describe(clip: np.ndarray, config: DspConfig) -> dict[str, np.ndarray]:
    """Standardised descriptors of a mono clip at ``config.sample_rate``, by group."""
    import librosa  # deferred: librosa (audio extra), compiled by numba on first use

    sr, hop = config.sample_rate, config.hop_length
    y = np.asarray(clip, dtype=np.float32)
    min_len = max(config.n_fft, int(config.min_seconds * sr))
    if len(y) < min_len:
        y = np.pad(y, (0, min_len - len(y)))
    magnitude = np.abs(librosa.stft(y, n_fft=config.n_fft, hop_length=hop))  # (F, T)
    power = magnitude**2
    mel = librosa.feature.melspectrogram(S=power, sr=sr, n_mels=config.n_mels)  # (M, T)
    log_mel = librosa.power_to_db(mel, ref=1.0, amin=EPS, top_db=None)  # absolute dB, level-aware
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=N_MFCC)  # (20, T)

    # timbre: c0 carries level (about -10 * n_mels dB for silence); the rest carry the envelope shape.
    mfcc_mean, mfcc_std = mfcc.mean(axis=1), mfcc.std(axis=1)
    scale = np.array([100.0] + [30.0] * (N_MFCC - 1))
    centre = np.zeros(N_MFCC)
    centre[0] = -350.0
    delta_std = np.diff(mfcc, axis=1).std(axis=1)  # frame-to-frame change of the envelope
    timbre = np.concatenate([(mfcc_mean - centre) / scale, (mfcc_std - 10.0) / 10.0, (delta_std - 3.0) / 3.0])

    # harmony: chroma energy profile (sums to 1) and its circular autocorrelation (key-invariant)
    chroma = librosa.feature.chroma_stft(S=power, sr=sr, n_fft=config.n_fft, hop_length=hop, norm=None)
    profile = chroma.sum(axis=1)
    profile = profile / max(float(profile.sum()), EPS)
    centred = profile - 1.0 / 12
    interval = np.array([np.dot(centred, np.roll(centred, k)) for k in range(12)])
    interval = interval / max(float(interval[0]), EPS)  # lag 0 is 1; the others say which intervals sound
    frame_chroma = chroma / np.maximum(
        chroma.sum(axis=0, keepdims=True), EPS
    )  # (12, T), each frame sums to 1
    harmony = np.concatenate([centred * 12.0, (frame_chroma.std(axis=1) - 0.05) / 0.05, interval])

    # spectral shape, log-frequency statistics
    frames_db = librosa.amplitude_to_db(
        librosa.feature.rms(S=magnitude, frame_length=config.n_fft), ref=1.0, amin=1e-5
    )[0]
    active = frames_db > frames_db.max() - 50.0  # ignore near-silent frames in shape statistics
    centroid = librosa.feature.spectral_centroid(S=magnitude, sr=sr)[0]
    bandwidth = librosa.feature.spectral_bandwidth(S=magnitude, sr=sr)[0]
    rolloff = librosa.feature.spectral_rolloff(S=magnitude, sr=sr)[0]
    flatness = librosa.feature.spectral_flatness(S=magnitude)[0]
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=config.n_fft, hop_length=hop)[0]
    zcr = zcr[: len(active)]
    # (6, T) dB; the last row (everything above 3.2 kHz) is where codecs and sample rates differ
    contrast = librosa.feature.spectral_contrast(S=magnitude, sr=sr, n_bands=N_CONTRAST)[:N_CONTRAST]
    shape_stats = []
    for values, ref in (
        (centroid, 1500.0),
        (bandwidth, 1500.0),
        (rolloff, 3000.0),
        (flatness, 0.01),
        (zcr, 0.05),
    ):
        logs = np.log2(np.maximum(values[active], EPS) / ref)
        if ref == 0.01:  # flatness spans decades
            logs = logs / 3.0
        shape_stats += [logs.mean() / 1.5, logs.std() / 1.0]
    spectral = np.concatenate(
        [np.array(shape_stats), (contrast.mean(axis=1) - 20.0) / 8.0, (contrast.std(axis=1) - 6.0) / 4.0]
    )

    # rhythm
    onset_env = librosa.onset.onset_strength(S=log_mel, sr=sr)
    duration = len(y) / sr
    onsets = librosa.onset.onset_detect(onset_envelope=onset_env, sr=sr, hop_length=hop, units="frames")
    tempo = tempo_bpm(onset_env, sr, hop)
    rhythm = np.array(
        [
            np.log2(max(tempo, 30.0) / 110.0) / 0.7,
            np.log2((len(onsets) + 1) / duration / 2.0) / 1.5,
            np.log2(onset_env.mean() + EPS) / 2.0,
            np.log2(onset_env.std() + EPS) / 2.0,
            (pulse_clarity(onset_env, sr, hop) - 0.3) / 0.2,
        ]
    )

    # loudness of active frames, in dBFS
    levels = frames_db
    p5, p10, p50, p90, p95 = np.percentile(levels, [5, 10, 50, 90, 95])
    low_energy = float(np.mean(levels < levels.mean()))
    loudness = np.array(
        [
            (levels.mean() + 25.0) / 10.0,
            (levels.std() - 6.0) / 4.0,
            (p10 + 30.0) / 10.0,
            (p50 + 25.0) / 10.0,
            (p90 + 20.0) / 10.0,
            (p95 - p5 - 20.0) / 10.0,
            (low_energy - 0.5) / 0.15,
        ]
    )
    out = {
        "timbre": timbre,
        "harmony": harmony,
        "spectral": spectral,
        "rhythm": rhythm,
        "loudness": loudness,
    }
    return {
        k: np.nan_to_num(np.asarray(v, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        for k, v in out.items()
    }
