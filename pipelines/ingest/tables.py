"""CSV/TSV/Parquet tables of tracks, playlist entries or listens → catalog.

The column mapping is in ``pipelines.ingest.columns`` (and in the README). A file
is streamed in batches; every row is validated in one vectorised pass and a bad
row becomes a reject with its reason while the rows beside it land. A missing
required column makes the whole file unreadable (one line naming the file and the
column, a reject row, a non-zero exit).

Track identity, in order: a Spotify track URI (or open.spotify.com link) in the id
column, else the ISRC (``isrc:<ISRC>``), else the id column (``<prefix>:<id>``),
else the names (``name:<artist key>|<title key>``). An id longer than
``guards.MAX_ID_BYTES`` is not one (no index holds it): its row is rejected. Names are
cut to ``max_name_chars``, each cut with a reject row.

Playlists: one row per entry. Rows of one playlist are expected together (as any
export writes them): a playlist is complete when the next playlist's rows begin,
and its entries then replace what the catalog held for it. Rows of a playlist
that already ended earlier in the file are rejected rather than silently mixed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
from sqlalchemy import Connection, Engine

from pipelines.ingest import columns as c
from pipelines.ingest.guards import MAX_NAME_CHARS, InputLimits, check_namespace, location_problem, shorten
from pipelines.ingest.listen_rows import table_listens_loader
from pipelines.ingest.normalize import RAW_TRACK, build_chunk, playlist_frame
from pipelines.ingest.report import IngestReport, Progress
from pipelines.ingest.streaming import LoadChunk, load_new_input, open_table, unreadable
from pipelines.ingest.table_batch import INVALID, ROW
from pipelines.ingest.table_rows import (
    REASON,
    check_prefix,
    encoding_check,
    first_reason,
    log_rejects,
    raw_track_columns,
    track_checks,
    with_track_fields,
)
from recsys.catalog import batches
from recsys.catalog import keys as k
from recsys.catalog.bulk_listens import merge_track_tags
from recsys.catalog.merges import merge_chunk
from recsys.catalog.schema import DEFAULT_NAMESPACE
from recsys.errors import InputError

SOURCE = "table"
KINDS = ("tracks", "playlists", "listens")


def canonical(frame: pl.DataFrame, found: dict[str, str], kind: str) -> pl.DataFrame:
    """The row number, the parser's complaint and the columns renamed to their field names.

    Fields the file lacks are null.
    """
    return frame.select(
        ROW,
        INVALID,
        *[
            pl.col(found[f]).cast(pl.String).alias(f) if f in found else pl.lit(None, pl.String).alias(f)
            for f in c.KIND_FIELDS[kind]
        ],
    )


def raw_tracks(good: pl.DataFrame) -> pl.DataFrame:
    """Raw-track rows (``normalize.RAW_TRACK``) of validated rows."""
    return good.select(raw_track_columns(prefix="")).cast(RAW_TRACK)  # type: ignore[arg-type]


def track_tags(good: pl.DataFrame) -> pl.DataFrame:
    return good.select(
        pl.col("_track_key").alias("source_key"),
        c.json_list(pl.col("genres")).alias("genres"),
        c.json_list(pl.col("cultures")).alias("cultures"),
    ).filter(pl.col("genres").is_not_null() | pl.col("cultures").is_not_null())


def tracks_loader(
    location: str, prefix: str, namespace: str, max_name_chars: int = MAX_NAME_CHARS
) -> LoadChunk:
    fields = c.KIND_FIELDS["tracks"]

    def load(conn: Connection, chunk: pl.DataFrame, batch_id: int, log: batches.RejectLog) -> dict[str, int]:
        rows = with_track_fields(chunk, prefix)
        rows = rows.with_columns(first_reason([encoding_check("tracks"), *track_checks(rows)]))
        good, bad = rows.filter(pl.col(REASON).is_null()), rows.filter(pl.col(REASON).is_not_null())
        log_rejects(log, bad, location, fields)
        merge_chunk(
            conn, build_chunk(raw_tracks(good), log=log, max_name_chars=max_name_chars), namespace=namespace
        )
        merge_track_tags(conn, track_tags(good))
        return {"tracks": good.height}

    return load


class PlaylistLoader:
    """Loads playlist-entry rows, one whole playlist per chunk; remembers which playlists ended."""

    def __init__(
        self,
        location: str,
        prefix: str,
        namespace: str,
        has_position: bool,
        max_name_chars: int = MAX_NAME_CHARS,
    ) -> None:
        self.location, self.prefix, self.namespace = location, prefix, namespace
        self.has_position, self.max_name_chars = has_position, max_name_chars
        self.ended: set[str] = set()

    def chunks(self, frames: Iterator[pl.DataFrame]) -> Iterator[pl.DataFrame]:
        """Re-cut batches so that the rows of a playlist at a batch's end wait for the next batch."""
        carry: pl.DataFrame | None = None
        for frame in frames:
            rows = frame if carry is None else pl.concat([carry, frame])
            keys = rows.select(c.blank(pl.col("playlist_id")))[:, 0].to_list()
            last = next((key for key in reversed(keys) if key is not None), None)
            cut = len(keys)
            while cut > 0 and keys[cut - 1] in (last, None):
                cut -= 1
            carry = rows.slice(cut)
            if cut:
                yield rows.slice(0, cut)
        if carry is not None and carry.height:
            yield carry

    def load(
        self, conn: Connection, chunk: pl.DataFrame, batch_id: int, log: batches.RejectLog
    ) -> dict[str, int]:
        rows = with_track_fields(chunk, self.prefix).with_columns(
            c.blank(pl.col("playlist_id")).alias("_pid"),
            k.clean_text(pl.col("playlist_name")).alias("_pname"),
            c.blank(pl.col("position")).alias("_pos_raw"),
        )
        rows = rows.with_columns(
            (pl.lit(f"{self.prefix}:") + pl.col("_pid")).alias("_playlist_key"),
            pl.col("_pos_raw").cast(pl.Int32, strict=False).alias("_position")
            if self.has_position
            else (pl.int_range(pl.len()).over("_pid").cast(pl.Int32)).alias("_position"),
        )
        checks: list[tuple[pl.Expr, pl.Expr | str]] = [
            encoding_check("playlists"),
            (pl.col("_pid").is_null(), "missing field: playlist_id"),
            *c.id_checks({"playlist_id": pl.col("_pid")}),
            (
                pl.col("_playlist_key").is_in(list(self.ended)),
                pl.lit("playlist rows not together in the file (playlist ")
                + c.quoted(pl.col("_pid"))
                + pl.lit(" ended earlier)"),
            ),
        ]
        if self.has_position:
            checks += [
                (pl.col("_pos_raw").is_null(), "missing field: position"),
                (
                    pl.col("_position").is_null() | (pl.col("_position") < 0),
                    pl.lit("invalid position: ") + c.quoted(pl.col("_pos_raw")),
                ),
            ]
        checks += track_checks(rows)
        rows = rows.with_columns(first_reason(checks))
        ok = pl.col(REASON).is_null()
        duplicate = ok & (pl.int_range(pl.len()).over("_playlist_key", "_position", ok) > 0)
        rows = rows.with_columns(
            pl.when(duplicate)
            .then(pl.lit("duplicate position (") + pl.col("_position").cast(pl.String) + pl.lit(")"))
            .otherwise(pl.col(REASON))
            .alias(REASON)
        )
        good, bad = rows.filter(pl.col(REASON).is_null()), rows.filter(pl.col(REASON).is_not_null())
        log_rejects(log, bad, self.location, c.KIND_FIELDS["playlists"])
        emptied = bad.filter(
            pl.col("_pid").is_not_null()
            & ~c.too_long(pl.col("_pid"))
            & ~pl.col("_playlist_key").is_in(good["_playlist_key"].implode())
            & ~pl.col("_playlist_key").is_in(list(self.ended))
        )
        for pid in emptied["_pid"].unique(maintain_order=True).to_list():
            log.add(f"{self.location}: playlist {pid}", "empty playlist: every entry was rejected")
        playlists = (
            good.group_by("_playlist_key", maintain_order=True)
            .agg(
                pl.coalesce(pl.col("_pname").drop_nulls().first(), pl.col("_pid").first()).alias("name"),
                pl.len().alias("num_tracks"),
            )
            .rename({"_playlist_key": "source_key"})
            .with_columns(pl.lit(batch_id).alias("batch_id"))
        )
        entries = good.select(
            pl.col("_playlist_key").alias("playlist_key"),
            pl.col("_position").alias("position"),
            pl.col("_track_key").alias("track_key"),
        )
        chunk_frames = build_chunk(
            raw_tracks(good),
            playlist_frame(playlists.to_dict(as_series=False), self.max_name_chars, log=log),
            entries,
            log=log,
            max_name_chars=self.max_name_chars,
        )
        merge_chunk(conn, chunk_frames, namespace=self.namespace)
        merge_track_tags(conn, track_tags(good))
        self.ended.update(rows["_playlist_key"].drop_nulls().to_list())
        return {"playlists": playlists.height, "playlist_tracks": good.height}


