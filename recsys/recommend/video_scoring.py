"""Music for a video, guided by words: a video file (and an optional prompt) → ranked catalog tracks.

``VideoScorer.score(path, prompt)`` decodes frames at the model's rate, encodes
them (CLIP or the weight-free descriptor, whichever the model was trained on),
encodes the prompt, fuses both into one query in the music space (see
:mod:`recsys.models.trimodal`) and ranks the ``music`` vectors of the catalog.
Every result carries the total cosine score and what the video and the text each
contributed (they sum to the total). A video without a usable soundtrack scores
normally: only frames are needed.

The trained model travels as one bundle file (:func:`save_bundle`/:func:`load_bundle`):
the model config and weights plus the :class:`FeatureSpec` naming the encoders its
inputs came from. The ``music`` vectors live in a :class:`MusicIndex`: exact cosine
search over vectors held in memory and persisted as Parquet, behind ``search``.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recsys.errors import ConfigError, NotFoundError

BUNDLE_FORMAT = 1


@dataclass(frozen=True)
class FeatureSpec:
    """Which encoders made a model's inputs; the scorer rebuilds the same ones."""

    frame_encoder: str = "descriptor"  # descriptor or clip
    clip_model: str | None = None  # an id or a directory, for frame_encoder="clip"
    clip_revision: str | None = None
    fps: float = 1.0
    text_encoder: str = "minilm"  # minilm or clip
    text_model: str | None = None
    music_sample_rate: int = 16_000
    max_video_s: float = 64.0

    def key(self) -> str:
        return hashlib.sha1(repr(sorted(asdict(self).items())).encode()).hexdigest()[:12]


def save_bundle(path: Path, model: Any, spec: FeatureSpec, metrics: dict[str, Any] | None = None) -> str:
    """Write the model (config and weights) with its feature spec; returns the version (content hash)."""
    import torch

    payload = {
        "format": BUNDLE_FORMAT,
        "config": asdict(model.config),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "spec": asdict(spec),
        "metrics": metrics or {},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    version = hashlib.sha256(data).hexdigest()[:16]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(path)
    return version


@dataclass
class Bundle:
    model: Any  # TrimodalModel, eval mode, on CPU
    spec: FeatureSpec
    version: str
    metrics: dict[str, Any] = field(default_factory=dict)


def load_bundle(path: Path) -> Bundle:
    import torch

    from recsys.models.trimodal import TrimodalConfig, TrimodalModel

    if not path.is_file():
        raise NotFoundError(f"no trained trimodal model at {path} (run `recsys train trimodal` first)")
    data = path.read_bytes()
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, ValueError) as exc:
        raise ConfigError(f"{path}: not a trimodal model bundle ({exc})") from None
    if payload.get("format") != BUNDLE_FORMAT:
        raise ConfigError(f"{path}: bundle format {payload.get('format')} is not {BUNDLE_FORMAT}")
    model = TrimodalModel(TrimodalConfig(**payload["config"]))
    model.load_state_dict(payload["state_dict"])
    return Bundle(
        model.eval(),
        FeatureSpec(**payload["spec"]),
        hashlib.sha256(data).hexdigest()[:16],
        payload["metrics"],
    )


# --------------------------------------------------------------------------- the music index


