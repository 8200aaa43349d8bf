"""Spotify Million Playlist Dataset slices → catalog.

Accepts ``.json`` and ``.json.gz`` slice files, directories of them (searched
recursively) and ``.zip`` archives, in the full original schema (``pos``, album and
artist URIs, durations) and in the trimmed schema (no ``pos``: position is list order).

Files are streamed: each is read and parsed on its own, and several make a chunk
(about ``batch_rows`` entries) that is normalised and merged into the catalog in two
transactions, its tracks and then its entries, so memory depends on the chunk size,
not on the number of files. A file already ingested
with the same bytes is skipped. A truncated file lands the playlists before the
break; invalid UTF-8 and lone surrogate escapes reject only the records they touch.

Parsing is in :mod:`pipelines.ingest.mpd_parse` (what each field may hold in
:mod:`pipelines.ingest.mpd_fields`), the inputs and their checksums in
:mod:`pipelines.ingest.mpd_inputs`.

Hostile input costs a reject, never the machine (:mod:`pipelines.ingest.guards`):
an input expanding past ``max_input_bytes`` or nesting deeper than ``max_json_depth``
is refused by name, a name longer than ``max_name_chars`` is cut, and a value no
column can hold or that is not what its field says (a ``modified_at`` outside
1970..2100, a ``num_followers`` or ``duration_ms`` that is not a whole number a
32-bit column holds, a ``collaborative`` that is not true or false, an artist or album
URI that is not one) is stored as null; each with a reject row.
"""

from __future__ import annotations

import gzip
import zipfile
import zlib
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite

from pipelines.ingest.guards import InputLimits, check_namespace
from pipelines.ingest.mpd_inputs import SOURCE, SliceInput, already_done, batches_done, checksum, iter_inputs
from pipelines.ingest.mpd_parse import ParsedSlice, parse_slice
from pipelines.ingest.normalize import (
    RAW_TRACK,
    PreparedTracks,
    assemble,
    distinct_tracks,
    playlist_frame,
    prepare_tracks,
)
from pipelines.ingest.report import IngestReport, Progress
from recsys.catalog import batches
from recsys.catalog.db import write_transaction
from recsys.catalog.deferred import catalog_entries, deferred
from recsys.catalog.frames import CatalogChunk, conform
from recsys.catalog.load_memory import KnownTracks, Survey, brought, settled
from recsys.catalog.merges import merge_dimensions, merge_facts
from recsys.catalog.schema import DEFAULT_NAMESPACE, IngestBatch
from recsys.catalog.staging import probe_tracks
from recsys.errors import InputError


def ingest_mpd(
    engine: Engine,
    paths: list[Path],
    *,
    namespace: str = DEFAULT_NAMESPACE,
    batch_rows: int = 200_000,
    progress: Progress | None = None,
    defer_indexes: bool | None = None,
    limits: InputLimits | None = None,
) -> IngestReport:
    """Ingest MPD slices into the catalog (idempotent, resumable at file granularity).

    Reading, parsing and normalising run in this thread while earlier chunks merge
    their artists, albums and tracks in a second one and their playlists and entries
    in a third (each in input order, a chunk's entries after its tracks; on SQLite,
    which has one writer, the second does both), so the parser and two database
    sessions work at the same time. An input is done when the transaction holding its
    entries commits; when a merge fails, the chunks after it are not merged.

    ``defer_indexes`` sets the secondary indexes and foreign keys aside during the
    load and rebuilds them at its end (:mod:`recsys.catalog.deferred`); by default
    (None) a load does so when it is large (:func:`should_defer`).

    ``limits`` (by default :class:`~pipelines.ingest.guards.InputLimits`' defaults) bound
    what one input may cost; an input beyond them is rejected and the others still load.
    """
    limits = limits or InputLimits()
    check_namespace(namespace)
    report = IngestReport(source=SOURCE)
    progress = progress or Progress.quiet()
    inputs = list(iter_inputs(paths))
    with engine.connect() as conn:
        done = batches_done(conn)
    if defer_indexes is None:
        defer_indexes = should_defer(engine, sum(i.size for i in inputs if i.location not in done))
    with deferred(engine, defer_indexes) as set_aside:
        _ingest(engine, inputs, done, namespace, batch_rows, progress, report, limits)
    if set_aside.rebuilt:
        report.messages.append(
            f"rebuilt {len(set_aside.rebuilt)} secondary indexes and foreign keys "
            f"set aside for the load in {set_aside.rebuild_s:.1f} s"
        )
    return report


