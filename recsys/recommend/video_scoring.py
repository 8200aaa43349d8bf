"""Music for a video, guided by words: a video file (and an optional prompt) → ranked catalog tracks.

``VideoScorer.score(path, prompt)`` decodes frames at the model's rate, encodes
them (CLIP or the weight-free descriptor, whichever the model was trained on),
encodes the prompt, fuses both into one query in the music space (see
:mod:`recsys.models.trimodal`) and ranks the ``music`` vectors of the catalog.
Every result carries the total cosine score and what the video and the text each
contributed (they sum to the total). A video without a usable soundtrack scores
normally: only frames are needed.

The trained model travels as one bundle file (:mod:`recsys.models.trimodal_bundle`):
the model config and weights plus the feature spec naming the encoders its inputs
came from.

The ``music`` vectors live in the vector store, as the named vector ``music`` of the
``tracks`` collection (one point per catalog track, with its catalog payload), written
by ``recsys embed music`` (``pipelines.embed.music``). Ranking is a search of that
vector; ``filters`` (``--filter culture=indian``) become the store's payload filter
(:func:`recsys.recommend.filters.track_filter`), so filtering happens inside the search, on indexed fields.

Which model made the vectors is recorded on each point: the payload field
``music_model`` holds the version (content hash) of the bundle that embedded its
music. It is written with the vector and travels with it through index rebuilds
(:func:`recsys.vectorstore.collections.model_field`), so it is true of the vector it
sits beside. Scores from two models' spaces must never mix: the scorer refuses to
start while any ``music`` vector lacks its model's stamp (:func:`check_music_vectors`),
and checks the stamp of every hit it returns (the store may change under a
long-lived scorer). The catalog's ``track_embedding`` rows record the same for the
embed job's change detection; the scorer needs only the store.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recsys.devices import DeviceLike, resolve_device
from recsys.embedders.text import make_text_encoder
from recsys.embedders.video_frames import make_frame_encoder
from recsys.errors import ConfigError, NotFoundError, VideoError
from recsys.models.trimodal_bundle import Bundle, load_bundle
from recsys.recommend.filters import track_filter
from recsys.vectorstore.base import Filter, Match, VectorStore
from recsys.vectorstore.collections import TRACKS, model_field

# --------------------------------------------------------------------------- the music vectors

VECTOR = "music"
MODEL_FIELD = model_field(VECTOR)


def check_music_vectors(store: VectorStore, bundle: Bundle) -> int:
    """How many ``music`` vectors ``tracks`` holds; raises unless there are some, all from ``bundle``'s model."""
    where = f"vector store {store.location}"
    spec = store.spec(TRACKS) if store.has_collection(TRACKS) else None
    count = store.count(TRACKS, vector=VECTOR) if spec is not None and VECTOR in spec.sizes else 0
    if spec is None or count == 0:
        raise NotFoundError(f"{where} holds no {VECTOR!r} vectors in {TRACKS!r}: run `recsys embed music`")
    size, dim = spec.sizes[VECTOR], bundle.model.config.embed_dim
    if size != dim:
        raise ConfigError(
            f"{where}: the {VECTOR!r} vectors have {size} dimensions, model {bundle.version} makes {dim}: "
            "run `recsys embed music --resize`"
        )
    stale = store.count(TRACKS, filter=Filter(must_not=(Match(MODEL_FIELD, bundle.version),)), vector=VECTOR)
    if stale:
        raise ConfigError(
            f"{where}: {stale} of {count} {VECTOR!r} vectors were not embedded by model {bundle.version}: "
            "run `recsys embed music` again"
        )
    return count


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
    frame_encoder: str = ""  # the frame encoder's version, precision included