@dataclass
class MusicIndex:
    """``music`` vectors (N, E) unit rows, their track ids and payloads (title, artist, cultures, genres)."""

    track_ids: np.ndarray
    vectors: np.ndarray
    payloads: list[dict[str, Any]]
    model_version: str = ""

    @classmethod
    def empty(cls, dim: int, model_version: str = "") -> MusicIndex:
        return cls(np.zeros(0, np.int64), np.zeros((0, dim), np.float32), [], model_version)

    def __len__(self) -> int:
        return len(self.track_ids)

    def upsert(
        self, track_ids: Sequence[int], vectors: np.ndarray, payloads: Sequence[dict[str, Any]]
    ) -> None:
        vectors = np.asarray(vectors, np.float32)
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        position = {int(t): i for i, t in enumerate(self.track_ids)}
        new_ids, new_vecs, new_payloads = list(self.track_ids), list(self.vectors), list(self.payloads)
        for tid, vec, pay in zip(track_ids, vectors, payloads, strict=True):
            if int(tid) in position:
                new_vecs[position[int(tid)]], new_payloads[position[int(tid)]] = vec, dict(pay)
            else:
                position[int(tid)] = len(new_ids)
                new_ids.append(int(tid))
                new_vecs.append(vec)
                new_payloads.append(dict(pay))
        dim = self.vectors.shape[1] if self.vectors.ndim == 2 else vectors.shape[1]
        self.track_ids = np.asarray(new_ids, np.int64)
        self.vectors = np.stack(new_vecs).astype(np.float32) if new_vecs else np.zeros((0, dim), np.float32)
        self.payloads = new_payloads

    def search(
        self, query: np.ndarray, n: int = 20, filters: Mapping[str, str] | None = None
    ) -> list[tuple[int, float]]:
        """Row indexes and cosine scores of the ``n`` best rows that pass ``filters`` (exact search)."""
        if len(self) == 0:
            return []
        allowed = np.ones(len(self), dtype=bool)
        for key, value in (filters or {}).items():
            allowed &= np.array(
                [_matches(p.get(key, p.get(key + "s")), value) for p in self.payloads], dtype=bool
            )
        scores = self.vectors @ np.asarray(query, np.float32)  # (N,)
        scores = np.where(allowed, scores, -np.inf)
        top = np.argsort(-scores, kind="stable")[: max(0, n)]
        return [(int(i), float(scores[i])) for i in top if np.isfinite(scores[i])]

    def save(self, path: Path) -> None:
        import polars as pl

        frame = pl.DataFrame(
            {
                "track_id": self.track_ids,
                "vector": [list(map(float, v)) for v in self.vectors],
                "payload": [_json(p) for p in self.payloads],
                "model_version": [self.model_version] * len(self),
            },
            schema={
                "track_id": pl.Int64,
                "vector": pl.List(pl.Float32),
                "payload": pl.String,
                "model_version": pl.String,
            },
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        frame.write_parquet(partial)
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> MusicIndex:
        import json

        import polars as pl

        if not path.is_file():
            raise NotFoundError(f"no music vectors at {path} (run `recsys embed music` first)")
        frame = pl.read_parquet(path)
        if frame.height == 0:
            raise NotFoundError(f"the music index at {path} is empty (run `recsys embed music`)")
        vectors = np.asarray(frame["vector"].to_list(), dtype=np.float32)
        return cls(
            frame["track_id"].to_numpy().astype(np.int64),
            vectors,
            [json.loads(p) for p in frame["payload"].to_list()],
            str(frame["model_version"][0]),
        )


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, default=str)


def _matches(field_value: Any, wanted: str) -> bool:
    if field_value is None:
        return False
    if isinstance(field_value, list | tuple):
        return any(str(v).casefold() == wanted.casefold() for v in field_value)
    return str(field_value).casefold() == wanted.casefold()


# --------------------------------------------------------------------------- scoring


@dataclass
class ScoredTrack:
    track_id: int
    score: float  # cosine of the fused query and the track's music vector
    video: float  # the video's part of the score
    text: float  # the text's part (0 without a prompt); video + text = score
    payload: dict[str, Any]


@dataclass
class VideoScore:
    tracks: list[ScoredTrack]
    frames: int
    seconds: float  # of video read
    soundtrack: str  # "usable", or why not (scoring never needs it)
    timings: dict[str, float]
    truncated: bool = False


