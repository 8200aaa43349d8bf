"""Any audio file (or the soundtrack of a video) → mono float32 at a target sample rate.

Decoding goes through soundfile (libsndfile: wav, flac, ogg/vorbis, opus, mp3) and
falls back to PyAV (its bundled FFmpeg: aac/m4a, video containers, anything else
FFmpeg reads). Files are read block by block and resampled as a stream with soxr
(high quality), so a file of several hours is never held in memory at its
original rate; ``max_duration_s`` bounds what is kept.

Every unusable file raises a subclass of :class:`recsys.errors.AudioError` whose
message names the file and the reason: :class:`EmptyAudioError`,
:class:`SilentAudioError`, :class:`CorruptAudioError`,
:class:`TruncatedAudioError`, :class:`UnsupportedAudioError`. A truncated file is
recognised when its header declares more than it holds (WAV, FLAC, MP3 with a Xing
header, MP4) or when decoding breaks off; an Ogg stream cut cleanly between pages
carries no total length and decodes as a shorter file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from recsys.errors import AudioError

BLOCK_SECONDS = 20.0
SILENCE_PEAK = 1e-3  # -60 dBFS: below this everywhere, a file is silent
# A file whose decoded length falls short of its declared length by more than this is truncated.
TRUNCATION_TOLERANCE_S = 0.05
_WAV_SHORT = re.compile(r"data\s*:\s*(\d+)\s*\(should be (\d+)\)")


class EmptyAudioError(AudioError):
    """The file has no bytes, or decodes to no samples."""


class SilentAudioError(AudioError):
    """The file decodes, but every sample is below -60 dBFS."""


class CorruptAudioError(AudioError):
    """A decoder recognises the format but cannot decode the data."""


class TruncatedAudioError(AudioError):
    """The data ends before the length the file's header declares."""


class UnsupportedAudioError(AudioError):
    """No decoder recognises the file as audio (or a container has no audio stream)."""


@dataclass(frozen=True)
class AudioInfo:
    """What a file declares about itself, before decoding."""

    path: str
    decoder: str  # soundfile or pyav
    format: str  # WAV/PCM_16, MP3/MPEG_LAYER_III, mp4/aac, ...
    sample_rate: int
    channels: int
    duration_s: float | None  # None when the container does not say


@dataclass(frozen=True)
class DecodedAudio:
    """Mono float32 samples at ``sample_rate`` and where they came from."""

    samples: np.ndarray  # (n,) float32
    sample_rate: int
    info: AudioInfo
    clipped: bool  # True when max_duration_s cut the file short

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


# --------------------------------------------------------------------------- probing


def probe(path: str | Path) -> AudioInfo:
    """Open a file with the first decoder that accepts it and report its declared properties."""
    path = _existing(path)
    sf_error = None
    try:
        with sf.SoundFile(str(path)) as handle:
            return _sf_info(path, handle)
    except sf.LibsndfileError as exc:
        sf_error = exc
    return _av_probe(path, sf_error)


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise UnsupportedAudioError(path, "no such file")
    if path.stat().st_size == 0:
        raise EmptyAudioError(path, "empty file (0 bytes)")
    return path


def _sf_info(path: Path, handle: sf.SoundFile) -> AudioInfo:
    frames = handle.frames if handle.frames and handle.frames > 0 else None
    return AudioInfo(
        path=str(path),
        decoder="soundfile",
        format=f"{handle.format}/{handle.subtype}",
        sample_rate=int(handle.samplerate),
        channels=int(handle.channels),
        duration_s=None if frames is None else frames / handle.samplerate,
    )


def _av_probe(path: Path, sf_error: Exception | None) -> AudioInfo:
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise _unopenable(path, sf_error, exc) from None
    with container:
        return _av_info(path, container)


def _unopenable(path: Path, sf_error: Exception | None, av_error: Exception) -> AudioError:
    detail = f"soundfile: {_short(sf_error)}; ffmpeg: {_short(av_error)}"
    if sf_error is not None and "malformed" in str(sf_error):
        return CorruptAudioError(path, f"malformed audio data ({detail})")
    return UnsupportedAudioError(path, f"not a recognised audio format ({detail})")


