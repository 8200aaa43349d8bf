"""Video input: frames at N fps by presentation time, soundtrack, robustness and named errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys.errors import VideoError
from recsys.media.video import VideoLimits, load_video, probe_video, read_frames, read_soundtrack
from tests import videofiles


def red_index(frames: np.ndarray, n: int) -> list[int]:
    """Which source frame each sampled frame is (colour_frames encodes the index in the red level)."""
    return [round(float(f[..., 0].mean()) * (n - 1) / 255) for f in frames]


def test_frames_at_one_fps_by_time_and_the_soundtrack(tmp_path: Path) -> None:
    path = videofiles.with_audio(tmp_path / "a.mp4", seconds=4.0, fps=8)
    clip = load_video(path, fps=1.0, size=32)
    assert clip.frames.frames.shape == (4, 32, 32, 3)
    assert clip.frames.frames.dtype == np.uint8
    assert np.allclose(clip.frames.times, [0, 1, 2, 3])
    assert red_index(clip.frames.frames, 32) == [0, 8, 16, 24]
    assert clip.soundtrack.usable and clip.soundtrack.sample_rate == 22_050
    assert abs(clip.soundtrack.samples.size / 22_050 - 4.0) < 0.1  # type: ignore[union-attr]
    info = probe_video(path)
    assert (info.width, info.height, info.has_audio) == (64, 48, True)
    assert info.duration_s == pytest.approx(4.0, abs=0.1)


def test_seeking_decodes_fewer_frames_and_gives_the_same_ones(tmp_path: Path) -> None:
    path = videofiles.with_audio(tmp_path / "gop.mp4", seconds=6.0, fps=8, gop=4)
    seeking = read_frames(path, size=32)
    baseline = read_frames(path, size=32, seek=False)
    assert baseline.decoded == 48
    assert seeking.decoded < baseline.decoded
    assert np.array_equal(seeking.times, baseline.times)
    assert np.array_equal(seeking.frames, baseline.frames)


def test_a_keyframe_every_second_decodes_only_the_sampled_frames(tmp_path: Path) -> None:
    # The keyframes are listed from the packets before decoding, so no frame is decoded to learn
    # their spacing, and none after the last sample.
    path = videofiles.with_audio(tmp_path / "gop1s.mp4", seconds=6.0, fps=8, gop=8)
    seeking = read_frames(path, size=32)
    baseline = read_frames(path, size=32, seek=False)
    assert seeking.decoded == len(seeking.frames) == 6
    assert np.array_equal(seeking.times, baseline.times)
    assert np.array_equal(seeking.frames, baseline.frames)
    assert red_index(seeking.frames, 48) == [0, 8, 16, 24, 32, 40]


def test_variable_frame_rate_samples_by_presentation_time(tmp_path: Path) -> None:
    times_ms = [0, 100, 200, 900, 1000, 1100, 1500, 2600, 2700, 3050, 3200]
    path = videofiles.variable_rate(tmp_path / "vfr.mp4", times_ms)
    frames = read_frames(path, size=32)
    picked = red_index(frames.frames, len(times_ms))
    # Each sample is the first frame at (or within half a frame before) each whole second.
    assert picked == [0, 3, 7, 9]
    assert np.allclose(frames.times, [times_ms[i] / 1000 for i in picked], atol=0.01)


def test_video_without_an_audio_stream_gives_frames_and_a_reason(tmp_path: Path) -> None:
    clip = load_video(videofiles.without_audio(tmp_path / "silent.mp4"), size=32)
    assert len(clip.frames.frames) == 3
    assert not clip.soundtrack.usable and clip.soundtrack.error == "no audio stream"


def test_broken_audio_stream_leaves_the_frames_usable(tmp_path: Path) -> None:
    clip = load_video(videofiles.broken_audio(tmp_path / "broken.mkv"), size=32)
    assert len(clip.frames.frames) == 3
    assert not clip.soundtrack.usable
    assert "audio stream cannot be decoded" in str(clip.soundtrack.error)


def test_stream_without_duration_or_timestamps(tmp_path: Path) -> None:
    path = videofiles.raw_h264(tmp_path / "raw.h264", seconds=10.0, fps=8)
    info = probe_video(path)
    assert info.duration_s is None
    frames = read_frames(path, size=32)  # no timing: FFmpeg's default rate of 25 fps applies
    assert len(frames.frames) == 4 and np.all(np.diff(frames.times) > 0)
    assert red_index(frames.frames, 80) == [0, 25, 50, 75]


def test_rotation_metadata_is_applied(tmp_path: Path) -> None:
    frames = read_frames(videofiles.rotated(tmp_path / "rot.mp4", 90), size=32)
    assert frames.rotation == 90
    # 64x48 landscape turned 90° counter-clockwise: the blue top-left corner moves to the bottom-left.
    blue = frames.frames[0, ..., 2].astype(float)
    assert blue[-8:, :8].mean() > 150 and blue[:8, :8].mean() < 50


def test_limits(tmp_path: Path) -> None:
    path = videofiles.with_audio(tmp_path / "a.mp4", seconds=4.0)
    with pytest.raises(VideoError, match=r"resolution 64x48 above the limit 32x32"):
        read_frames(path, limits=VideoLimits(max_width=32, max_height=32))
    cut = read_frames(path, size=32, limits=VideoLimits(max_duration_s=2.0))
    assert cut.truncated and cut.times[-1] <= 2.0


def test_files_that_are_not_video(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoError, match=r"notes\.mp4: not a video file"):
        read_frames(text)
    empty = tmp_path / "empty.mov"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match="empty file"):
        read_frames(empty)
    with pytest.raises(VideoError, match="no such file"):
        probe_video(tmp_path / "missing.mp4")
    import soundfile as sf

    wav = tmp_path / "tone.wav"
    sf.write(wav, np.zeros(8000, np.float32), 8000)
    with pytest.raises(VideoError, match="no video stream"):
        read_frames(wav)


def test_truncated_file_keeps_the_frames_before_the_break(tmp_path: Path) -> None:
    cut = tmp_path / "cut.h264"
    videofiles.raw_h264(cut, seconds=10.0)
    cut.write_bytes(cut.read_bytes()[: len(cut.read_bytes()) // 2])
    frames = read_frames(cut, size=32)
    assert 1 <= len(frames.frames) < 4


@pytest.mark.shared_data
def test_every_real_video_decodes(shared_data: Path) -> None:
    videos = sorted((shared_data / "video").glob("*.mp4"))
    assert len(videos) == 6
    for path in videos:
        info = probe_video(path)
        frames = read_frames(path, size=64)
        assert info.duration_s is not None
        assert abs(len(frames.frames) - (int(info.duration_s) + 1)) <= 1, path.name
        sound = read_soundtrack(path, sample_rate=16_000)
        assert sound.usable, f"{path.name}: {sound.error}"
