"""Train the trimodal model on (video, its own soundtrack, description) triples from a folder of videos.

Steps: find the videos; take each one's tags from ``manifest.jsonl`` or a sidecar
``<name>.json`` (the synthetic set writes both kinds of row) or measure them on the
soundtrack; take its description from ``--descriptions`` or synthesise one from the
tags by analogy (:mod:`pipelines.train.descriptions`); compute the feature sequences once
(frames → frame encoder, soundtrack → music frames, description → text states) and
cache them per file; then train the small Transformers on the cached tensors with
Lightning. A video whose soundtrack is missing or broken cannot be a training triple:
it is skipped with its reason (scoring such a video works). Clips are split into
train and test by a hash of their name (stable across runs); the test clips give the
retrieval metrics (:mod:`recsys.evaluation.retrieval`). The feature arrays and the
training loop live beside the model (:mod:`recsys.models.trimodal_batches`,
:mod:`recsys.models.trimodal_training`). On several devices or nodes only global rank 0
evaluates and writes the bundle and the features; the other ranks of a ``ddp`` run (the
same command, started again by Lightning) train their share and return None.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.train.descriptions import AnalogyDescriber, Describer, tags_from_audio
from recsys.errors import InputError, RecsysError, VideoError
from recsys.evaluation.retrieval import retrieval_metrics, twin_metrics
from recsys.models.distributed import is_global_zero
from recsys.models.trimodal_batches import Features, pad, save_features
from recsys.models.trimodal_bundle import FeatureSpec, save_bundle
from recsys.models.trimodal_training import TrainSettings, default_config, train_model

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"}


def find_videos(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InputError(f"{folder}: not a directory of videos")
    videos = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and ".partial" not in p.name
    )
    if not videos:
        raise InputError(f"{folder}: no video files ({', '.join(sorted(VIDEO_SUFFIXES))})")
    return videos


def read_manifest(folder: Path) -> dict[str, dict[str, Any]]:
    """Rows of ``manifest.jsonl`` by video file name (tags, twins)."""
    path = folder / "manifest.jsonl"
    rows: dict[str, dict[str, Any]] = {}
    if path.is_file():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rows[str(row["video"])] = row
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise InputError(f"{path}: line {number}: not a manifest row ({exc})") from None
    return rows


def read_descriptions(path: Path) -> dict[str, str]:
    """Descriptions by video file name (or stem): a JSON object, JSON lines, or a CSV with video,description."""
    if not path.is_file():
        raise InputError(f"{path}: no such descriptions file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".csv":
            rows = list(csv.DictReader(text.splitlines()))
            return {r["video"]: r["description"] for r in rows if r.get("video") and r.get("description")}
        if path.suffix.lower() == ".jsonl":
            out = {}
            for line in text.splitlines():
                if line.strip():
                    row = json.loads(line)
                    out[str(row["video"])] = str(row["description"])
            return out
        data = json.loads(text)
    except (json.JSONDecodeError, KeyError, TypeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read descriptions ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object of video name → description")
    return {str(k): str(v) for k, v in data.items()}


def _file_key(path: Path, spec_key: str) -> str:
    stat = path.stat()
    return hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{spec_key}".encode()).hexdigest()


@dataclass
class Encoders:
    frames: Any
    music: Any
    text: Any


def make_encoders(spec: FeatureSpec, device: str = "auto") -> Encoders:
    from recsys.embedders.music_frames import MusicFrameEncoder  # deferred: librosa (audio extra)
    from recsys.embedders.text import make_text_encoder  # deferred: transformers
    from recsys.embedders.video_frames import make_frame_encoder  # deferred: transformers, PyAV

    return Encoders(
        make_frame_encoder(spec.frame_encoder, spec.clip_model, spec.clip_revision, device),
        MusicFrameEncoder(sample_rate=spec.music_sample_rate),
        make_text_encoder(spec.text_encoder, spec.text_model, device),
    )


def music_features(path: Path, encoders: Encoders, spec: FeatureSpec, cache: Path | None) -> np.ndarray:
    """(T, D) music frames of an audio file or a video's soundtrack (cached); raises on unusable audio."""
    from recsys.media.video import read_soundtrack  # deferred: PyAV (video extra)

    key = _file_key(path, f"music|{encoders.music.version}")
    cached = cache / f"{key}.npy" if cache else None
    if cached is not None and cached.is_file():
        return np.load(cached)
    sound = read_soundtrack(
        path, sample_rate=spec.music_sample_rate, max_duration_s=encoders.music.max_seconds
    )
    if sound.samples is None:
        raise VideoError(path, f"no usable soundtrack: {sound.error}")
    out = encoders.music.encode(sound.samples)
    if cached is not None:
        np.save(cached, out)
    return out


def clip_features(path: Path, encoders: Encoders, spec: FeatureSpec, cache: Path | None) -> np.ndarray:
    """(T, D) frame features of a video (cached)."""
    from recsys.media.video import VideoLimits, read_frames  # deferred: PyAV (video extra)

    key = _file_key(path, f"video|{encoders.frames.version}|{spec.fps}|{spec.max_video_s}")
    cached = cache / f"{key}.npy" if cache else None
    if cached is not None and cached.is_file():
        return np.load(cached)
    frames = read_frames(
        path,
        fps=spec.fps,
        size=encoders.frames.input_size,
        limits=VideoLimits(max_duration_s=spec.max_video_s),
    )
    out = encoders.frames.encode(frames.frames)
    if cached is not None:
        np.save(cached, out)
    return out


@dataclass
class ExtractReport:
    features: Features
    skipped: list[str]  # "file: reason"
    seconds: float


