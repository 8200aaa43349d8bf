"""``recsys embed music``: the trimodal model's ``music`` vector for every catalog track with audio, incrementally.

For each track with an ``audio_asset`` (its first one), the music frames of its
audio go through the model's music tower and the vector is written to the vector
store: named vector ``music`` of the ``tracks`` collection, on the track's point
(point id = track id), beside the vectors other jobs wrote, with the track's catalog
payload and ``music_model``, the bundle's version (the stamp the scorer checks; see
:mod:`recsys.recommend.video_scoring`).

A track is unchanged, and skipped, when its ``track_embedding`` row for ``music``
names this model version and its audio's current checksum *and* its point in the
store holds a ``music`` vector stamped with this model. So a re-run embeds nothing;
a new model version re-embeds every track; new tracks, changed audio and vectors
missing from the store (a new store, a vector dropped by a rebuild) are embedded.

The catalog is read a page of ``PAGE_ROWS`` tracks at a time, in track order, and the
pending tracks of each page are embedded before the next page is read, so memory does
not grow with the catalog. Work goes batch by batch: decode and embed, in this process
by default or on a Ray cluster (each page of pending tracks one Ray dataset, see
:mod:`pipelines.embed.executors`; the actors load the bundle from its file); every half
minute or so the finished batches' vectors go to the store in one write and then their
``track_embedding`` rows are committed (:mod:`pipelines.embed.writer`). A run that
fails writes its finished batches before it ends; a run killed outright loses the
vectors not yet written, which have no rows either, so the next run embeds them again
onto the same points. An unreadable audio file
is reported with its reason, stored as an ``ingest_reject`` row (source
``embed-music``), and the other tracks are embedded; it is tried again on the next
run. Each run is recorded in ``pipeline_run``.

The collection is created with ``music`` at the model's size. If it exists with
another ``music`` size: while it holds no ``music`` vectors it is resized in place
(a new version with the same points and vectors, see
:func:`recsys.vectorstore.rebuild.rebuild_collection`); once it holds some, that is a
``DimensionMismatchError`` unless ``resize`` says to drop them (a model of another
size replaces them all anyway).

Also here: :func:`register_synthetic_music`, which puts the synthetic set's music into
the catalog as tracks with audio assets (what an audio-folder ingest does for real
music), so the main job can index it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import sqlalchemy as sa
from sqlalchemy import Engine

from pipelines.embed.audio import Pending, record_embeddings
from pipelines.embed.executors import Executor, LocalExecutor, Outcome
from pipelines.embed.writer import EVERY_S, VectorWriter, writing
from recsys.catalog import runs
from recsys.catalog.batches import RejectLog, sha256_file
from recsys.catalog.reads import read_frame
from recsys.catalog.schema import Artist, AudioAsset, Track, TrackEmbedding
from recsys.embedders.music_frames import MusicFrameEncoder
from recsys.errors import ConfigError, DimensionMismatchError, VideoError
from recsys.models.trimodal_batches import pad
from recsys.models.trimodal_bundle import Bundle, load_bundle, record_bundle
from recsys.recommend.video_scoring import MODEL_FIELD, VECTOR
from recsys.vectorstore.base import Point, VectorStore
from recsys.vectorstore.collections import TRACKS, tracks_spec
from recsys.vectorstore.rebuild import rebuild_collection

SOURCE = "embed-music"
CHECK_BATCH = 1_000
PAGE_ROWS = 1_000  # tracks with audio read from the catalog at a time


@dataclass
class EmbedReport:
    embedded: int = 0
    unchanged: int = 0
    failed: list[str] = field(default_factory=list)  # "track N (path): reason", one per unreadable file
    seconds: float = 0.0
    model_version: str = ""
    resized: bool = False  # the collection's `music` vector was resized to the model's size

    def summary(self) -> str:
        return (
            f"music vectors: {self.embedded} embedded, {self.unchanged} unchanged, {len(self.failed)} failed "
            f"(model {self.model_version}) in {self.seconds:.1f} s"
            + ("; the collection's music vector was resized to the model's size" if self.resized else "")
        )


def embed_music(
    engine: Engine,
    bundle: Bundle,
    bundle_path: Path,
    store: VectorStore,
    *,
    batch_size: int = 32,
    resize: bool = False,
    on_batch: Callable[[int], None] | None = None,
    commit_every_s: float = EVERY_S,
    executor: Executor | None = None,
) -> EmbedReport:
    """Embed what changed into the store's ``tracks`` collection; see the module docstring.

    ``executor``: where the batches are decoded and embedded (default: this process, with
    ``bundle``; elsewhere the bundle is loaded from ``bundle_path``); their results are
    written here either way."""
    clock = time.perf_counter()
    report = EmbedReport(model_version=bundle.version)
    version_id = record_bundle(engine, bundle, bundle_path)
    report.resized = ensure_music_collection(store, bundle.model.config.embed_dim, resize=resize)
    with engine.begin() as conn:
        run_id = runs.start_run(conn, SOURCE, {"model": bundle.version})
    size = max(1, batch_size)
    executor = executor or LocalExecutor(MusicWorker(bundle))
    work = MusicWork(str(bundle_path), bundle.version)

    def failed(exc: BaseException) -> None:
        _finish_run(engine, run_id, report, status="failed", error=f"{type(exc).__name__}: {exc}"[:2000])

    with writing(engine, store, every_s=commit_every_s, failed=failed) as writer, executor.session():
        number = 0
        pages = pending_music(engine, store, version_id, bundle.version, report)
        for part in whole_batches(pages, size):
            by_id = {p.track_id: p for p in part}
            batches = executor.run(work, part, size)
            try:
                for outcomes in batches:
                    batch = [(by_id[o.track_id], o) for o in outcomes]
                    _write_batch(engine, writer, bundle.version, batch, version_id, report)
                    if on_batch is not None:
                        on_batch(number)
                    number += 1
            finally:
                close = getattr(batches, "close", None)
                if close is not None:
                    close()
    report.seconds = time.perf_counter() - clock
    _finish_run(engine, run_id, report, status="done")
    return report


def whole_batches(pages: Iterator[list[Pending]], size: int) -> Iterator[list[Pending]]:
    """The pending tracks of ``pages``, in order, in parts of whole batches of ``size`` (the last
    part may end with a short batch): the tracks left over from a page wait for the next one, so
    the batches are the same however the catalog is paged."""
    waiting: list[Pending] = []  # pending tracks read, not yet in a part (fewer than a batch)
    for page in pages:
        waiting.extend(page)
        whole = len(waiting) - len(waiting) % size
        if whole:
            part, waiting = waiting[:whole], waiting[whole:]
            yield part
            del part
    if waiting:
        yield waiting


def ensure_music_collection(store: VectorStore, dim: int, *, resize: bool = False) -> bool:
    """Make ``tracks`` hold ``music`` vectors of ``dim`` dimensions; True when it had to be resized."""
    if not store.has_collection(TRACKS):
        store.ensure_collection(tracks_spec({VECTOR: dim}))
        return False
    spec = store.spec(TRACKS)
    size = spec.sizes.get(VECTOR)
    if size == dim:
        return False
    held = store.count(TRACKS, vector=VECTOR) if size is not None else 0
    if held and not resize:
        raise DimensionMismatchError(
            f"collection {TRACKS!r} holds {held} {VECTOR!r} vectors of size {size}, the model makes {dim}: "
            "run `recsys embed music --resize` to drop them and embed again at the new size"
        )
    # A new version with the same points: vectors of the new size are carried, the old music ones dropped.
    points = [Point(r.id, {}, r.payload) for r in store.scroll(TRACKS, with_vectors=False)]
    rebuild_collection(store, TRACKS, points, spec=spec.with_vector(VECTOR, dim))
    return True


_PAGE_SCHEMA = {
    "track_id": pl.Int64,
    "uri": pl.String,
    "checksum": pl.String,
    "model_version_id": pl.Int64,
    "input_checksum": pl.String,
}


def _page_query(after: int, rows: int) -> sa.Select[*tuple[Any, ...]]:
    """The first audio asset of each of the ``rows`` tracks with audio after track ``after``, with its
    track's ``music`` embedding row (if any)."""
    first = (
        sa.select(AudioAsset.track_id, sa.func.min(AudioAsset.id).label("asset_id"))
        .where(AudioAsset.track_id > after)
        .group_by(AudioAsset.track_id)
        .order_by(AudioAsset.track_id)
        .limit(rows)
        .subquery()
    )
    return (
        sa.select(
            AudioAsset.track_id,
            AudioAsset.uri,
            AudioAsset.checksum,
            TrackEmbedding.model_version_id,
            TrackEmbedding.input_checksum,
        )
        .join(first, AudioAsset.id == first.c.asset_id)
        .outerjoin(
            TrackEmbedding,
            (TrackEmbedding.track_id == AudioAsset.track_id) & (TrackEmbedding.vector_name == VECTOR),
        )
        .order_by(AudioAsset.track_id)
    )


