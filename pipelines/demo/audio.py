"""Synthetic demo audio: short clips in controlled styles, written as wav files.

A style fixes a scale or mode (intervals in semitones, quarter tones allowed), a
tempo, a timbre (the partials of each note and their decay), an optional drone
(tonic and fifth held throughout) and a percussion pattern. Each clip draws its
own tonic, melody, tempo jitter and loudness from a seeded generator, so clips of
one style differ in detail but share the style: the known answer that audio
embedders must recover (same-style clips are nearer to each other than to other
styles).

``register_demo_audio`` puts the clips in the catalog as tracks with audio assets
(tagged with their style as genre), ready for ``recsys embed audio``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import sqlalchemy as sa

from recsys.catalog.schema import AudioAsset, Track


@dataclass(frozen=True)
class Style:
    name: str
    scale: tuple[float, ...]  # semitones above the tonic
    tempo_bpm: float
    partials: tuple[tuple[float, float], ...]  # (frequency ratio, amplitude)
    decay_s: float  # note amplitude time constant
    drone: bool
    percussion: str  # none, kick, frame, tabla
    tonic_hz: float
    culture: str


STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style(
            "raga-drone",
            (0, 1, 4, 5, 7, 8, 11),  # Bhairav
            66,
            ((1, 1.0), (2, 0.6), (3, 0.5), (4, 0.35), (5, 0.3), (6, 0.2), (7, 0.15)),
            0.9,
            True,
            "tabla",
            146.8,
            "hindustani",
        ),
        Style(
            "major-pop",
            (0, 2, 4, 5, 7, 9, 11),
            124,
            ((1, 1.0), (2, 0.35), (3, 0.12), (4, 0.05)),
            0.25,
            False,
            "kick",
            261.6,
            "western",
        ),
        Style(
            "maqam-hijaz",
            (0, 1, 4, 5, 7, 8, 10),
            92,
            ((1, 1.0), (3, 0.55), (5, 0.35), (7, 0.2), (9, 0.12)),
            0.45,
            False,
            "frame",
            220.0,
            "turkish",
        ),
        Style(
            "pentatonic-bells",
            (0, 2, 4, 7, 9),
            152,
            ((1, 1.0), (2.76, 0.5), (5.4, 0.25), (8.93, 0.12)),
            0.6,
            False,
            "none",
            523.3,
            "east-asian",
        ),
    )
}


@dataclass(frozen=True)
class DemoAudioConfig:
    styles: tuple[str, ...] = tuple(STYLES)
    clips_per_style: int = 4
    seconds: float = 6.0
    sample_rate: int = 22_050
    seed: int = 7


@dataclass(frozen=True)
class DemoClip:
    path: Path
    style: str
    culture: str
    seed: int
    extra: dict[str, float] = field(default_factory=dict)


def synthesize(style: Style, *, seconds: float, sample_rate: int, seed: int) -> np.ndarray:
    """One clip of ``style`` as mono float32 in [-1, 1]."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    out = np.zeros(n)
    tonic = style.tonic_hz * 2 ** (rng.uniform(-2, 2) / 12)
    beat = 60.0 / (style.tempo_bpm * rng.uniform(0.96, 1.04))
    note_len = beat / 2 if style.tempo_bpm > 100 else beat
    degree = 0
    start = 0.0
    while start < seconds:
        degree = int(np.clip(degree + rng.choice([-2, -1, 1, 1, 2]), -3, len(style.scale) + 3))
        octave, step = divmod(degree, len(style.scale))
        freq = tonic * 2 ** (octave + style.scale[step] / 12)
        length = note_len * rng.choice([1, 1, 2])
        i0, i1 = int(start * sample_rate), min(n, int((start + length) * sample_rate))
        tt = t[: i1 - i0]
        envelope = np.exp(-tt / style.decay_s) * np.minimum(1.0, tt / 0.01)
        note = sum(
            a * np.sin(2 * np.pi * freq * r * tt + rng.uniform(0, 2 * np.pi)) for r, a in style.partials
        )
        out[i0:i1] += 0.5 * envelope * note
        start += length
    if style.drone:
        wobble = 1 + 0.002 * np.sin(2 * np.pi * 0.3 * t)
        for ratio, amp in ((0.5, 0.25), (0.75, 0.18), (1.0, 0.15)):
            for k, a in ((1, 1.0), (2, 0.7), (3, 0.5), (4, 0.4), (5, 0.3)):
                out += amp * a * np.sin(2 * np.pi * tonic * ratio * k * wobble * t)
    out += _percussion(style, t, beat, sample_rate, rng)
    out += rng.normal(0, 0.002, n)  # a little room noise
    gain = rng.uniform(0.5, 0.9) / max(1e-9, np.max(np.abs(out)))
    return (out * gain).astype(np.float32)


