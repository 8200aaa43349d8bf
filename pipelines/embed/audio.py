"""The audio embedding job: every track whose audio has no vector from the current encoder gets one.

Incremental and resumable. ``track_embedding`` says which track holds which named
vector from which model version and which audio (its checksum). A run:

1. records the encoder in ``model_version`` (kind, version, params) and opens a
   ``pipeline_run``;
2. selects the tracks whose first audio asset lacks a ``track_embedding`` row for
   this vector name, model version and checksum (and that this encoder version
   has not already rejected);
3. per batch: decodes the files (a bad file becomes an ``ingest_reject`` row with
   its reason, committed at once, and the rest of the batch goes on) and embeds;
4. every half minute or so (:mod:`pipelines.embed.writer`) writes the finished
   batches' vectors to the ``tracks`` collection in one store write, then commits
   their ``track_embedding`` rows in one transaction.

A run that fails or is interrupted writes its finished batches before it ends. A run
killed outright loses the vectors not yet written, which have no rows either: the
next run embeds them again, onto the same points (point id = track id), so nothing
is duplicated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from pipelines.embed.executors import Executor, LocalExecutor, Outcome
from pipelines.embed.writer import EVERY_S, VectorWriter, writing
from pipelines.ingest.report import Progress
from recsys.catalog import runs
from recsys.catalog.batches import RejectLog
from recsys.catalog.model_versions import record_model_version
from recsys.catalog.schema import AudioAsset, IngestReject, TrackEmbedding
from recsys.embedders.base import Embedder
from recsys.errors import AudioError, DimensionMismatchError
from recsys.media.audio import DecodedAudio, load_audio
from recsys.vectorstore.base import VectorStore
from recsys.vectorstore.collections import TRACKS, tracks_spec

SOURCE = "embed-audio"


@dataclass
class EmbedReport:
    encoder: str
    version: str
    model_version_id: int
    pending: int = 0  # tracks that needed a vector at the start
    embedded: int = 0
    rejected: int = 0
    skipped_rejected: int = 0  # rejected by this encoder version in an earlier run
    reasons: Counter[str] = field(default_factory=Counter)
    seconds_of_audio: float = 0.0
    rejects: list[str] = field(default_factory=list)  # "file: reason", one line each

    def summary(self) -> str:
        line = (
            f"embed audio ({self.encoder} {self.version}): {self.pending} track(s) pending, "
            f"embedded {self.embedded} ({self.seconds_of_audio:,.0f} s of audio), rejected {self.rejected}"
        )
        if self.reasons:
            line += " (" + "; ".join(f"{n} {r}" for r, n in self.reasons.most_common(5)) + ")"
        if self.skipped_rejected:
            line += f"; {self.skipped_rejected} rejected earlier, skipped"
        return line

    def as_dict(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder,
            "version": self.version,
            "model_version_id": self.model_version_id,
            "pending": self.pending,
            "embedded": self.embedded,
            "rejected": self.rejected,
            "skipped_rejected": self.skipped_rejected,
            "reasons": dict(self.reasons),
            "seconds_of_audio": round(self.seconds_of_audio, 3),
            "rejects": self.rejects,
        }


@dataclass(frozen=True)
class Pending:
    track_id: int
    uri: str
    checksum: str


def ensure_model_version(conn: sa.Connection, embedder: Embedder) -> int:
    """The ``model_version`` id of this encoder version (created on first use)."""
    return record_model_version(
        conn,
        embedder.kind,
        embedder.version,
        params={**embedder.params(), "vector": embedder.name, "dim": embedder.dim},
    )


def reject_location(item: Pending, embedder: Embedder) -> str:
    return f"{item.uri} [sha256 {item.checksum[:16]}; {embedder.kind} {embedder.version}]"


def pending_tracks(conn: sa.Connection, vector: str, model_version_id: int) -> list[Pending]:
    """Tracks whose first audio asset has no ``vector`` from this model version for its current bytes."""
    first = (
        sa.select(AudioAsset.track_id, sa.func.min(AudioAsset.id).label("asset_id"))
        .group_by(AudioAsset.track_id)
        .subquery()
    )
    done = sa.and_(
        TrackEmbedding.track_id == AudioAsset.track_id,
        TrackEmbedding.vector_name == vector,
        TrackEmbedding.model_version_id == model_version_id,
        TrackEmbedding.input_checksum == AudioAsset.checksum,
    )
    query = (
        sa.select(AudioAsset.track_id, AudioAsset.uri, AudioAsset.checksum)
        .join(first, AudioAsset.id == first.c.asset_id)
        .outerjoin(TrackEmbedding, done)
        .where(TrackEmbedding.track_id.is_(None))
        .order_by(AudioAsset.track_id)
    )
    return [Pending(int(r.track_id), r.uri, r.checksum) for r in conn.execute(query)]


def embed_audio(
    engine: sa.Engine,
    store: VectorStore,
    embedder: Embedder,
    *,
    batch_size: int = 8,
    max_duration_s: float = 600.0,
    progress: Progress | None = None,
    on_batch: Callable[[int], None] | None = None,
    commit_every_s: float = EVERY_S,
    executor: Executor | None = None,
) -> EmbedReport:
    """Embed every pending track (see the module docstring); returns what was done.

    ``executor``: where the batches are decoded and embedded (default: this process, see
    :mod:`pipelines.embed.executors`); their results are written here either way."""
    progress = progress or Progress.quiet()
    with engine.begin() as conn:
        mv_id = ensure_model_version(conn, embedder)
        run_id = runs.start_run(conn, SOURCE, {"encoder": embedder.kind, "version": embedder.version})
        todo = pending_tracks(conn, embedder.name, mv_id)
        rejected_before = set(
            conn.execute(sa.select(IngestReject.location).where(IngestReject.source == SOURCE)).scalars()
        )
    report = EmbedReport(encoder=embedder.kind, version=embedder.version, model_version_id=mv_id)
    report.pending = len(todo)
    fresh = [p for p in todo if reject_location(p, embedder) not in rejected_before]
    report.skipped_rejected = len(todo) - len(fresh)
    _ensure_collection(store, embedder)
    task = progress.start(f"embedding audio ({embedder.kind})", len(fresh))
    worker = AudioWorker(embedder, max_duration_s)
    executor = executor or LocalExecutor(worker)
    by_id = {p.track_id: p for p in fresh}

    def failed(exc: BaseException) -> None:
        _finish_run(engine, run_id, report, status="failed", error=f"{type(exc).__name__}: {exc}"[:2000])

    batches = executor.run(AudioWork.of(embedder, max_duration_s), fresh, batch_size)
    try:
        with writing(engine, store, every_s=commit_every_s, failed=failed) as writer:
            for number, outcomes in enumerate(batches):
                _write_batch(
                    engine, writer, embedder, [(by_id[o.track_id], o) for o in outcomes], mv_id, report
                )
                progress.advance(task, len(outcomes))
                if on_batch is not None:
                    on_batch(number)
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()
        progress.stop()
    _finish_run(engine, run_id, report, status="done")
    return report


@dataclass(frozen=True)
class AudioWork:
    """The picklable recipe of the audio job's batches: the embedder's class and config (no model)."""

    embedder_type: type[Embedder]
    config: Any
    max_duration_s: float

    @classmethod
    def of(cls, embedder: Embedder, max_duration_s: float) -> AudioWork:
        return cls(type(embedder), getattr(embedder, "config", None), max_duration_s)

    def open(self) -> AudioWorker:
        builder: Any = self.embedder_type
        return AudioWorker(builder(self.config), self.max_duration_s)


class AudioWorker:
    """Decodes one file and embeds a batch of decoded files with one built embedder."""

    def __init__(self, embedder: Embedder, max_duration_s: float) -> None:
        self.embedder, self.max_duration_s = embedder, max_duration_s

    def decode(self, item: Pending) -> DecodedAudio | AudioError:
        try:
            if "://" in item.uri and not item.uri.startswith("file://"):
                raise AudioError(item.uri, "not a local file (only local paths are embedded)")
            path = Path(item.uri.removeprefix("file://"))
            return load_audio(path, self.embedder.sample_rate, max_duration_s=self.max_duration_s)
        except AudioError as exc:
            return exc

    def embed(self, decoded: list[tuple[Pending, DecodedAudio | AudioError]]) -> list[Outcome]:
        clips = [d.samples for _, d in decoded if not isinstance(d, AudioError)]
        vectors = iter(self.embedder.embed(clips)) if clips else iter(())
        out = []
        for item, d in decoded:
            if isinstance(d, AudioError):
                out.append(Outcome(item.track_id, None, reason=d.reason, message=str(d), kind=_kind(d)))
            else:
                out.append(Outcome(item.track_id, next(vectors), seconds=d.duration_s))
        return out


def _ensure_collection(store: VectorStore, embedder: Embedder) -> None:
    if not store.has_collection(TRACKS):
        store.ensure_collection(tracks_spec({embedder.name: embedder.dim}))
        return
    size = store.spec(TRACKS).sizes.get(embedder.name)
    if size != embedder.dim:
        raise DimensionMismatchError(
            f"collection {TRACKS!r} holds {embedder.name!r} vectors of size {size}, the encoder makes {embedder.dim}: "
            "rebuild the collection with the new size"
        )


def _write_batch(
    engine: sa.Engine,
    writer: VectorWriter,
    embedder: Embedder,
    batch: list[tuple[Pending, Outcome]],
    mv_id: int,
    report: EmbedReport,
) -> None:
    """One batch's outcomes into the store and the catalog (the same whichever executor made them)."""
    rejects = RejectLog(SOURCE)
    good: list[Pending] = []
    vectors: list[np.ndarray] = []
    for item, outcome in batch:
        if outcome.vector is None:
            rejects.add(
                reject_location(item, embedder), outcome.reason or "", raw={"track_id": item.track_id}
            )
            report.rejects.append(outcome.message or "")
            report.reasons[outcome.kind or "audio"] += 1
            continue
        good.append(item)
        vectors.append(outcome.vector)
        report.seconds_of_audio += outcome.seconds
    if good:
        writer.add(
            embedder.name,
            [p.track_id for p in good],
            np.stack(vectors),
            lambda conn: record_embeddings(conn, embedder.name, mv_id, good),
        )
    if rejects.rows:
        with engine.begin() as conn:
            rejects.flush(conn)
    report.embedded += len(good)
    report.rejected += len(batch) - len(good)


