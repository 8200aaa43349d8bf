"""The one tempo estimator and the pulse clarity, on planted click tracks."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from pipelines.train.descriptions import tags_from_audio
from recsys.media.rhythm import pulse_clarity, tempo_bpm

RATE, HOP = 16_000, 512


def clicks(bpm: float, seconds: float = 8.0, seed: int = 0) -> np.ndarray:
    """A noise burst on every beat, nothing between."""
    rng = np.random.default_rng(seed)
    y = np.zeros(int(seconds * RATE), np.float32)
    burst = (np.hanning(200) * rng.normal(size=200)).astype(np.float32)
    for t in np.arange(0, seconds, 60.0 / bpm):
        start = int(t * RATE)
        y[start : start + 200] += burst[: len(y) - start]
    return y


def onsets(y: np.ndarray) -> np.ndarray:
    return librosa.onset.onset_strength(y=y, sr=RATE, hop_length=HOP)


@pytest.mark.parametrize("bpm", [60, 70, 80, 95, 110, 128, 140])
def test_tempo_of_a_click_track(bpm: float) -> None:
    assert tempo_bpm(onsets(clicks(bpm)), RATE, HOP) == pytest.approx(bpm, rel=0.04)


@pytest.mark.parametrize(("bpm", "word"), [(62, "slow"), (75, "slow"), (100, "medium"), (140, "fast")])
def test_measured_tags_name_the_tempo(bpm: float, word: str) -> None:
    assert tags_from_audio(clicks(bpm), RATE)["tempo"] == word


def test_a_clip_shorter_than_a_slow_beat_has_no_tempo_tag() -> None:
    assert "tempo" not in tags_from_audio(clicks(120, seconds=0.8), RATE)


def reference_clarity(env: np.ndarray) -> float:
    """The formula: max over beat lags (40-240 BPM) of sum(e[t] e[t + lag]) / sum(e^2), e centred."""
    env = env - env.mean()
    denom = float(np.dot(env, env))
    fps = RATE / HOP
    lo, hi = int(fps * 60 / 240), min(len(env) - 1, int(fps * 60 / 40))
    return float(np.clip(max(np.dot(env[:-lag], env[lag:]) for lag in range(lo, hi + 1)) / denom, 0, 1))


@pytest.mark.parametrize("seed", range(4))
def test_pulse_clarity_is_the_autocorrelation_peak(seed: int) -> None:
    rng = np.random.default_rng(seed)
    noise = rng.random(300).astype(np.float32)
    assert pulse_clarity(noise, RATE, HOP) == pytest.approx(reference_clarity(noise), abs=1e-5)
    beats = onsets(clicks(float(rng.uniform(70, 140)), seed=seed))
    clarity = pulse_clarity(beats, RATE, HOP)
    assert clarity == pytest.approx(reference_clarity(beats), abs=1e-5)
    assert clarity > 0.5 > pulse_clarity(noise, RATE, HOP)  # a steady beat is a clear pulse, noise is not


def test_pulse_clarity_of_nothing_is_zero() -> None:
    assert pulse_clarity(np.zeros(100, np.float32), RATE, HOP) == 0.0
    assert pulse_clarity(np.ones(5, np.float32), RATE, HOP) == 0.0