# Full-schema MPD slices hold about 250 bytes of JSON per playlist entry.
_BYTES_PER_ENTRY = 250
# Loads expected to bring fewer entries than this keep every index up to date as they go.
DEFER_MIN_ENTRIES = 1_000_000


def should_defer(engine: Engine, input_bytes: int) -> bool:
    """Whether a load of ``input_bytes`` of new slices should set indexes aside.

    Rebuilding costs one sort of each whole table, so it pays when the load is
    large (about a million entries or more) and at least half the size of the
    catalog already there.
    """
    expected = input_bytes // _BYTES_PER_ENTRY
    return expected >= DEFER_MIN_ENTRIES and expected * 2 >= catalog_entries(engine)


def _ingest(
    engine: Engine,
    inputs: list[SliceInput],
    done: dict[str, set[str]],
    namespace: str,
    batch_rows: int,
    progress: Progress,
    report: IngestReport,
    limits: InputLimits,
) -> None:
    known_tracks = KnownTracks()
    with engine.connect() as conn:
        known_tracks.prime(conn)
    task = progress.start("ingest mpd", total=len(inputs))
    with _ChunkWriter(engine, namespace, known_tracks, report, batch_rows, limits.max_name_chars) as writer:
        try:
            for item in inputs:
                report.inputs += 1
                pending = _read(engine, item, done, report, limits)
                if pending is not None:
                    writer.add(pending)
                progress.advance(task)
            writer.finish()
        finally:
            progress.stop()


def _read(
    engine: Engine, item: SliceInput, done: dict[str, set[str]], report: IngestReport, limits: InputLimits
) -> _Pending | None:
    """One input read and parsed; None when it is unreadable (reported, with a reject row) or already loaded."""
    try:
        data = item.read(limits.max_input_bytes)
    except InputError as exc:  # over the size limit, or not a usable path
        report.unreadable.append(str(exc))
        _reject_input(engine, item.location, str(exc).split(": ", 1)[-1])
        return None
    except (OSError, EOFError, zipfile.BadZipFile, gzip.BadGzipFile, zlib.error) as exc:
        report.unreadable.append(f"{item.location}: cannot be read ({exc})")
        _reject_input(engine, item.location, f"unreadable input: {exc}")
        return None
    digest = checksum(data)
    if already_done(item.location, data, digest, done):
        report.skipped += 1
        return None
    done.setdefault(item.location, set()).add(digest)
    log = batches.RejectLog(SOURCE)
    try:
        parsed = parse_slice(item.location, data, log, limits)
    except InputError as exc:
        report.unreadable.append(str(exc))
        _reject_input(engine, item.location, str(exc).split(": ", 1)[-1], data[:2048])
        return None
    return _Pending(item.location, digest, parsed, log)


# Chunks merging or queued to merge while the next one is read: two, so that both writers are busy.
_IN_FLIGHT = 2


class _Abandoned(Exception):
    """A chunk not merged because one before it failed (that failure is the one reported)."""