def _kind(exc: AudioError) -> str:
    return type(exc).__name__.removesuffix("AudioError").lower() or "audio"


def record_embeddings(conn: sa.Connection, vector: str, mv_id: int, items: list[Pending]) -> None:
    """Upsert the ``track_embedding`` rows saying these tracks hold ``vector`` from this model and audio."""
    rows = [
        {
            "track_id": p.track_id,
            "vector_name": vector,
            "model_version_id": mv_id,
            "input_checksum": p.checksum,
            "embedded_at": datetime.now(UTC),
        }
        for p in items
    ]
    if conn.dialect.name == "postgresql":
        statement = postgresql_insert(TrackEmbedding).values(rows)
    else:
        statement = sqlite_insert(TrackEmbedding).values(rows)  # type: ignore[assignment]
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=["track_id", "vector_name"],
            set_={
                "model_version_id": statement.excluded.model_version_id,
                "input_checksum": statement.excluded.input_checksum,
                "embedded_at": statement.excluded.embedded_at,
            },
        )
    )


def _finish_run(
    engine: sa.Engine, run_id: int, report: EmbedReport, *, status: str, error: str | None = None
) -> None:
    counts = {k: v for k, v in report.as_dict().items() if k != "rejects"}
    with engine.begin() as conn:
        if status == "done":
            runs.finish_run(conn, run_id, counts=counts)
        else:
            runs.fail_run(conn, run_id, error or status, counts=counts)
