"""``recsys embed music``: the trimodal model's ``music`` vector for every catalog track with audio, incrementally.

For each track with an ``audio_asset``, the music frames of its audio go through the
model's music tower; the vector lands in the music index with the track's payload
(title, artist, cultures, genres) and a ``track_embedding`` row records which model
version embedded which audio (by checksum). A re-run embeds only tracks whose audio
changed, that are new, or whose vector came from another model version; an
unreadable audio file is reported with its reason and the others are embedded.

Also here: :func:`register_synthetic_music`, which puts the synthetic set's music into
the catalog as tracks with audio assets (what an audio-folder ingest does for real
music), so the main job can index it.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy import Engine

from recsys.catalog.schema import Artist, AudioAsset, ModelVersion, Track, TrackEmbedding
from recsys.errors import RecsysError
from recsys.recommend.video_scoring import Bundle, MusicIndex

VECTOR_NAME = "music"


@dataclass
class EmbedReport:
    embedded: int = 0
    unchanged: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    model_version: str = ""

    def summary(self) -> str:
        return (
            f"music vectors: {self.embedded} embedded, {self.unchanged} unchanged, {len(self.failed)} failed "
            f"(model {self.model_version}) in {self.seconds:.1f} s"
        )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_version_id(engine: Engine, bundle: Bundle, path: Path) -> int:
    with engine.begin() as conn:
        found = conn.execute(
            sa.select(ModelVersion.id).where(
                ModelVersion.kind == "trimodal", ModelVersion.version == bundle.version
            )
        ).scalar()
        if found is not None:
            return int(found)
        return int(
            conn.execute(
                sa.insert(ModelVersion)
                .values(
                    kind="trimodal",
                    version=bundle.version,
                    path=str(path),
                    params={"spec": bundle.spec.__dict__},
                    metrics=bundle.metrics,
                )
                .returning(ModelVersion.id)
            ).scalar_one()
        )


def embed_music(
    engine: Engine, bundle: Bundle, bundle_path: Path, index_path: Path, batch: int = 32
) -> EmbedReport:
    """Embed what changed and save the index; see the module docstring."""
    import torch

    from pipelines.train_trimodal import pad
    from recsys.embedders.music_frames import MusicFrameEncoder
    from recsys.media.video import read_soundtrack

    clock = time.perf_counter()
    report = EmbedReport(model_version=bundle.version)
    version_id = model_version_id(engine, bundle, bundle_path)
    try:
        index = MusicIndex.load(index_path)
        if index.model_version != bundle.version:
            index = MusicIndex.empty(bundle.model.config.embed_dim, bundle.version)
    except RecsysError:
        index = MusicIndex.empty(bundle.model.config.embed_dim, bundle.version)
    in_index = {int(t) for t in index.track_ids}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                Track.id,
                Track.title,
                Track.artist_name,
                Track.cultures,
                Track.genres,
                AudioAsset.uri,
                AudioAsset.checksum,
                TrackEmbedding.model_version_id,
                TrackEmbedding.input_checksum,
            )
            .join(AudioAsset, AudioAsset.track_id == Track.id)
            .outerjoin(
                TrackEmbedding,
                (TrackEmbedding.track_id == Track.id) & (TrackEmbedding.vector_name == VECTOR_NAME),
            )
            .order_by(Track.id, AudioAsset.id)
        ).all()
    todo: dict[int, Any] = {}
    for row in rows:
        if row.id in todo:
            continue
        if row.model_version_id == version_id and row.input_checksum == row.checksum and row.id in in_index:
            report.unchanged += 1
            continue
        todo[row.id] = row
    encoder = MusicFrameEncoder(sample_rate=bundle.spec.music_sample_rate)
    model = bundle.model.eval()
    pending: list[tuple[Any, np.ndarray]] = []

    def flush() -> None:
        if not pending:
            return
        music, mask = pad([f for _, f in pending], 64)
        with torch.inference_mode():
            vectors = model.embed_music(torch.from_numpy(music), torch.from_numpy(mask)).numpy()
        index.upsert(
            [r.id for r, _ in pending],
            vectors,
            [
                {
                    "title": r.title,
                    "artist": r.artist_name,
                    "cultures": r.cultures or [],
                    "genres": r.genres or [],
                }
                for r, _ in pending
            ],
        )
        _record(engine, [(r.id, r.checksum) for r, _ in pending], version_id)
        report.embedded += len(pending)
        pending.clear()

    for row in todo.values():
        path = Path(row.uri.removeprefix("file://"))
        sound = (
            read_soundtrack(path, sample_rate=encoder.sample_rate, max_duration_s=encoder.max_seconds)
            if path.is_file()
            else None
        )
        if sound is None or sound.samples is None:
            report.failed.append(
                f"track {row.id} ({path}): " + ("file is missing" if sound is None else str(sound.error))
            )
            continue
        pending.append((row, encoder.encode(sound.samples)))
        if len(pending) >= batch:
            flush()
            index.save(index_path)
    flush()
    index.model_version = bundle.version
    index.save(index_path)
    report.seconds = time.perf_counter() - clock
    return report


def _record(engine: Engine, items: list[tuple[int, str]], version_id: int) -> None:
    ids = [tid for tid, _ in items]
    with engine.begin() as conn:
        conn.execute(
            sa.delete(TrackEmbedding).where(
                TrackEmbedding.track_id.in_(ids), TrackEmbedding.vector_name == VECTOR_NAME
            )
        )
        conn.execute(
            sa.insert(TrackEmbedding),
            [
                {
                    "track_id": t,
                    "vector_name": VECTOR_NAME,
                    "model_version_id": version_id,
                    "input_checksum": c,
                }
                for t, c in items
            ],
        )


def register_synthetic_music(engine: Engine, folder: Path, rows: list[dict[str, Any]]) -> int:
    """Each synthetic clip's music as a catalog track (``synthetic:<clip>``) with its WAV as the audio asset."""
    import soundfile as sf

    added = 0
    with engine.begin() as conn:
        artist_id = conn.execute(sa.select(Artist.id).where(Artist.source_key == "synthetic:recsys")).scalar()
        if artist_id is None:
            artist_id = conn.execute(
                sa.insert(Artist)
                .values(source_key="synthetic:recsys", name="recsys synthetic", name_key="recsys synthetic")
                .returning(Artist.id)
            ).scalar_one()
        known = set(
            conn.execute(sa.select(Track.source_key).where(Track.source_key.like("synthetic:%"))).scalars()
        )
        for row in rows:
            key = f"synthetic:{row['clip_id']}"
            if key in known:
                continue
            tags = row["tags"]
            title = (
                f"{row['clip_id']} ({tags['mood']} {tags['culture']} {tags['instrument']}, {tags['tempo']})"
            )
            wav = (folder / row["audio"]).resolve()
            info = sf.info(str(wav))
            track_id = conn.execute(
                sa.insert(Track)
                .values(
                    source_key=key,
                    title=title,
                    title_key=title.lower(),
                    artist_id=artist_id,
                    artist_name="recsys synthetic",
                    duration_ms=int(info.duration * 1000),
                    recording_key=key,
                    genres=[tags["instrument"], tags["mood"]],
                    cultures=[tags["culture"]],
                )
                .returning(Track.id)
            ).scalar_one()
            conn.execute(
                sa.insert(AudioAsset).values(
                    track_id=track_id,
                    uri=str(wav),
                    checksum=sha256_file(wav),
                    size_bytes=wav.stat().st_size,
                    format="wav",
                    sample_rate=info.samplerate,
                    channels=info.channels,
                    duration_s=float(info.duration),
                    tags=tags,
                )
            )
            added += 1
    return added