def extract(
    folder: Path,
    spec: FeatureSpec,
    encoders: Encoders,
    *,
    cache: Path | None = None,
    descriptions: dict[str, str] | None = None,
    describer: Describer | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ExtractReport:
    """Feature sequences of every usable (video, soundtrack, description) triple in ``folder``."""
    clock = time.perf_counter()
    describer = describer or AnalogyDescriber()
    manifest = read_manifest(folder)
    descriptions = descriptions or {}
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    ids, texts, tags_list, videos, musics, twins, skipped = [], [], [], [], [], [], []
    paths = find_videos(folder)
    for number, path in enumerate(paths):
        if progress:
            progress(number, len(paths))
        row = manifest.get(path.name, {})
        try:
            music = music_features(path, encoders, spec, cache)
            video = clip_features(path, encoders, spec, cache)
            tags = row.get("tags") or _sidecar_tags(path) or _measured_tags(path, spec)
            twin_music = [
                music_features(folder / name, encoders, spec, cache) for name in row.get("twins", [])
            ]
        except RecsysError as exc:
            skipped.append(str(exc))
            continue
        description = (
            descriptions.get(path.name) or descriptions.get(path.stem) or describer.describe(tags, path.stem)
        )
        ids.append(path.stem)
        texts.append(description)
        tags_list.append(tags)
        videos.append(video)
        musics.append(music)
        twins.append(twin_music)
    if not ids:
        raise InputError(f"{folder}: no usable (video, soundtrack) pair; " + "; ".join(skipped[:3]))
    states, text_mask = encoders.text.encode(texts)
    video, video_mask = pad(videos, 64)
    music, music_mask = pad(musics, 64)
    features = Features(ids, texts, tags_list, video, video_mask, music, music_mask, states, text_mask, twins)
    return ExtractReport(features, skipped, time.perf_counter() - clock)


def _sidecar_tags(path: Path) -> dict[str, str] | None:
    side = path.with_suffix(".json")
    if not side.is_file():
        return None
    try:
        data = json.loads(side.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{side}: not JSON ({exc})") from None
    tags = data.get("tags", data) if isinstance(data, dict) else None
    return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else None


def _measured_tags(path: Path, spec: FeatureSpec) -> dict[str, str]:
    from recsys.media.video import read_soundtrack  # deferred: PyAV (video extra)

    sound = read_soundtrack(path, sample_rate=spec.music_sample_rate, max_duration_s=30.0)
    return tags_from_audio(sound.samples, sound.sample_rate) if sound.samples is not None else {}


def split(ids: Sequence[str], test_fraction: float = 0.2) -> tuple[list[int], list[int]]:
    """Train and test rows by a hash of the clip name: stable across runs and folder orders."""
    train: list[int] = []
    test: list[int] = []
    for i, name in enumerate(ids):
        (test if (zlib.crc32(name.encode()) % 1000) < test_fraction * 1000 else train).append(i)
    return train, test


# --------------------------------------------------------------------------- the job


@dataclass
class TrainReport:
    model_path: Path
    version: str
    clips: int
    train: int
    test: int
    skipped: list[str]
    seconds: dict[str, float]
    metrics: dict[str, Any]
    training: dict[str, Any]  # strategy, devices, num_nodes, world_size

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": str(self.model_path),
            "version": self.version,
            "clips": self.clips,
            "train": self.train,
            "test": self.test,
            "skipped": self.skipped,
            "seconds": self.seconds,
            "metrics": self.metrics,
            "training": self.training,
        }


def run_training(
    videos: Path,
    model_path: Path,
    *,
    spec: FeatureSpec | None = None,
    descriptions_file: Path | None = None,
    describer: Describer | None = None,
    settings: TrainSettings | None = None,
    config_overrides: dict[str, Any] | None = None,
    cache: Path | None = None,
    candidates: int = 100,
    progress: Callable[[int, int], None] | None = None,
) -> TrainReport | None:
    """Extract (cached), split, train, evaluate on the test clips, save the bundle and the features.

    None on a rank other than global rank 0 of a multi-process run (it writes nothing).
    """
    from pipelines.train.workers import WorkerLogging  # deferred: lightning

    spec = spec or FeatureSpec()
    settings = settings or TrainSettings()
    encoders = make_encoders(spec, settings.device)
    descriptions = read_descriptions(descriptions_file) if descriptions_file else None
    extracted = extract(
        videos, spec, encoders, cache=cache, descriptions=descriptions, describer=describer, progress=progress
    )
    features = extracted.features
    train_rows, test_rows = split(features.ids)
    if len(train_rows) < 8:
        raise InputError(f"{videos}: {len(train_rows)} training clips are too few (need at least 8)")
    train, test = features.subset(train_rows), features.subset(test_rows)
    config = default_config(features, **(config_overrides or {}))
    clock, cpu = time.perf_counter(), time.process_time()
    model = train_model(train, config, settings, callbacks=[WorkerLogging()])
    train_s, train_cpu_s = time.perf_counter() - clock, time.process_time() - cpu
    if not is_global_zero():
        return None
    metrics: dict[str, Any] = {}
    if len(test) >= 2:
        metrics["retrieval"] = retrieval_metrics(model, test, min(candidates, len(test)))
        twins = twin_metrics(model, test)
        if twins is not None:
            metrics["twins"] = twins
    version = save_bundle(model_path, model, spec, metrics, settings.distribution())
    save_features(model_path.with_name("features.npz"), train, test)
    return TrainReport(
        model_path,
        version,
        len(features),
        len(train),
        len(test),
        extracted.skipped,
        {
            "extract": round(extracted.seconds, 2),
            "train": round(train_s, 2),
            "train_cpu": round(train_cpu_s, 2),
        },
        metrics,
        settings.distribution(),
    )