class VideoScorer:
    """Holds the trained model, its encoders and the music index; ``score`` is one call per video."""

    def __init__(
        self,
        bundle: Bundle,
        index: MusicIndex,
        *,
        device: str = "auto",
        frame_encoder: Any = None,
        text_encoder: Any = None,
    ) -> None:
        from recsys.embedders.text import make_text_encoder
        from recsys.embedders.video_frames import make_frame_encoder, resolve_device

        self.bundle, self.index = bundle, index
        self.device = resolve_device(device)
        spec = bundle.spec
        self.frame_encoder = frame_encoder or make_frame_encoder(
            spec.frame_encoder, spec.clip_model, spec.clip_revision, self.device
        )
        self._text_encoder = text_encoder
        self._make_text = lambda: make_text_encoder(spec.text_encoder, spec.text_model, self.device)
        self.model = bundle.model.to(self.device).eval()
        if index.model_version and index.model_version != bundle.version:
            raise ConfigError(
                f"the music index was embedded with model {index.model_version}, the scorer has {bundle.version}: "
                "run `recsys embed music` again"
            )

    @property
    def text_encoder(self) -> Any:
        if self._text_encoder is None:
            self._text_encoder = self._make_text()
        return self._text_encoder

    def query(
        self, frames: np.ndarray | None, prompt: str | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frame features (T, D) and/or a prompt → (query, video part, text part), each (E,)."""
        import torch

        video = text = video_mask = text_mask = None
        if frames is not None:
            video = torch.from_numpy(frames[None]).float().to(self.device)  # (1, T, D)
        if prompt:
            states, mask = self.text_encoder.encode([prompt])
            text = torch.from_numpy(states).to(self.device)  # (1, L, D)
            text_mask = torch.from_numpy(mask).to(self.device)
        with torch.inference_mode():
            q = self.model.query(video, video_mask, text, text_mask)
        return tuple(x[0].float().cpu().numpy() for x in (q.vector, q.video, q.text))

    def rank(
        self, parts: tuple[np.ndarray, np.ndarray, np.ndarray], n: int, filters: Mapping[str, str] | None
    ) -> list[ScoredTrack]:
        vector, video_part, text_part = parts
        out = []
        for row, score in self.index.search(vector, n, filters):
            music = self.index.vectors[row]
            out.append(
                ScoredTrack(
                    track_id=int(self.index.track_ids[row]),
                    score=score,
                    video=float(video_part @ music),
                    text=float(text_part @ music),
                    payload=self.index.payloads[row],
                )
            )
        return out

    def score(
        self,
        path: str | Path,
        prompt: str | None = None,
        n: int = 20,
        filters: Mapping[str, str] | None = None,
    ) -> VideoScore:
        from recsys.media.video import VideoLimits, read_frames, read_soundtrack

        spec = self.bundle.spec
        clock = time.perf_counter()
        limits = VideoLimits(max_duration_s=spec.max_video_s)
        frames = read_frames(path, fps=spec.fps, size=self.frame_encoder.input_size, limits=limits)
        timings = {"decode_s": time.perf_counter() - clock}
        clock = time.perf_counter()
        features = self.frame_encoder.encode(frames.frames)  # (T, D)
        timings["frame_encoding_s"] = time.perf_counter() - clock
        clock = time.perf_counter()
        parts = self.query(features, prompt)
        timings["fusion_s"] = time.perf_counter() - clock
        clock = time.perf_counter()
        tracks = self.rank(parts, n, filters)
        timings["search_s"] = time.perf_counter() - clock
        sound = (
            read_soundtrack(path, sample_rate=8_000, max_duration_s=1.0) if frames.info.has_audio else None
        )
        soundtrack = "no audio stream" if sound is None else ("usable" if sound.usable else str(sound.error))
        return VideoScore(
            tracks=tracks,
            frames=len(frames.frames),
            seconds=float(frames.times[-1]) if len(frames.times) else 0.0,
            soundtrack=soundtrack,
            timings=timings,
            truncated=frames.truncated,
        )


def score_video(
    path: str | Path,
    *,
    bundle_path: Path,
    index_path: Path,
    prompt: str | None = None,
    n: int = 20,
    filters: Mapping[str, str] | None = None,
    device: str = "auto",
) -> VideoScore:
    """One-shot scoring (the UI keeps a ``VideoScorer`` instead, to load the model once)."""
    scorer = VideoScorer(load_bundle(bundle_path), MusicIndex.load(index_path), device=device)
    return scorer.score(path, prompt, n, filters)


def model_paths(data_dir: Path) -> tuple[Path, Path]:
    """Where the trained model bundle and the music index live under the data dir."""
    root = data_dir / "trimodal"
    return root / "model.pt", root / "music_index.parquet"