def _percussion(style: Style, t: np.ndarray, beat: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    out = np.zeros_like(t)
    if style.percussion == "none":
        return out
    hits = np.arange(0.0, t[-1], beat / (2 if style.percussion == "tabla" else 1))
    for k, when in enumerate(hits):
        i0 = int(when * sr)
        tt = t[: min(len(t) - i0, int(0.3 * sr))]
        if style.percussion == "kick":
            hit = np.sin(2 * np.pi * (55 + 90 * np.exp(-tt / 0.03)) * tt) * np.exp(-tt / 0.08)
            if k % 2:
                hit = hit * 0.3 + rng.normal(0, 0.3, len(tt)) * np.exp(-tt / 0.03)  # snare-ish
        elif style.percussion == "frame":
            hit = rng.normal(0, 0.4, len(tt)) * np.exp(-tt / 0.05) + np.sin(2 * np.pi * 110 * tt) * np.exp(
                -tt / 0.1
            )
        else:  # tabla: pitched, ringing strokes
            pitch = 300 if k % 2 else 90
            hit = np.sin(2 * np.pi * pitch * tt * (1 + 0.1 * np.exp(-tt / 0.02))) * np.exp(-tt / 0.12)
        out[i0 : i0 + len(tt)] += 0.5 * hit
    return out


def generate_demo_audio(out_dir: Path, config: DemoAudioConfig | None = None) -> list[DemoClip]:
    """Write ``clips_per_style`` wav clips of each style under ``out_dir`` (deterministic)."""
    config = config or DemoAudioConfig()
    out_dir.mkdir(parents=True, exist_ok=True)
    clips = []
    for s_index, name in enumerate(config.styles):
        style = STYLES[name]
        for i in range(config.clips_per_style):
            seed = config.seed * 10_000 + s_index * 100 + i
            path = out_dir / f"{name}-{i:02d}.wav"
            audio = synthesize(style, seconds=config.seconds, sample_rate=config.sample_rate, seed=seed)
            sf.write(path, audio, config.sample_rate, subtype="PCM_16")
            clips.append(DemoClip(path=path, style=name, culture=style.culture, seed=seed))
    return clips


def register_demo_audio(engine: sa.Engine, clips: list[DemoClip]) -> list[int]:
    """Insert (or find) a track and an audio asset for each clip; returns the track ids in clip order."""
    ids = []
    with engine.begin() as conn:
        for clip in clips:
            data = clip.path.read_bytes()
            checksum = hashlib.sha256(data).hexdigest()
            key = f"demo-audio:{clip.path.stem}"
            track_id = conn.execute(sa.select(Track.id).where(Track.source_key == key)).scalar()
            if track_id is None:
                track_id = conn.execute(
                    sa.insert(Track)
                    .values(
                        source_key=key,
                        title=clip.path.stem,
                        title_key=clip.path.stem,
                        artist_name="recsys demo",
                        recording_key=key,
                        genres=[clip.style],
                        cultures=[clip.culture],
                    )
                    .returning(Track.id)
                ).scalar_one()
            uri = str(clip.path.resolve())
            asset = conn.execute(sa.select(AudioAsset.id).where(AudioAsset.uri == uri)).scalar()
            values = {"track_id": track_id, "checksum": checksum, "size_bytes": len(data), "format": "WAV"}
            if asset is None:
                conn.execute(sa.insert(AudioAsset).values(uri=uri, **values))
            else:
                conn.execute(sa.update(AudioAsset).where(AudioAsset.id == asset).values(**values))
            ids.append(int(track_id))
    return ids