def pending_music(
    engine: Engine, store: VectorStore, version_id: int, version: str, report: EmbedReport
) -> Iterator[list[Pending]]:
    """Pages of the tracks with audio whose ``music`` vector is missing or stale, in track order
    (counting the others as unchanged); the catalog is read a page of ``PAGE_ROWS`` tracks at a time."""
    after = 0
    while True:
        page = read_frame(engine, _page_query(after, PAGE_ROWS), _PAGE_SCHEMA)
        if not page.height:
            return
        after = int(page["track_id"][-1])
        yield _pending_page(page, store, version_id, version, report)


def _pending_page(
    page: pl.DataFrame, store: VectorStore, version_id: int, version: str, report: EmbedReport
) -> list[Pending]:
    todo: list[Pending] = []
    recorded: list[Pending] = []  # the catalog says done: confirm in the store
    for row in page.iter_rows(named=True):
        item = Pending(int(row["track_id"]), row["uri"], row["checksum"])
        done = row["model_version_id"] == version_id and row["input_checksum"] == row["checksum"]
        (recorded if done else todo).append(item)
    for start in range(0, len(recorded), CHECK_BATCH):
        chunk = recorded[start : start + CHECK_BATCH]
        stored = {r.id: r for r in store.retrieve(TRACKS, [p.track_id for p in chunk], with_vectors=[VECTOR])}
        for item in chunk:
            point = stored.get(item.track_id)
            if point is not None and VECTOR in point.vectors and point.payload.get(MODEL_FIELD) == version:
                report.unchanged += 1
            else:
                todo.append(item)
    todo.sort(key=lambda p: p.track_id)
    return todo


