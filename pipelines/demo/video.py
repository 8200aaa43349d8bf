"""A synthetic known-answer set for the video→music model: generated videos paired with generated music.

Every clip draws a style and renders it twice, once as pictures and once as sound:

=============  ==========================================  ===========================================
factor         in the video                                in the music
=============  ==========================================  ===========================================
hue            background colour (continuous)              root note (continuous: hue → semitone)
brightness     value of the colours                        register (octave)
tempo          rhythm of the cuts (a cut every 2 beats)    beats per minute (a tick on every beat)
motion         speed of the moving disc                    note density (notes per beat)
instrument     —  (invisible)                              timbre: piano, strings, flute, percussion
culture        —  (invisible)                              scale (and a drone for ``indian``)
=============  ==========================================  ===========================================

Instrument and culture never show in the pictures, so the video alone is ambiguous
by construction among clips that differ only in them; the description names them,
so text must resolve what the video cannot. The tags (mood from the hue, tempo word,
energy word, instrument, culture) go into ``manifest.jsonl`` beside the clips; the
training job turns them into descriptions by analogy templates.

Each clip is a QuickTime ``.mov`` (H.264 video + 16-bit PCM soundtrack: PCM writes in
a few milliseconds where AAC takes a quarter of a second per clip; the real videos in
the tests cover AAC and MP3) and the same music as a WAV (the catalog's audio asset
for ``recsys embed music``).
"""

from __future__ import annotations

import colorsys
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import av
import numpy as np

from pipelines.train.trimodal import split

INSTRUMENTS = ("piano", "strings", "flute", "percussion")
CULTURES = ("western", "indian", "japanese", "celtic")
SCALES = {
    "western": (0, 2, 4, 5, 7, 9, 11),  # major
    "indian": (0, 1, 4, 5, 7, 8, 11),  # bhairav
    "japanese": (0, 1, 5, 7, 8),  # in
    "celtic": (0, 2, 4, 7, 9),  # major pentatonic
}
MOODS = ("warm", "serene", "melancholic", "dreamy")  # hue quarters: red-yellow, green, blue, purple


@dataclass(frozen=True)
class SynthConfig:
    clips: int = 1000
    seconds: float = 8.0
    video_fps: int = 8
    size: int = 64
    sample_rate: int = 16_000
    seed: int = 11
    twin_clips: int = 60  # test clips that get music-only twins
    test_fraction: float = 0.2


@dataclass(frozen=True)
class ClipStyle:
    clip_id: str
    hue: float  # 0..1
    brightness: float  # 0.35..1
    bpm: float  # 60..150
    motion: float  # 0..1 (disc speed; note density)
    instrument: str
    culture: str

    @property
    def tags(self) -> dict[str, str]:
        tempo = "slow" if self.bpm < 85 else "fast" if self.bpm > 120 else "medium"
        energy = "sparse" if self.motion < 0.33 else "busy" if self.motion > 0.66 else "flowing"
        return {
            "instrument": self.instrument,
            "culture": self.culture,
            "mood": MOODS[int(self.hue * 4) % 4],
            "tempo": tempo,
            "energy": energy,
            "register": "deep" if self.brightness < 0.6 else "bright",
        }


def draw_styles(config: SynthConfig) -> list[ClipStyle]:
    rng = np.random.default_rng(config.seed)
    return [
        ClipStyle(
            clip_id=f"clip{i:05d}",
            hue=float(rng.uniform(0, 1)),
            brightness=float(rng.uniform(0.35, 1.0)),
            bpm=float(rng.uniform(60, 150)),
            motion=float(rng.uniform(0, 1)),
            instrument=str(rng.choice(INSTRUMENTS)),
            culture=str(rng.choice(CULTURES)),
        )
        for i in range(config.clips)
    ]


# --------------------------------------------------------------------------- pictures


