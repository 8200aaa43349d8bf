"""Audio input: every format to mono float32 at the target rate, and a named error for each bad file."""

from __future__ import annotations

import itertools
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from recsys.media.audio import (
    CorruptAudioError,
    EmptyAudioError,
    SilentAudioError,
    TruncatedAudioError,
    UnsupportedAudioError,
    iter_blocks,
    load_audio,
    probe,
    window_starts,
)

RATE = 44_100


def tone(seconds: float = 2.0, rate: int = RATE, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    mono = 0.4 * np.sin(2 * np.pi * freq * t)
    return np.stack([mono] * channels, axis=1).astype(np.float32) if channels > 1 else mono.astype(np.float32)


def write_m4a(path: Path, samples: np.ndarray, rate: int) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples[None, :].astype(np.float32), format="fltp", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * rate / len(samples))


@pytest.mark.parametrize(
    ("suffix", "kwargs"),
    [
        ("wav", {}),
        ("flac", {}),
        ("ogg", {}),
        ("opus", {"format": "OGG", "subtype": "OPUS"}),
        ("mp3", {}),
    ],
)
def test_formats_decode_to_mono_at_the_target_rate(tmp_path: Path, suffix: str, kwargs: dict) -> None:
    rate = 48_000 if suffix == "opus" else RATE
    path = tmp_path / f"tone.{suffix}"
    sf.write(path, tone(2.0, rate, channels=2), rate, **kwargs)
    decoded = load_audio(path, 24_000)
    assert decoded.samples.dtype == np.float32 and decoded.samples.ndim == 1
    assert decoded.sample_rate == 24_000
    assert decoded.duration_s == pytest.approx(2.0, abs=0.06)
    assert peak_hz(decoded.samples, 24_000) == pytest.approx(440.0, abs=2.0)
    assert decoded.info.channels == 2


def test_aac_in_m4a_goes_through_pyav(tmp_path: Path) -> None:
    path = write_m4a(tmp_path / "tone.m4a", tone(2.0, RATE), RATE)
    decoded = load_audio(path, 24_000)
    assert decoded.info.decoder == "pyav"
    assert decoded.duration_s == pytest.approx(2.0, abs=0.1)
    assert peak_hz(decoded.samples, 24_000) == pytest.approx(440.0, abs=2.0)


def test_resampling_keeps_the_band_and_the_level(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    sf.write(path, tone(3.0, RATE, freq=5_000.0), RATE)
    decoded = load_audio(path, 16_000)
    steady = decoded.samples[1000:-1000]
    assert peak_hz(steady, 16_000) == pytest.approx(5_000.0, abs=2.0)
    assert np.sqrt(np.mean(steady**2)) == pytest.approx(0.4 / np.sqrt(2), rel=0.01)


def test_long_files_stream_in_blocks_and_stop_at_the_maximum(tmp_path: Path) -> None:
    path = tmp_path / "long.flac"
    sf.write(path, tone(30.0, 22_050), 22_050)
    blocks = list(iter_blocks(path, 24_000, block_s=2.0))
    assert len(blocks) > 10 and max(len(b) for b in blocks) < 24_000 * 3
    assert sum(len(b) for b in blocks) == pytest.approx(30 * 24_000, abs=24)
    capped = load_audio(path, 24_000, max_duration_s=7.5)
    assert len(capped.samples) == 7.5 * 24_000 and capped.clipped


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(EmptyAudioError, match=r"empty.wav: empty file"):
        load_audio(path, 24_000)


def test_silent_file(tmp_path: Path) -> None:
    path = tmp_path / "silence.flac"
    sf.write(path, np.zeros(44_100, dtype=np.float32), RATE)
    with pytest.raises(SilentAudioError, match=r"silence.flac: silent"):
        load_audio(path, 24_000)


@pytest.mark.parametrize("suffix", ["wav", "mp3", "flac"])
def test_truncated_file(tmp_path: Path, suffix: str) -> None:
    whole = tmp_path / f"whole.{suffix}"
    sf.write(whole, np.random.default_rng(0).normal(0, 0.1, RATE * 4).astype(np.float32), RATE)
    data = whole.read_bytes()
    cut = tmp_path / f"cut.{suffix}"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.raises(TruncatedAudioError, match=rf"cut.{suffix}: (truncated|decoding stopped)"):
        load_audio(cut, 24_000)


def test_renamed_non_audio(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp3"
    path.write_text("these are liner notes, not audio\n" * 40)
    with pytest.raises(UnsupportedAudioError, match=r"notes.mp3: not a recognised audio format"):
        probe(path)
    with pytest.raises(UnsupportedAudioError):
        load_audio(path, 24_000)


def test_corrupt_header(tmp_path: Path) -> None:
    whole = tmp_path / "whole.ogg"
    sf.write(whole, tone(1.0), RATE)
    data = bytearray(whole.read_bytes())
    data[40:400] = bytes(360)  # wipe the codec headers
    path = tmp_path / "corrupt.ogg"
    path.write_bytes(bytes(data))
    with pytest.raises((CorruptAudioError, UnsupportedAudioError), match=r"corrupt.ogg: "):
        load_audio(path, 24_000)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedAudioError, match="no such file"):
        load_audio(tmp_path / "nowhere.wav", 24_000)


@pytest.mark.shared_data
def test_soundtrack_of_a_video(shared_data: Path) -> None:
    decoded = load_audio(shared_data / "video" / "v_GGSY1Qvo990.mp4", 24_000)
    assert decoded.info.decoder == "pyav"
    assert decoded.duration_s == pytest.approx(18.16, abs=0.1)


@pytest.mark.parametrize(
    ("n", "window", "hop"), [(100, 30, 30), (100, 30, 10), (30, 30, 30), (10, 30, 30), (95, 30, 25)]
)
def test_windows_cover_the_signal_with_full_windows(n: int, window: int, hop: int) -> None:
    starts = window_starts(n, window, hop)
    assert starts[0] == 0
    covered = np.zeros(n, dtype=bool)
    for start in starts:
        covered[start : start + window] = True
        assert n <= window or start + window <= n
    assert covered.all()
    assert all(b - a <= hop for a, b in itertools.pairwise(starts))