def ingest_table(
    engine: Engine,
    paths: list[Path],
    *,
    kind: str,
    id_prefix: str = "table",
    namespace: str = DEFAULT_NAMESPACE,
    batch_rows: int = 200_000,
    progress: Progress | None = None,
    source: str = SOURCE,
    listen_source: str = "table",
    limits: InputLimits | None = None,
) -> IngestReport:
    """Ingest CSV/TSV/Parquet tables of ``kind`` (tracks, playlists or listens); idempotent.

    ``limits`` (the settings' :class:`~pipelines.ingest.guards.InputLimits`) bound a
    Parquet file's row groups and nesting and the names kept.
    """
    if kind not in KINDS:
        raise InputError(f"unknown table kind {kind!r}: use one of {', '.join(KINDS)}")
    check_prefix(id_prefix)
    check_namespace(namespace)
    limits = limits or InputLimits()
    report = IngestReport(source=source)
    progress = progress or Progress.quiet()
    for path in paths:
        report.inputs += 1
        location = str(path.resolve()) if path.exists() else str(path)
        try:
            problem = location_problem(location)
            if problem:
                raise InputError(f"{shorten(location)}: {problem}")
            table = open_table(
                path,
                lossy=True,
                max_input_bytes=limits.max_input_bytes,
                max_json_depth=limits.max_json_depth,
            )
            found, missing = c.resolve_columns(table.columns, kind)
            if missing:
                raise InputError(f"{location}: {missing}")
            checksum = batches.sha256_file(str(path))
        except InputError as exc:
            unreadable(engine, report, source, exc)
            continue
        rows: Iterator[pl.DataFrame] = (canonical(batch, found, kind) for batch in table.batches(batch_rows))
        names = limits.max_name_chars
        if kind == "tracks":
            chunks, load = rows, tracks_loader(location, id_prefix, namespace, names)
        elif kind == "playlists":
            loader = PlaylistLoader(location, id_prefix, namespace, "position" in found, names)
            chunks, load = loader.chunks(rows), loader.load
        else:
            chunks = rows
            load = table_listens_loader(
                location, id_prefix, listen_source, has_title="title" in found, max_name_chars=names
            )
        title = f"ingest {kind} {path.name}"
        load_new_input(engine, report, progress, title, source, location, checksum, chunks, load)
    progress.stop()
    return report
