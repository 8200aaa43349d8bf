"""Listening histories → ``listen`` rows: HetRec Last.fm 2k, Last.fm 1K and generic CSV tables.

- ``lastfm-2k``: ``user_artists.dat`` (userID, artistID, weight = play count) with
  ``artists.dat`` beside it for the names; tab-separated, CRLF line ends accepted.
  One aggregate listen per row, on the artist (``listen.artist_id``); users are
  ``lastfm2k:<userID>``.
- ``lastfm-1k``: the tab-separated log without header (userid, timestamp,
  artist_mbid, artist, track_mbid, track). One listen per event, on a track
  created as ``mbid:<track_mbid>`` or, without an MBID, ``name:<artist key>|<title key>``.
- ``csv``: a table with the listens column mapping (``recsys ingest table --kind listens``).

``listen.listen_key`` = sha256(source, user, item, time): ingesting the same rows
twice changes nothing, and a repeated row (same user, item and time) is rejected.
A user or id longer than ``guards.MAX_ID_BYTES``, a MusicBrainz id that is not a UUID
and a weight that is not a positive finite number are rejected with their row; names
are cut to ``max_name_chars``, each cut with a reject row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import polars as pl
from sqlalchemy import Connection, Engine

from pipelines.ingest import columns as c
from pipelines.ingest.guards import MAX_NAME_CHARS, InputLimits, location_problem, shorten
from pipelines.ingest.listen_rows import bad_weight, load_listens
from pipelines.ingest.normalize import RAW_TRACK
from pipelines.ingest.report import IngestReport, Progress
from pipelines.ingest.streaming import LoadChunk, load_new_input, open_table, unreadable
from pipelines.ingest.table_batch import INVALID, ROW
from pipelines.ingest.table_rows import REASON, check_prefix, first_reason, log_rejects, raw_track_columns
from pipelines.ingest.tables import ingest_table
from recsys.catalog import batches
from recsys.catalog import keys as k
from recsys.errors import InputError

SOURCE = "listens"
FORMATS = ("lastfm-2k", "lastfm-1k", "csv")
LASTFM_1K_COLUMNS = ["userid", "timestamp", "artist_mbid", "artist", "track_mbid", "track"]


def _lastfm_1k_loader(location: str, max_name_chars: int = MAX_NAME_CHARS) -> LoadChunk:
    def load(conn: Connection, chunk: pl.DataFrame, batch_id: int, log: batches.RejectLog) -> dict[str, int]:
        rows = chunk.with_columns(
            c.blank(pl.col("userid")).alias("_user"),
            c.blank(pl.col("timestamp")).alias("_time_raw"),
            c.timestamp(pl.col("timestamp")).alias("_listened_at"),
            k.clean_text(pl.col("artist")).alias("_artist"),
            k.clean_text(pl.col("track")).alias("_title"),
            c.blank(pl.col("track_mbid")).str.to_lowercase().alias("_mbid"),
        ).with_columns(
            (pl.lit("lastfm1k:") + pl.col("_user")).alias("_user_key"),
            pl.coalesce(
                pl.lit("mbid:") + pl.col("_mbid"), c.name_track_key(pl.col("_artist"), pl.col("_title"))
            ).alias("_track_key"),
            pl.lit(None, pl.String).alias("_artist_key"),
            pl.col("_artist").alias("_artist_name"),
            pl.lit(True).alias("_create_track"),
            pl.lit(1.0).alias("_weight"),
            pl.lit(None, pl.String).alias("_spotify"),
            pl.lit(None, pl.String).alias("_isrc"),
            pl.lit(None, pl.String).alias("_album"),
            pl.lit(None, pl.Int32).alias("_year"),
            pl.lit(None, pl.Int64).alias("_duration"),
        )
        rows = rows.with_columns(pl.col("_track_key").alias("_item"))
        rows = rows.with_columns(
            first_reason(
                [
                    (pl.col("_user").is_null(), "missing field: userid"),
                    *c.id_checks({"userid": pl.col("_user")}),
                    (pl.col("_time_raw").is_null(), "missing field: timestamp"),
                    (
                        pl.col("_listened_at").is_null(),
                        pl.lit("invalid timestamp: ") + c.quoted(pl.col("_time_raw")),
                    ),
                    (pl.col("_artist").is_null(), "missing field: artist"),
                    (pl.col("_title").is_null(), "missing field: track"),
                    (
                        pl.col("_mbid").is_not_null() & ~pl.col("_mbid").str.contains(c.MBID_PATTERN),
                        pl.lit("invalid track_mbid: ")
                        + c.quoted(pl.col("_mbid"))
                        + pl.lit(" (a MusicBrainz id is a UUID)"),
                    ),
                ]
            )
        )
        good, bad = rows.filter(pl.col(REASON).is_null()), rows.filter(pl.col(REASON).is_not_null())
        log_rejects(log, bad, location, tuple(LASTFM_1K_COLUMNS))
        good = good.with_columns(raw_track_columns(pl.col("_mbid")))
        return load_listens(
            conn, good, listen_source="lastfm-1k", location=location, log=log, max_name_chars=max_name_chars
        )

    return load


def _lastfm_2k_loader(
    location: str, artists: pl.DataFrame, max_name_chars: int = MAX_NAME_CHARS
) -> LoadChunk:
    def load(conn: Connection, chunk: pl.DataFrame, batch_id: int, log: batches.RejectLog) -> dict[str, int]:
        rows = chunk.with_columns(
            c.blank(pl.col("userID")).alias("_user"),
            c.blank(pl.col("artistID")).alias("_artist_id"),
            c.blank(pl.col("weight")).alias("_weight_raw"),
        ).join(artists, left_on="_artist_id", right_on="id", how="left", maintain_order="left")
        weight = pl.col("_weight_raw").cast(pl.Float64, strict=False)
        rows = rows.with_columns(
            (pl.lit("lastfm2k:") + pl.col("_user")).alias("_user_key"),
            (pl.lit("lastfm2k:artist:") + pl.col("_artist_id")).alias("_item"),
            pl.lit(None, pl.String).alias("_track_key"),
            c.artist_source_key(pl.col("_artist_name")).alias("_artist_key"),
            pl.lit(False).alias("_create_track"),
            pl.lit(None, pl.Datetime("us", "UTC")).alias("_listened_at"),
            weight.alias("_weight"),
            pl.col("_artist_id").cast(pl.Int64, strict=False).alias("_artist_num"),
        )
        rows = rows.with_columns(
            first_reason(
                [
                    (
                        pl.col("_user").cast(pl.Int64, strict=False).is_null(),
                        "invalid userID: " + c.quoted(pl.col("userID").fill_null("")),
                    ),
                    (
                        pl.col("_artist_num").is_null(),
                        pl.lit("invalid artistID: ") + c.quoted(pl.col("artistID").fill_null("")),
                    ),
                    (
                        bad_weight(weight),
                        pl.lit("invalid weight: ") + c.quoted(pl.col("weight").fill_null("")),
                    ),
                    (
                        pl.col("_artist_name").is_null(),
                        pl.lit("unknown artistID (")
                        + c.quoted(pl.col("_artist_id"))
                        + pl.lit(" has no name in artists.dat)"),
                    ),
                ]
            )
        )
        good, bad = rows.filter(pl.col(REASON).is_null()), rows.filter(pl.col(REASON).is_not_null())
        log_rejects(log, bad, location, ("userID", "artistID", "weight"))
        good = good.with_columns([pl.lit(None).alias(f"raw_{n}") for n in RAW_TRACK])
        return load_listens(
            conn, good, listen_source="lastfm-2k", location=location, log=log, max_name_chars=max_name_chars
        )

    return load


def _lastfm_2k_files(path: Path) -> tuple[Path, Path]:
    user_artists = path / "user_artists.dat" if path.is_dir() else path
    artists = user_artists.parent / "artists.dat"
    for needed in (user_artists, artists):
        if not needed.is_file():
            raise InputError(f"{needed}: no such file (lastfm-2k needs user_artists.dat and artists.dat)")
    return user_artists, artists


def ingest_listens(
    engine: Engine,
    paths: list[Path],
    *,
    fmt: str,
    id_prefix: str = "table",
    batch_rows: int = 200_000,
    progress: Progress | None = None,
    limits: InputLimits | None = None,
) -> IngestReport:
    """Ingest listening histories in format ``fmt`` (lastfm-2k, lastfm-1k or csv); idempotent.

    ``limits``: see :func:`pipelines.ingest.tables.ingest_table`.
    """
    if fmt not in FORMATS:
        raise InputError(f"unknown listens format {fmt!r}: use one of {', '.join(FORMATS)}")
    limits = limits or InputLimits()
    if fmt == "csv":
        return ingest_table(
            engine,
            paths,
            kind="listens",
            id_prefix=id_prefix,
            batch_rows=batch_rows,
            progress=progress,
            source=SOURCE,
            listen_source="csv",
            limits=limits,
        )
    check_prefix(id_prefix)
    report = IngestReport(source=f"{SOURCE} {fmt}")
    progress = progress or Progress.quiet()
    for path in paths:
        report.inputs += 1
        try:
            if fmt == "lastfm-2k":
                user_artists, artists_path = _lastfm_2k_files(path)
                location = _checked(str(user_artists.resolve()))
                table = open_table(user_artists, quote=None)
                for column in ("userID", "artistID", "weight"):
                    if column not in table.columns:
                        raise InputError(f"{location}: missing column: {column}")
                names = open_table(artists_path, quote=None)
                for column in ("id", "name"):
                    if column not in names.columns:
                        raise InputError(f"{artists_path.resolve()}: missing column: {column}")
                artists = names.read_all().select(
                    c.blank(pl.col("id")).alias("id"), k.clean_text(pl.col("name")).alias("_artist_name")
                )
                chunks: Iterator[pl.DataFrame] = (
                    b.select(ROW, INVALID, "userID", "artistID", "weight") for b in table.batches(batch_rows)
                )
                checksum = hashlib.sha256(
                    (batches.sha256_file(str(user_artists)) + batches.sha256_file(str(artists_path))).encode()
                ).hexdigest()
                load = _lastfm_2k_loader(location, artists, limits.max_name_chars)
            else:
                location = _checked(str(path.resolve()) if path.exists() else str(path))
                table = open_table(path, has_header=False, columns=LASTFM_1K_COLUMNS, quote=None)
                chunks = table.batches(batch_rows)
                checksum = batches.sha256_file(str(path))
                load = _lastfm_1k_loader(location, limits.max_name_chars)
        except (InputError, pl.exceptions.PolarsError) as exc:
            error = exc if isinstance(exc, InputError) else InputError(f"{path}: cannot be read ({exc})")
            unreadable(engine, report, SOURCE, error)
            continue
        title = f"ingest {fmt} {path.name}"
        load_new_input(engine, report, progress, title, SOURCE, location, checksum, chunks, load)
    progress.stop()
    return report


def _checked(location: str) -> str:
    """``location``, or InputError when it is too long to record (see ``guards.location_problem``)."""
    problem = location_problem(location)
    if problem:
        raise InputError(f"{shorten(location)}: {problem}")
    return location