class VideoScorer:
    """Holds the trained model, its encoders and the vector store; ``score`` is one call per video."""

    def __init__(
        self,
        bundle: Bundle,
        store: VectorStore,
        *,
        device: DeviceLike = "auto",
        frame_encoder: Any = None,
        text_encoder: Any = None,
        frame_precision: str = "float32",
    ) -> None:
        check_music_vectors(store, bundle)
        self.bundle, self.store = bundle, store
        self.device = resolve_device(device)
        spec = bundle.spec
        self.frame_encoder = frame_encoder or make_frame_encoder(
            spec.frame_encoder, spec.clip_model, spec.clip_revision, self.device, frame_precision
        )
        self._text_encoder = text_encoder
        self._make_text = lambda: make_text_encoder(spec.text_encoder, spec.text_model, self.device)
        self.model = bundle.model.to(self.device).eval()

    @property
    def text_encoder(self) -> Any:
        if self._text_encoder is None:
            self._text_encoder = self._make_text()
        return self._text_encoder

    def query(
        self, frames: np.ndarray | None, prompt: str | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frame features (T, D) and/or a prompt → (query, video part, text part), each (E,)."""
        import torch  # deferred: torch (ml extra)

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
        self, parts: tuple[np.ndarray, np.ndarray, np.ndarray], n: int, flt: Filter | None = None
    ) -> list[ScoredTrack]:
        """The ``n`` tracks passing ``flt`` whose ``music`` vector is nearest the query, each score split in two."""
        vector, video_part, text_part = parts
        if n <= 0:
            return []
        hits = self.store.search(TRACKS, vector, using=VECTOR, filter=flt, limit=n, with_vectors=True)
        out = []
        for hit in hits:
            stamp = hit.payload.get(MODEL_FIELD)
            if stamp != self.bundle.version:
                raise ConfigError(
                    f"track {hit.id}: its {VECTOR!r} vector was embedded by model {stamp or 'unknown'}, "
                    f"the scorer has {self.bundle.version}: run `recsys embed music` again"
                )
            music = np.asarray(hit.vectors[VECTOR], np.float32)  # unit length (cosine)
            out.append(
                ScoredTrack(
                    track_id=int(hit.payload.get("track_id", hit.id)),
                    score=float(hit.score),
                    video=float(video_part @ music),
                    text=float(text_part @ music),
                    payload=hit.payload,
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
        # deferred: av
        from recsys.media.video import VideoLimits, read_frames, read_soundtrack

        spec = self.bundle.spec
        flt = track_filter(filters)  # a bad filter fails before any decoding
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
        tracks = self.rank(parts, n, flt)
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
            frame_encoder=str(self.frame_encoder.version),
        )


def score_clip(
    scorer: VideoScorer,
    path: Path,
    *,
    name: str,
    max_duration_s: float,
    prompt: str | None = None,
    n: int = 20,
    filters: Mapping[str, str] | None = None,
) -> VideoScore:
    """Score a clip someone handed in (an upload, a file they picked) once it has shown itself a
    decodable video of at most ``max_duration_s`` seconds (its name proves nothing).

    A ``VideoError`` names the clip by ``name`` (what the person gave), never by the scratch
    copy at ``path``."""
    # deferred: av
    from recsys.media.video import check_video

    try:
        check_video(path, max_duration_s=max_duration_s)
        return scorer.score(path, prompt or None, n, filters)
    except VideoError as exc:
        raise VideoError(name, exc.reason.replace(str(path), name)) from None


def score_video(
    path: str | Path,
    *,
    bundle_path: Path,
    store: VectorStore,
    prompt: str | None = None,
    n: int = 20,
    filters: Mapping[str, str] | None = None,
    device: str = "auto",
    frame_precision: str = "float32",
) -> VideoScore:
    """One-shot scoring against the ``music`` vectors of ``store`` (the UI keeps a ``VideoScorer``
    instead, to load the model once)."""
    scorer = VideoScorer(load_bundle(bundle_path), store, device=device, frame_precision=frame_precision)
    return scorer.score(path, prompt, n, filters)