def _av_info(path: Path, container: Any) -> AudioInfo:
    if not container.streams.audio:
        kinds = sorted({s.type for s in container.streams}) or ["none"]
        raise UnsupportedAudioError(path, f"no audio stream (streams: {', '.join(kinds)})")
    stream = container.streams.audio[0]
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000
    codec = stream.codec_context.name if stream.codec_context is not None else "unknown"
    return AudioInfo(
        path=str(path),
        decoder="pyav",
        format=f"{container.format.name}/{codec}",
        sample_rate=int(stream.codec_context.sample_rate or stream.rate or 0),
        channels=int(stream.codec_context.channels or 0),
        duration_s=duration,
    )


def _short(exc: Exception | None) -> str:
    if exc is None:
        return "not tried"
    text = str(exc).replace("\n", " ").strip()
    text = re.sub(r"^Error (?:opening )?'[^']*':\s*", "", text)
    text = re.sub(r"^Error\s*:\s*", "", text)
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    text = re.sub(r":\s*'[^']*'$", "", text)
    return text[:160] or type(exc).__name__


# --------------------------------------------------------------------------- decoding


def iter_blocks(
    path: str | Path,
    sample_rate: int,
    *,
    max_duration_s: float | None = None,
    block_s: float = BLOCK_SECONDS,
) -> Iterator[np.ndarray]:
    """Mono float32 blocks at ``sample_rate``, decoded and resampled as a stream.

    Stops after ``max_duration_s`` seconds of output. Raises an ``AudioError``
    subclass for a file that cannot be opened, stops decoding early, or is shorter
    than it declares. Silence is not checked here (see :func:`load_audio`).
    """
    path = _existing(path)
    limit = None if max_duration_s is None else round(max_duration_s * sample_rate)
    emitted = 0
    for block in _resampled(path, sample_rate, block_s):
        if limit is not None and emitted + len(block) >= limit:
            yield block[: limit - emitted]
            return
        emitted += len(block)
        yield block


def load_audio(path: str | Path, sample_rate: int, *, max_duration_s: float | None = 600.0) -> DecodedAudio:
    """Decode a whole file (up to ``max_duration_s``) to mono float32 at ``sample_rate``.

    Raises ``EmptyAudioError`` when nothing decodes and ``SilentAudioError`` when
    every sample is below -60 dBFS, beside the errors of :func:`iter_blocks`.
    """
    info = probe(path)
    blocks: list[np.ndarray] = []
    total = 0
    limit = None if max_duration_s is None else round(max_duration_s * sample_rate)
    for block in iter_blocks(path, sample_rate, max_duration_s=max_duration_s):
        blocks.append(block)
        total += len(block)
    samples = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    if len(samples) == 0:
        raise EmptyAudioError(path, "no audio samples")
    peak = float(np.max(np.abs(samples)))
    if not np.isfinite(peak):
        raise CorruptAudioError(path, "decoded samples are not finite")
    if peak < SILENCE_PEAK:
        level = -np.inf if peak == 0 else 20 * np.log10(peak)
        raise SilentAudioError(path, f"silent (peak {level:.0f} dBFS over {total / sample_rate:.1f} s)")
    clipped = limit is not None and total >= limit
    return DecodedAudio(
        samples=samples.astype(np.float32, copy=False), sample_rate=sample_rate, info=info, clipped=clipped
    )


def _resampled(path: Path, sample_rate: int, block_s: float) -> Iterator[np.ndarray]:
    """Decoded mono blocks at the file's rate, then streamed through soxr to ``sample_rate``."""
    resampler: soxr.ResampleStream | None = None
    source_rate = 0
    for mono, rate in _decoded(path, block_s):
        if resampler is None:
            source_rate = rate
            if rate != sample_rate:
                resampler = soxr.ResampleStream(rate, sample_rate, 1, dtype="float32", quality="HQ")
        if rate != source_rate:
            raise CorruptAudioError(path, f"sample rate changes mid-stream ({source_rate} → {rate} Hz)")
        if resampler is None:
            yield mono
        else:
            out = resampler.resample_chunk(mono, last=False)
            if len(out):
                yield out
    if resampler is not None:
        tail = resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        if len(tail):
            yield tail