@dataclass(frozen=True)
class MusicWork:
    """The picklable recipe of the music job's batches: where the bundle is and its version (no model)."""

    bundle_path: str
    version: str

    def open(self) -> MusicWorker:
        import torch  # deferred: torch (ml extra)

        bundle = load_bundle(Path(self.bundle_path))
        if bundle.version != self.version:
            raise ConfigError(
                f"{self.bundle_path}: holds model {bundle.version}, the job embeds with {self.version} "
                "(the bundle was replaced during the run: run the job again)"
            )
        if torch.cuda.is_available():
            bundle.model.to("cuda")
        return MusicWorker(bundle)


class MusicWorker:
    """Decodes one file into music frames and embeds a batch of them with one loaded bundle."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle
        self.encoder = MusicFrameEncoder(sample_rate=bundle.spec.music_sample_rate)

    def decode(self, item: Pending) -> np.ndarray | str:
        """The file's music frames (T, D), or why it cannot be embedded."""
        # deferred: av
        from recsys.media.video import read_soundtrack

        path = Path(item.uri.removeprefix("file://"))
        if "://" in item.uri and not item.uri.startswith("file://"):
            return "not a local file (only local paths are embedded)"
        if not path.is_file():
            return "file is missing"
        try:
            sound = read_soundtrack(
                path, sample_rate=self.encoder.sample_rate, max_duration_s=self.encoder.max_seconds
            )
            if sound.samples is None:
                return str(sound.error)
            return self.encoder.encode(sound.samples)
        except VideoError as exc:
            return exc.reason.replace("not a video file", "not an audio file")
        except ValueError as exc:
            return str(exc)

    def embed(self, decoded: list[tuple[Pending, np.ndarray | str]]) -> list[Outcome]:
        import torch  # deferred: torch (ml extra)

        features = [f for _, f in decoded if not isinstance(f, str)]
        vectors: Iterator[np.ndarray] = iter(())
        if features:
            model = self.bundle.model.eval()
            device = next(model.parameters()).device
            music, mask = pad(features, 64)
            with torch.inference_mode():
                vectors = iter(
                    model.embed_music(torch.from_numpy(music).to(device), torch.from_numpy(mask).to(device))
                    .float()
                    .cpu()
                    .numpy()
                )
        out = []
        for item, f in decoded:
            if isinstance(f, str):
                path = Path(item.uri.removeprefix("file://"))
                message = f"track {item.track_id} ({path}): {f}"
                out.append(Outcome(item.track_id, None, reason=f, message=message, kind="music"))
            else:
                out.append(Outcome(item.track_id, next(vectors)))
        return out


def _write_batch(
    engine: Engine,
    writer: VectorWriter,
    version: str,
    batch: list[tuple[Pending, Outcome]],
    version_id: int,
    report: EmbedReport,
) -> None:
    """One batch's outcomes into the store and the catalog (the same whichever executor made them)."""
    rejects = RejectLog(SOURCE)
    good: list[Pending] = []
    vectors: list[np.ndarray] = []
    for item, outcome in batch:
        if outcome.vector is None:
            location = f"{item.uri} [sha256 {item.checksum[:16]}; trimodal {version}]"
            rejects.add(location, outcome.reason or "", raw={"track_id": item.track_id})
            report.failed.append(outcome.message or "")
            continue
        good.append(item)
        vectors.append(outcome.vector)
    if good:
        writer.add(
            VECTOR,
            [p.track_id for p in good],
            np.stack(vectors),
            lambda conn: record_embeddings(conn, VECTOR, version_id, good),
            extra={MODEL_FIELD: version},
        )
    if rejects.rows:
        with engine.begin() as conn:
            rejects.flush(conn)
    report.embedded += len(good)


def _finish_run(
    engine: Engine, run_id: int, report: EmbedReport, *, status: str, error: str | None = None
) -> None:
    counts = {"embedded": report.embedded, "unchanged": report.unchanged, "failed": len(report.failed)}
    with engine.begin() as conn:
        if status == "done":
            runs.finish_run(conn, run_id, counts=counts)
        else:
            runs.fail_run(conn, run_id, error or status, counts=counts)


def register_synthetic_music(engine: Engine, folder: Path, rows: list[dict[str, Any]]) -> int:
    """Each synthetic clip's music as a catalog track (``synthetic:<clip>``) with its WAV as the audio asset."""
    import soundfile as sf  # deferred: soundfile (audio extra)

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