class _ChunkWriter:
    """Gathers parsed slices into chunks and merges each chunk in two writer threads.

    A chunk merges in two transactions, its dimensions (artists, albums, tracks) and then its
    facts (batch rows, playlists, entries, rejects), so the database writes one chunk's
    entries while it writes the next one's tracks; its inputs are done only with the second.
    Each writer takes the chunks in input order as soon as it can (the facts of a chunk wait
    for its dimensions only); the reading thread goes on while at most ``_IN_FLIGHT`` chunks
    are unsettled. On SQLite, which has one writer at a time, the facts queue behind the
    dimensions in one thread. Leaving the ``with`` block waits for both writers.
    """

    def __init__(
        self,
        engine: Engine,
        namespace: str,
        known_tracks: KnownTracks,
        report: IngestReport,
        batch_rows: int,
        max_name_chars: int,
    ) -> None:
        self.engine, self.namespace, self.known_tracks, self.report = engine, namespace, known_tracks, report
        self.batch_rows, self.max_name_chars = batch_rows, max_name_chars
        # The slices of the chunk being gathered, and their entries.
        self.pending: list[_Pending] = []
        self.pending_rows = 0
        # The chunks submitted, in input order, each with the future of its facts.
        self.inflight: deque[tuple[Future[None], list[_Pending]]] = deque()
        self.submitted = 0
        # The numbers of the chunks whose merge failed: the chunks queued behind one are left alone
        # (those before it are not: the dimensions writer may run a chunk ahead of the facts writer).
        self.failed: list[int] = []
        self._threads = ExitStack()
        self.dimensions_writer = self._threads.enter_context(
            ThreadPoolExecutor(1, thread_name_prefix="mpd-dimensions")
        )
        self.facts_writer = (
            self.dimensions_writer
            if engine.dialect.name == "sqlite"
            else self._threads.enter_context(ThreadPoolExecutor(1, thread_name_prefix="mpd-facts"))
        )

    def __enter__(self) -> _ChunkWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._threads.close()

    def add(self, item: _Pending) -> None:
        """Gather a parsed slice; a chunk of ``batch_rows`` entries or more is submitted."""
        self.pending.append(item)
        self.pending_rows += item.parsed.n_entries
        if self.pending_rows >= self.batch_rows:
            self.flush()

    def flush(self) -> None:
        """Submit the slices gathered as one chunk, normalised here while the previous ones merge,
        with what the load knew then."""
        if self.pending:
            chunk = _prepare(self.pending, self.known_tracks, self.max_name_chars)
            self.submitted += 1
            track_ids = self.dimensions_writer.submit(self._dimensions, self.submitted, chunk)
            facts = self.facts_writer.submit(self._facts, self.submitted, chunk, track_ids)
            self.inflight.append((facts, chunk.pending))
            while len(self.inflight) > _IN_FLIGHT:
                self.settle_oldest()
        self.pending, self.pending_rows = [], 0

    def finish(self) -> None:
        """Submit what is gathered and wait for every chunk."""
        self.flush()
        while self.inflight:
            self.settle_oldest()

    def settle_oldest(self) -> None:
        """Wait for the oldest chunk's facts and report its slices; a failed merge is re-raised here."""
        future, chunk = self.inflight.popleft()
        future.result()  # re-raises a failed merge here, the first in input order
        for item in chunk:
            self.report.add_loaded(playlists=item.parsed.n_playlists, playlist_tracks=item.parsed.n_entries)
            self.report.add_rejects(item.rejects)

    def _merge(self, number: int, step: Callable[..., Any], *args: Any) -> Any:
        """``step(conn, *args)`` in a transaction of its own, unless the merge of an earlier chunk failed."""
        if self.failed and number > min(self.failed):
            raise _Abandoned
        try:
            with write_transaction(self.engine) as conn:
                return step(conn, *args)
        except BaseException:
            self.failed.append(number)
            raise

    def _dimensions(self, number: int, chunk: _Chunk) -> pl.DataFrame | None:
        return self._merge(number, _merge_dimensions, chunk, self.known_tracks)

    def _facts(self, number: int, chunk: _Chunk, track_ids: Future[pl.DataFrame | None]) -> None:
        # The chunk's dimensions first: their failure is re-raised here.
        self._merge(number, _merge_facts, chunk, track_ids.result(), self.namespace)


@dataclass
class _Pending:
    location: str
    checksum: str
    parsed: ParsedSlice
    rejects: batches.RejectLog


