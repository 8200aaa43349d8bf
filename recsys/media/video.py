"""A video file → frames sampled at N fps (resized for a frame encoder) and its soundtrack.

Decoding goes through PyAV (its bundled FFmpeg). Frames are taken at the requested
rate by presentation time, not by frame index, so variable frame rates sample
evenly; a stream without timestamps (raw ``.h264``) falls back to the declared or
guessed frame rate. Where the container can seek, the reader first lists the
keyframes from the packets (demuxing only, no decoding), then seeks to each sample
time and decodes forward from the keyframe before it, instead of decoding every
frame; it seeks only where that keyframe lies past the frame already reached
(keyframes far apart: it decodes on), and when a seek lands behind that frame it
stops seeking. Only the sampled frames are converted to
RGB, scaled by FFmpeg straight to the encoder's size and centre-cropped square.

Rotation metadata (a display matrix, read per frame) is applied, so a phone video filmed upright
comes out upright. A missing or broken audio stream never stops the frames: the
soundtrack then carries ``samples=None`` and the reason. Files that are not video,
have no decodable frame, or exceed the resolution limit raise
:class:`recsys.errors.VideoError` naming the file and why; a video longer than the
duration limit is read up to the limit (``truncated=True``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

from recsys.errors import VideoError

FALLBACK_FPS = 25.0


@dataclass(frozen=True)
class VideoLimits:
    """What the reader accepts: longer videos are cut at ``max_duration_s``; larger frames are refused."""

    max_duration_s: float = 600.0
    max_width: int = 7680
    max_height: int = 4320


@dataclass(frozen=True)
class VideoInfo:
    """What a file declares about itself before decoding (``None`` where it declares nothing)."""

    path: str
    width: int
    height: int
    codec: str
    duration_s: float | None
    frame_rate: float | None
    has_audio: bool


@dataclass
class VideoFrames:
    """Sampled frames: ``frames`` (T, size, size, 3) uint8 RGB at ``times`` (T,) seconds."""

    frames: np.ndarray
    times: np.ndarray
    info: VideoInfo
    decoded: int  # frames the decoder produced to get these (the cost)
    truncated: bool  # the video runs past ``VideoLimits.max_duration_s``
    rotation: int = 0  # degrees counter-clockwise applied from the display matrix


@dataclass
class Soundtrack:
    """The audio of a video as mono float32, or ``samples=None`` and the reason it is unusable."""

    samples: np.ndarray | None
    sample_rate: int
    error: str | None = None

    @property
    def usable(self) -> bool:
        return self.samples is not None


@dataclass
class VideoClip:
    frames: VideoFrames
    soundtrack: Soundtrack


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]


def _open(path: Path) -> Any:
    if not path.is_file():
        raise VideoError(path, "no such file")
    if path.stat().st_size == 0:
        raise VideoError(path, "empty file")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise VideoError(path, f"not a video file ({_short(exc)})") from None


def _info(path: Path, container: Any) -> VideoInfo:
    if not container.streams.video:
        container.close()
        raise VideoError(path, "not a video file (no video stream)")
    stream = container.streams.video[0]
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return VideoInfo(
        path=str(path),
        width=int(stream.width or 0),
        height=int(stream.height or 0),
        codec=stream.codec_context.name,
        duration_s=duration if duration and duration > 0 else None,
        frame_rate=float(rate) if rate else None,
        has_audio=bool(container.streams.audio),
    )


def probe_video(path: str | Path) -> VideoInfo:
    """Dimensions, codec, declared duration and frame rate, whether there is audio."""
    path = Path(path)
    container = _open(path)
    try:
        return _info(path, container)
    finally:
        container.close()


def _check_limits(info: VideoInfo, limits: VideoLimits) -> None:
    if info.width > limits.max_width or info.height > limits.max_height:
        raise VideoError(
            info.path,
            f"resolution {info.width}x{info.height} above the limit {limits.max_width}x{limits.max_height}",
        )


def _scaled_size(width: int, height: int, size: int) -> tuple[int, int]:
    """Width and height with the short side at ``size`` (aspect kept)."""
    scale = size / max(1, min(width, height))
    return max(size, round(width * scale)), max(size, round(height * scale))


def _to_rgb(frame: Any, size: int) -> np.ndarray:
    """One frame → (size, size, 3) uint8: scaled by FFmpeg, turned upright, centre-cropped."""
    width, height = _scaled_size(frame.width, frame.height, size)
    image = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()  # (H, W, 3)
    rotation = round(frame.rotation or 0) % 360  # counter-clockwise, from the display matrix
    if rotation:
        image = np.ascontiguousarray(np.rot90(image, k=(rotation // 90) % 4))
    h, w = image.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return image[top : top + size, left : left + size]


class _FrameSource:
    """Iterates decoded frames with their times, counting them; can seek by time."""

    def __init__(self, path: Path, container: Any, stream: Any, info: VideoInfo) -> None:
        self.path, self.container, self.stream = path, container, stream
        self.period = 1.0 / (info.frame_rate or FALLBACK_FPS)
        self.decoded = 0
        self.index = 0
        self.errors = 0
        self._iter: Iterator[Any] | None = None

    def keyframe_times(self, limit_s: float) -> tuple[list[float], float] | None:
        """Presentation times (s) of the keyframes up to ``limit_s`` and the latest packet time, from the
        packets alone (no decoding), then back to the start; ``None`` where the packets carry no usable
        times or the stream cannot seek."""
        tb = self.stream.time_base
        if tb is None:
            return None
        times: list[float] = []
        first: float | None = None
        last = -math.inf
        try:
            for packet in self.container.demux(self.stream):
                if packet.pts is None:
                    continue
                at = float(packet.pts * tb)
                first = at if first is None else min(first, at)
                last = max(last, at)
                if at - first > limit_s:
                    break
                if packet.is_keyframe:
                    times.append(at)
            self.container.seek(0, stream=self.stream, backward=True, any_frame=False)
        except av.error.FFmpegError:
            return None
        self._iter = None
        return (sorted(set(times)), last) if times else None

    def seek(self, seconds: float) -> None:
        tb = self.stream.time_base
        self.container.seek(int(seconds / tb), stream=self.stream, backward=True, any_frame=False)
        self._iter = None

    def frames(self) -> Iterator[tuple[float, Any]]:
        while True:
            if self._iter is None:
                self._iter = self.container.decode(self.stream)
            try:
                frame = next(self._iter)
            except StopIteration:
                return
            except av.error.EOFError:
                return
            except av.error.FFmpegError:
                # A corrupt packet: FFmpeg resynchronises at the next one.
                self.errors += 1
                if self.errors > 50:
                    return
                self._iter = None
                continue
            self.decoded += 1
            time = frame.time if frame.time is not None else self.index * self.period
            self.index += 1
            yield float(time), frame


def read_frames(
    path: str | Path,
    *,
    fps: float = 1.0,
    size: int = 224,
    limits: VideoLimits | None = None,
    seek: bool = True,
) -> VideoFrames:
    """Frames at ``fps`` per second of presentation time, each (size, size, 3) uint8 RGB.

    ``seek=False`` decodes every frame in order (the baseline; also what happens
    when the container cannot seek).
    """
    if fps <= 0:
        raise ValueError("fps must be positive")
    limits = limits or VideoLimits()
    path = Path(path)
    container = _open(path)
    try:
        info = _info(path, container)
        _check_limits(info, limits)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        source = _FrameSource(path, container, stream, info)
        images, times, truncated, rotation = _sample(source, info, fps, size, limits, seek)
    except av.error.FFmpegError as exc:
        raise VideoError(path, f"cannot decode the video stream ({_short(exc)})") from None
    finally:
        container.close()
    if not images:
        raise VideoError(path, "no frame could be decoded")
    return VideoFrames(
        frames=np.stack(images),
        times=np.asarray(times, dtype=np.float64),
        info=info,
        decoded=source.decoded,
        truncated=truncated,
        rotation=rotation,
    )


def _sample(
    source: _FrameSource, info: VideoInfo, fps: float, size: int, limits: VideoLimits, seek: bool
) -> tuple[list[np.ndarray], list[float], bool, int]:
    """Walk the stream taking the first frame at or after each sample time.

    Seeking pays only when the keyframe before the next sample time lies beyond the
    frame already reached: the keyframe list from the packets says so; without one,
    the keyframe spacing seen so far while decoding (``gop``) predicts it.
    """
    step = 1.0 / fps
    half_frame = 0.5 * source.period
    can_seek = seek and info.duration_s is not None
    listed = source.keyframe_times(limits.max_duration_s + 1.0) if can_seek else None
    index, last = listed if listed is not None else (None, math.inf)
    images: list[np.ndarray] = []
    times: list[float] = []
    rotations: list[int] = []
    keyframes: list[float] = []
    target, start, position = 0.0, None, -math.inf
    truncated = info.duration_s is not None and info.duration_s > limits.max_duration_s
    frames = source.frames()
    pending: tuple[float, Any] | None = None
    while True:
        if start is not None and start + target - half_frame > last + 1e-6:
            break  # no frame left that could be the next sample: decoding on to the end would find none
        if not can_seek or start is None:
            worth = False
        elif index is not None:
            # The keyframe a seek to the target lands on: past the frame already reached, seeking saves decoding.
            before = bisect.bisect_right(index, start + target + 1e-6) - 1
            worth = before >= 0 and index[before] - start > position + 1e-6
        else:
            gop = float(np.median(np.diff(keyframes))) if len(keyframes) >= 2 else None
            # The keyframe before the target lies at most one ``gop`` earlier: past our position, a seek pays.
            worth = gop is not None and target - position >= gop - 1e-6
        if worth and start is not None:
            source.seek(start + target)
            frames = source.frames()
            pending = next(frames, None)
            if pending is None:
                break
            if pending[0] - start <= position:  # landed behind: this stream does not seek usefully
                can_seek = False
        found = False
        while True:
            item = pending if pending is not None else next(frames, None)
            pending = None
            if item is None:
                break
            time, frame = item
            if start is None:
                start = time
            rel = time - start
            if frame.key_frame and (not keyframes or rel > keyframes[-1]):
                keyframes.append(rel)
            if rel <= position:  # decoded again after a seek
                continue
            position = rel
            if rel > limits.max_duration_s:
                truncated = True
                break
            if rel + half_frame >= target:
                images.append(_to_rgb(frame, size))
                rotations.append(round(frame.rotation or 0) % 360)
                times.append(rel)
                while target <= rel + half_frame:
                    target += step
                found = True
                break
        if not found:
            break
    return images, times, truncated, rotations[0] if rotations else 0


def read_soundtrack(
    path: str | Path, *, sample_rate: int = 22_050, max_duration_s: float | None = 600.0
) -> Soundtrack:
    """The first audio stream as mono float32 at ``sample_rate``; unusable audio gives the reason, not an error."""
    path = Path(path)
    container = _open(path)
    try:
        if not container.streams.audio:
            return Soundtrack(None, sample_rate, "no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        total, limit = 0, None if max_duration_s is None else int(max_duration_s * sample_rate)
        errors, last_error = 0, ""
        packets = container.demux(stream)
        for packet in packets:
            try:
                decoded = packet.decode()
            except av.error.FFmpegError as exc:
                errors += 1
                last_error = _short(exc)
                continue
            for frame in decoded:
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    total += chunk.size
            if limit is not None and total >= limit:
                break
    except av.error.FFmpegError as exc:
        return Soundtrack(None, sample_rate, f"audio stream cannot be decoded ({_short(exc)})")
    finally:
        container.close()
    if total == 0:
        reason = f"audio stream cannot be decoded ({last_error})" if errors else "audio stream is empty"
        return Soundtrack(None, sample_rate, reason)
    samples = np.concatenate(chunks).astype(np.float32)
    if limit is not None:
        samples = samples[:limit]
    if not np.isfinite(samples).all():
        return Soundtrack(None, sample_rate, "audio stream decodes to non-finite samples")
    return Soundtrack(samples, sample_rate, None)


def load_video(
    path: str | Path,
    *,
    fps: float = 1.0,
    size: int = 224,
    sample_rate: int = 22_050,
    limits: VideoLimits | None = None,
) -> VideoClip:
    """Frames and soundtrack together (the soundtrack may be unusable; the frames never are)."""
    limits = limits or VideoLimits()
    frames = read_frames(path, fps=fps, size=size, limits=limits)
    sound = read_soundtrack(path, sample_rate=sample_rate, max_duration_s=limits.max_duration_s)
    return VideoClip(frames, sound)


VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ogv"})


def find_videos(root: str | Path, *, limit: int = 500) -> list[Path]:
    """Video files under ``root`` by name (at most ``limit``, sorted): candidates to pick from,
    each still checked by decoding before use."""
    root = Path(root)
    if not root.is_dir():
        return []
    found: list[Path] = []
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in VIDEO_SUFFIXES and path.is_file():
            found.append(path)
            if len(found) >= limit:
                break
    return found


def check_video(path: str | Path, *, max_duration_s: float) -> VideoInfo:
    """The file's video facts, once it has shown itself a decodable video of at most
    ``max_duration_s`` seconds (its name or extension proves nothing); else ``VideoError``."""
    info = probe_video(path)
    _check_limits(info, VideoLimits())
    if info.duration_s is not None and info.duration_s > max_duration_s:
        raise VideoError(
            path, f"the video runs {info.duration_s:.0f} s; at most {max_duration_s:.0f} s are accepted here"
        )
    return info
