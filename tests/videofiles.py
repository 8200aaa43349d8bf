"""Small generated videos for the tests: with and without audio, a broken audio stream, no duration, rotation, VFR."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from pipelines.demo.video import write_video


def colour_frames(n: int, size: tuple[int, int] = (48, 64), seed: int = 0) -> np.ndarray:
    """(n, H, W, 3) frames whose colour changes every frame (frame i is recognisable by its red level)."""
    rng = np.random.default_rng(seed)
    frames = np.zeros((n, *size, 3), dtype=np.uint8)
    for i in range(n):
        frames[i, ..., 0] = (i * 255) // max(1, n - 1)
        frames[i, ..., 1] = rng.integers(0, 60)
        frames[i, : size[0] // 2, : size[1] // 2, 2] = 200  # a blue top-left corner: orientation
    return frames


def with_audio(path: Path, seconds: float = 4.0, fps: int = 8, gop: int | None = None) -> Path:
    sr = 16_000
    t = np.arange(int(seconds * sr)) / sr
    audio = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return write_video(path, colour_frames(int(seconds * fps)), fps, audio, sr, gop=gop)


def without_audio(path: Path, seconds: float = 3.0, fps: int = 8) -> Path:
    return write_video(path, colour_frames(int(seconds * fps)), fps)


def broken_audio(path: Path, seconds: float = 3.0, fps: int = 8) -> Path:
    """An MKV whose AAC stream carries random bytes instead of AAC frames."""
    frames = colour_frames(int(seconds * fps))
    rng = np.random.default_rng(1)
    with av.open(str(path), mode="w", format="matroska") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        audio = container.add_stream("aac", rate=16_000, layout="mono")
        audio.codec_context.extradata = bytes([0x14, 0x08])  # AAC-LC 16 kHz mono
        for image in frames:
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        for i in range(int(seconds * 16_000 / 1024)):
            packet = av.Packet(rng.integers(0, 256, 200, dtype=np.uint8).tobytes())
            packet.stream = audio
            packet.pts = packet.dts = i * 1024
            packet.time_base = Fraction(1, 16_000)
            container.mux(packet)
    return path


def raw_h264(path: Path, seconds: float = 3.0, fps: int = 8) -> Path:
    """An Annex-B elementary stream: no container, so no duration and no timestamps."""
    frames = colour_frames(int(seconds * fps))
    with av.open(str(path), mode="w", format="h264") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def rotated(path: Path, degrees: int = 90, seconds: float = 2.0, fps: int = 8) -> Path:
    frames = colour_frames(int(seconds * fps))
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.set_display_rotation(degrees)
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def variable_rate(path: Path, times_ms: list[int]) -> Path:
    """Frames at the given presentation times (milliseconds): a variable frame rate."""
    frames = colour_frames(len(times_ms))
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for image, ms in zip(frames, times_ms, strict=True):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = ms, Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