def _record_batches(conn: Connection, pending: list[_Pending]) -> list[int]:
    """One finished ``ingest_batch`` row per input, written in the transaction that loads its data."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    now = datetime.now(UTC)
    rows = [
        {
            "source": SOURCE,
            "location": item.location,
            "checksum": item.checksum,
            "status": "done",
            "loaded": item.parsed.n_entries,
            "rejected": len(item.rejects.rows),
            "detail": {
                "playlists": item.parsed.n_playlists,
                "entries": item.parsed.n_entries,
                "problem": item.parsed.problem,
            },
            "finished_at": now,
        }
        for item in pending
    ]
    ids: dict[str, int] = {}
    for start in range(0, len(rows), 500):
        values = insert(IngestBatch).values(rows[start : start + 500])
        upsert = values.on_conflict_do_update(
            index_elements=["source", "location", "checksum"],
            set_={c: values.excluded[c] for c in ("status", "loaded", "rejected", "detail", "finished_at")},
        ).returning(IngestBatch.location, IngestBatch.id)
        ids.update({r[0]: int(r[1]) for r in conn.execute(upsert)})
    return [ids[item.location] for item in pending]


@dataclass
class _Chunk:
    """The parsed slices of one transaction, normalised before their merge."""

    pending: list[_Pending]
    playlists: pl.DataFrame  # normalised; batch_id holds the index of the slice in pending
    entries: pl.DataFrame  # playlist_key, position, track_key
    wanted: pl.DataFrame  # per distinct track, the values this chunk brings (load_memory.brought)
    survey: Survey  # what the load knew of them when the chunk was prepared
    tracks: PreparedTracks  # the distinct tracks not known to be settled when prepared


def _prepare(pending: list[_Pending], known_tracks: KnownTracks, max_name_chars: int) -> _Chunk:
    """Flatten and normalise the slices of one chunk; no database work, so it runs beside a merge."""
    tracks = pl.concat([item.parsed.tracks for item in pending])
    entries = pl.concat([item.parsed.entries for item in pending]).with_columns(
        tracks["source_key"].alias("track_key")
    )
    playlists = pl.concat(
        [
            item.parsed.playlists.with_columns(pl.lit(index, pl.Int64).alias("batch_id"))
            for index, item in enumerate(pending)
        ]
    )
    if playlists["source_key"].n_unique() < playlists.height:
        # A pid found again in a later file replaces the earlier playlist, as it does across chunks.
        last = playlists.group_by("source_key").agg(pl.col("batch_id").max())
        entry_slice = pl.Series([i for i, item in enumerate(pending) for _ in range(item.parsed.n_entries)])
        entries = (
            entries.with_columns(entry_slice.alias("batch_id"))
            .join(last, left_on=["playlist_key", "batch_id"], right_on=["source_key", "batch_id"], how="semi")
            .drop("batch_id")
        )
        playlists = playlists.join(last, on=["source_key", "batch_id"], how="semi")
    # Every MPD track key is the track's Spotify URI.
    tracks = tracks.with_columns(pl.col("source_key").alias("spotify_uri"))
    raw = distinct_tracks(conform(tracks, RAW_TRACK))
    wanted = brought(raw)
    # Tracks already in the catalog that this chunk cannot improve need no normalising nor
    # merging. Those the load knows now are dropped here; the merge drops any settled since.
    survey = known_tracks.survey(wanted)
    if survey.settled.height:
        raw = raw.filter(~pl.col("source_key").is_in(survey.settled["source_key"].implode()))
    # The parser has cut long names already (with reject rows): the same limit applies here.
    return _Chunk(
        pending,
        playlist_frame(playlists, max_name_chars).collect(),
        entries,
        wanted,
        survey,
        prepare_tracks(raw, max_name_chars),
    )


def _merge_dimensions(conn: Connection, chunk: _Chunk, known_tracks: KnownTracks) -> pl.DataFrame | None:
    """Merge the artists, albums, tracks and credits of one prepared chunk; the ``key, id`` of its tracks."""
    # Settled tracks (in the catalog, holding all this chunk could add) need no merging, only
    # their ids: first those this load knows, then the rest looked up. When the load knows the
    # whole catalog, a track it does not know is new: there is nothing to look up. What the load
    # knew when the chunk was prepared is only brought up to date with what it learnt since.
    cached, lacking, unknown = known_tracks.classify(chunk.survey)
    probed = probe_tracks(conn, lacking if known_tracks.complete else pl.concat([lacking, unknown]))
    done = pl.concat([cached["source_key"], settled(chunk.wanted, probed)["source_key"]])
    known = pl.concat([cached, probed.select("source_key", "id")])
    merged = assemble(chunk.tracks.without(done))
    track_ids = merge_dimensions(conn, merged, known=known, memory=known_tracks)[1]
    # Only tracks known when classified can be known again: new ones and unknown ones probed are not.
    known_tracks.add(probed, merged.new_tracks, among=lacking)
    return track_ids


def _merge_facts(conn: Connection, chunk: _Chunk, track_ids: pl.DataFrame | None, namespace: str) -> None:
    """Merge the playlists, entries and rejects of one chunk whose dimensions are merged, with its batch rows."""
    batch_ids = _record_batches(conn, chunk.pending)
    for batch_id, item in zip(batch_ids, chunk.pending, strict=True):
        for row in item.rejects.rows:
            row["batch_id"] = batch_id
    playlists = chunk.playlists.with_columns(
        pl.col("batch_id").replace_strict(dict(enumerate(batch_ids)), return_dtype=pl.Int64)
    )
    rejects = pl.concat([item.rejects.frame() for item in chunk.pending])
    # merge_facts conforms each frame to its schema itself.
    facts = CatalogChunk(playlists=playlists, entries=chunk.entries, rejects=rejects)
    merge_facts(conn, facts, namespace=namespace, track_ids=track_ids)


def _reject_input(engine: Engine, location: str, reason: str, raw: Any = None) -> None:
    log = batches.RejectLog(SOURCE)
    log.add(location, reason, raw)
    with write_transaction(engine) as conn:
        log.flush(conn)