def _decoded(path: Path, block_s: float) -> Iterator[tuple[np.ndarray, int]]:
    try:
        handle = sf.SoundFile(str(path))
    except sf.LibsndfileError as exc:
        yield from _av_decoded(path, exc)
        return
    with handle:
        yield from _sf_decoded(path, handle, block_s)


def _sf_decoded(path: Path, handle: sf.SoundFile, block_s: float) -> Iterator[tuple[np.ndarray, int]]:
    rate = int(handle.samplerate)
    declared = handle.frames if handle.frames and handle.frames > 0 else None
    if handle.format in {"WAV", "WAVEX", "RF64"}:
        short = _WAV_SHORT.search(handle.extra_info or "")
        if short and int(short.group(2)) < int(short.group(1)):
            declared_bytes, actual = int(short.group(1)), int(short.group(2))
            raise TruncatedAudioError(
                path, f"truncated: header declares {declared_bytes:,} data bytes, file holds {actual:,}"
            )
    read = 0
    # Read one second per call: a decoding error then says how far the data is good.
    size = max(1, min(int(block_s * rate), rate))
    while True:
        try:
            block = handle.read(size, dtype="float32", always_2d=True)
        except sf.LibsndfileError as exc:
            if read == 0:
                raise CorruptAudioError(path, f"cannot decode: {_short(exc)}") from None
            raise TruncatedAudioError(
                path, f"decoding stopped at {read / rate:.2f} s: {_short(exc)}"
            ) from None
        if len(block) == 0:
            break
        read += len(block)
        yield block.mean(axis=1, dtype=np.float32), rate
        if len(block) < size:
            break
    _check_length(path, read, rate, declared)


def _check_length(path: Path, read: int, rate: int, declared: int | None) -> None:
    if declared is not None and declared - read > TRUNCATION_TOLERANCE_S * rate:
        raise TruncatedAudioError(
            path, f"truncated: decoded {read / rate:.2f} s of the {declared / rate:.2f} s the header declares"
        )


def _av_decoded(path: Path, sf_error: Exception) -> Iterator[tuple[np.ndarray, int]]:
    import av

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise _unopenable(path, sf_error, exc) from None
    with container:
        info = _av_info(path, container)
        stream = container.streams.audio[0]
        converter = av.AudioResampler(format="fltp")  # planar float, the stream's own layout and rate
        read = 0
        rate = info.sample_rate
        try:
            for frame in container.decode(stream):
                for converted in converter.resample(frame):
                    planes = converted.to_ndarray()  # (channels, n)
                    rate = int(converted.sample_rate)
                    read += planes.shape[1]
                    yield planes.mean(axis=0, dtype=np.float32), rate
        except av.error.FFmpegError as exc:
            if read == 0:
                raise CorruptAudioError(path, f"cannot decode: {_short(exc)}") from None
            raise TruncatedAudioError(
                path, f"decoding stopped at {read / rate:.2f} s: {_short(exc)}"
            ) from None
        # Compressed streams declare their length only approximately: allow 2 %.
        if (
            info.duration_s is not None
            and rate
            and read < 0.98 * info.duration_s * rate - TRUNCATION_TOLERANCE_S * rate
        ):
            raise TruncatedAudioError(
                path,
                f"truncated: decoded {read / rate:.2f} s of the {info.duration_s:.2f} s the container declares",
            )


# --------------------------------------------------------------------------- windows


def window_starts(n_samples: int, window: int, hop: int) -> list[int]:
    """Start offsets of fixed-length windows covering ``n_samples``.

    Windows advance by ``hop``; the last one is moved back so it ends at the end of
    the signal (every window has full length). A signal shorter than one window
    gives one start, 0, and the caller uses the signal as it is.
    """
    if window <= 0 or hop <= 0:
        raise ValueError("window and hop must be positive")
    if n_samples <= window:
        return [0]
    starts = list(range(0, n_samples - window + 1, hop))
    if starts[-1] + window < n_samples:
        starts.append(n_samples - window)
    return starts