def render_frames(style: ClipStyle, config: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """(T, size, size, 3) uint8: a coloured background and a moving disc, cut every two beats."""
    n = round(config.seconds * config.video_fps)
    size = config.size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cut_every = 2 * 60.0 / style.bpm
    frames = np.empty((n, size, size, 3), dtype=np.uint8)
    shot, shot_state = -1, None
    for i in range(n):
        t = i / config.video_fps
        current = int(t // cut_every)
        if current != shot:  # a cut: new shade, new disc position and direction, new stripe angle
            shot = current
            hue = (style.hue + rng.normal(0, 0.015)) % 1.0
            bg = np.array(colorsys.hsv_to_rgb(hue, 0.75, style.brightness), dtype=np.float32)
            fg = np.array(colorsys.hsv_to_rgb((hue + 0.5) % 1.0, 0.6, style.brightness), dtype=np.float32)
            angle = rng.uniform(0, 2 * np.pi)
            shot_state = (bg, fg, rng.uniform(0.2, 0.8, 2) * size, angle, rng.uniform(0, np.pi))
            shot_start = t
        assert shot_state is not None
        bg, fg, pos, angle, stripe = shot_state
        speed = (0.05 + style.motion) * size * 0.9  # pixels per second
        travelled = speed * (t - shot_start)
        cx = (pos[0] + np.cos(angle) * travelled) % size
        cy = (pos[1] + np.sin(angle) * travelled) % size
        shade = 0.85 + 0.15 * np.sin((xx * np.cos(stripe) + yy * np.sin(stripe)) / 3.0)
        image = bg[None, None, :] * shade[..., None]
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 < (size * 0.15) ** 2
        image[disc] = fg
        frames[i] = np.clip(image * 255, 0, 255).astype(np.uint8)
    return frames


# --------------------------------------------------------------------------- sound


def _tone(instrument: str, freq: float, length: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(length) / sr
    if instrument == "piano":
        wave = sum(np.sin(2 * np.pi * freq * k * t) / k**1.5 for k in range(1, 7))
        env = np.exp(-t * 5.0)
    elif instrument == "strings":
        vibrato = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * t)
        wave = sum(np.sin(2 * np.pi * freq * k * t * vibrato) / k for k in range(1, 10))
        env = np.minimum(1.0, t / 0.12)
    elif instrument == "flute":
        wave = np.sin(2 * np.pi * freq * t) + 0.1 * np.sin(4 * np.pi * freq * t)
        wave = wave + 0.08 * rng.normal(size=length)
        env = np.minimum(1.0, t / 0.05) * np.exp(-t * 1.0)
    else:  # percussion: a pitched membrane and a noise burst
        wave = np.sin(2 * np.pi * freq * t * (1 + 0.5 * np.exp(-t * 30))) + 0.6 * rng.normal(size=length)
        env = np.exp(-t * 14.0)
    return (np.asarray(wave) * env).astype(np.float32)


def render_music(style: ClipStyle, config: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """Mono float32 at the config's rate: a melody in the culture's scale, rooted by the hue, on the tempo."""
    sr = config.sample_rate
    total = round(config.seconds * sr)
    out = np.zeros(total + sr, dtype=np.float32)
    beat = 60.0 / style.bpm
    per_beat = 1 + int(style.motion * 3.999)  # 1..4 notes per beat
    octave = 0 if style.brightness < 0.6 else 12
    root = 50 + style.hue * 12 + octave  # midi, continuous
    scale = SCALES[style.culture]
    step = beat / per_beat
    n_notes = int(config.seconds / step) + 1
    degree = 0
    for i in range(n_notes):
        start = round(i * step * sr)
        if start >= total:
            break
        degree = int(np.clip(degree + rng.integers(-2, 3), 0, 2 * len(scale) - 1))
        midi = root + scale[degree % len(scale)] + 12 * (degree // len(scale))
        freq = 440.0 * 2 ** ((midi - 69) / 12)
        length = min(round(step * sr * 1.5), len(out) - start)
        out[start : start + length] += 0.35 * _tone(style.instrument, freq, length, sr, rng)
    ticks = np.arange(0, config.seconds, beat)
    click = np.exp(-np.arange(int(0.03 * sr)) / (0.004 * sr)) * rng.normal(size=int(0.03 * sr))
    for t in ticks:  # a tick on every beat: the tempo is audible whatever the instrument
        start = round(t * sr)
        out[start : start + click.size] += 0.25 * click.astype(np.float32)
    if style.culture == "indian":  # a tanpura-like drone on root and fifth
        t = np.arange(len(out)) / sr
        f0 = 440.0 * 2 ** ((root - 12 - 69) / 12)
        out += 0.12 * (np.sin(2 * np.pi * f0 * t) + 0.5 * np.sin(2 * np.pi * 1.5 * f0 * t)).astype(np.float32)
    out = out[:total]
    return (0.9 * out / max(1e-6, float(np.abs(out).max()))).astype(np.float32)


# --------------------------------------------------------------------------- files


def write_video(
    path: Path,
    frames: np.ndarray,
    fps: int,
    audio: np.ndarray | None = None,
    sample_rate: int = 16_000,
    codec: str = "libx264",
    gop: int | None = None,
    audio_codec: str = "aac",
) -> Path:
    """Write (T, H, W, 3) uint8 frames (and mono float32 audio) with PyAV."""
    with av.open(str(path), mode="w") as container:
        stream: Any = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        if gop is not None:
            stream.codec_context.gop_size = gop
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "23", "threads": "1"}
        astream: Any = None
        if audio is not None:
            astream = container.add_stream(audio_codec, rate=sample_rate, layout="mono")
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if astream is not None and audio is not None:
            pcm: np.ndarray = audio.astype(np.float32)[None, :]
            fmt = "fltp"
            if audio_codec.startswith("pcm_s16"):
                pcm, fmt = (np.clip(pcm, -1, 1) * 32767).astype(np.int16), "s16"
            chunk = astream.codec_context.frame_size or 1024
            for start in range(0, pcm.shape[1], chunk):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(pcm[:, start : start + chunk]), format=fmt, layout="mono"
                )
                frame.sample_rate = sample_rate
                frame.pts = start
                for packet in astream.encode(frame):
                    container.mux(packet)
            for packet in astream.encode():
                container.mux(packet)
    return path


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> Path:
    import soundfile as sf

    sf.write(str(path), audio, sample_rate, subtype="PCM_16")
    return path


def twin_styles(style: ClipStyle) -> list[ClipStyle]:
    """The same visible style with another instrument (three) or another culture (two)."""
    other_instruments = [i for i in INSTRUMENTS if i != style.instrument]
    other_cultures = [c for c in CULTURES if c != style.culture][:2]
    return [
        replace(style, clip_id=f"{style.clip_id}_twin{k}", instrument=i)
        for k, i in enumerate(other_instruments)
    ] + [
        replace(style, clip_id=f"{style.clip_id}_twin{k + 3}", culture=c)
        for k, c in enumerate(other_cultures)
    ]


def generate(out: Path, config: SynthConfig | None = None) -> list[dict]:
    """Write every clip (``<id>.mov`` and ``<id>.wav``), the twins' WAVs and ``manifest.jsonl``.

    Twins (:func:`twin_styles`) are rendered for the first ``twin_clips`` clips of the
    test split. Re-running with the same config reuses files already written.
    """

    config = config or SynthConfig()
    out.mkdir(parents=True, exist_ok=True)
    styles = draw_styles(config)
    _, test = split([s.clip_id for s in styles], config.test_fraction)
    with_twins = {styles[i].clip_id for i in test[: config.twin_clips]}
    rows = []
    for style in styles:
        rng = np.random.default_rng([config.seed, int(style.clip_id[4:])])
        video, wav = out / f"{style.clip_id}.mov", out / f"{style.clip_id}.wav"
        if not (video.exists() and wav.exists()):
            music = render_music(style, config, rng)
            frames = render_frames(style, config, rng)
            partial = video.with_suffix(".partial.mov")
            write_video(partial, frames, config.video_fps, music, config.sample_rate, audio_codec="pcm_s16le")
            partial.replace(video)
            write_wav(wav, music, config.sample_rate)
        twins = []
        if style.clip_id in with_twins:
            for twin in twin_styles(style):
                path = out / f"{twin.clip_id}.wav"
                if not path.exists():
                    twin_rng = np.random.default_rng([config.seed, int(style.clip_id[4:])])
                    write_wav(path, render_music(twin, config, twin_rng), config.sample_rate)
                twins.append(path.name)
        rows.append(
            {
                "clip_id": style.clip_id,
                "video": video.name,
                "audio": wav.name,
                "tags": style.tags,
                "style": asdict(style),
                "twins": twins,
            }
        )
    manifest = out / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return rows
