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
from pipelines.ingest.normalize import RAW_TRACK, build_chunk, capped_names, cut_names, log_cut_names
from pipelines.ingest.report import IngestReport, Progress
from pipelines.ingest.streaming import (
    INVALID,
    ROW,
    LoadChunk,
    already_done,
    load_stream,
    open_table,
    unreadable,
)
from pipelines.ingest.tables import (
    REASON,
    check_prefix,
    encoding_check,
    first_reason,
    ingest_table,
    log_rejects,
    track_checks,
    with_track_fields,
)
from recsys.catalog import batches
from recsys.catalog import keys as k
from recsys.catalog.bulk_listens import listen_keys, merge_listens
from recsys.catalog.frames import ARTISTS, conform
from recsys.catalog.merges import merge_chunk
from recsys.catalog.schema import DEFAULT_NAMESPACE
from recsys.errors import InputError

SOURCE = "listens"
FORMATS = ("lastfm-2k", "lastfm-1k", "csv")
LASTFM_1K_COLUMNS = ["userid", "timestamp", "artist_mbid", "artist", "track_mbid", "track"]


def load_listens(
    conn: Connection,
    good: pl.DataFrame,
    *,
    listen_source: str,
    location: str,
    log: batches.RejectLog,
    max_name_chars: int = MAX_NAME_CHARS,
) -> dict[str, int]:
    """Create the tracks and artists the rows name, then insert the listens; unknown items become rejects.

    ``good`` holds a parser's valid rows: ``_row``, ``_user_key``, ``_item`` (the listened item's
    source key, for the listen key), ``_track_key`` or ``_artist_key`` (+ ``_artist_name``),
    ``_create_track`` with the ``raw_*`` columns of ``normalize.RAW_TRACK``, ``_listened_at``, ``_weight``.
    """
    keys = listen_keys(
        listen_source,
        good["_user_key"],
        good["_item"],
        good["_listened_at"].dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"),
    )
    good = good.with_columns(keys)
    repeated = good.filter(~pl.col("listen_key").is_first_distinct())
    for row in repeated.select(ROW, "_user_key", "_item").iter_rows(named=True):
        log.add(
            f"{location}: row {row[ROW]}",
            "duplicate listen: same user, item and time as an earlier row",
            {"user": row["_user_key"], "item": row["_item"]},
        )
    good = good.filter(pl.col("listen_key").is_first_distinct())

    creating = good.filter(pl.col("_create_track"))
    raw = creating.select([pl.col(f"raw_{n}").alias(n) for n in RAW_TRACK]).cast(RAW_TRACK)  # type: ignore[arg-type]
    chunk = build_chunk(raw, log=log, max_name_chars=max_name_chars)
    artist_rows = (
        good.filter(pl.col("_artist_key").is_not_null())
        .select(
            pl.col("_artist_key").alias("source_key"),
            pl.col("_artist_name").alias("name"),
            pl.col("_artist_key").str.slice(5).alias("name_key"),
        )
        .unique(subset="source_key", keep="first", maintain_order=True)
    )
    capped = capped_names(artist_rows, ("name",), max_name_chars)
    if capped.height:
        artist_rows = cut_names(artist_rows, ("name",), max_name_chars)
        log_cut_names(log, capped, "artist", max_name_chars)
    chunk.artists = pl.concat([chunk.artists, conform(artist_rows, ARTISTS)]).unique(
        subset="source_key", keep="first", maintain_order=True
    )
    merge_chunk(conn, chunk, namespace=DEFAULT_NAMESPACE)
    inserted, missing = merge_listens(
        conn,
        good.select(
            "listen_key",
            pl.lit(listen_source).alias("source"),
            pl.col("_user_key").alias("user_key"),
            pl.col("_track_key").alias("track_key"),
            pl.col("_artist_key").alias("artist_key"),
            pl.col("_weight").alias("weight"),
            pl.col("_listened_at").alias("listened_at"),
            (pl.lit(f"{location}: row ") + pl.col(ROW).cast(pl.String)).alias("location"),
        ),
    )
    for row in missing.iter_rows(named=True):
        item = row["track_key"] or row["artist_key"]
        log.add(row["location"], f"unknown track ({item} is not in the catalog)", row)
    return {"listens": inserted}


def _raw_track_columns(mbid: pl.Expr | None = None) -> list[pl.Expr]:
    """``raw_*`` columns (normalize.RAW_TRACK) from parsed track fields."""
    valid_isrc = pl.col("_isrc").str.contains(c.ISRC_PATTERN)
    return [
        pl.col("_track_key").alias("raw_source_key"),
        pl.col("_spotify").alias("raw_spotify_uri"),
        pl.when(valid_isrc).then(pl.col("_isrc")).alias("raw_isrc"),
        (mbid if mbid is not None else pl.lit(None, pl.String)).alias("raw_mbid"),
        pl.col("_title").alias("raw_title"),
        pl.col("_artist").alias("raw_artist_credit"),
        pl.lit(None, pl.String).alias("raw_artist_uri"),
        pl.col("_album").alias("raw_album_title"),
        pl.lit(None, pl.String).alias("raw_album_uri"),
        pl.lit(None, pl.String).alias("raw_album_type"),
        pl.col("_year").alias("raw_release_year"),
        pl.col("_duration").alias("raw_duration_ms"),
    ]


def table_listens_loader(
    location: str, prefix: str, listen_source: str, *, has_title: bool, max_name_chars: int = MAX_NAME_CHARS
) -> LoadChunk:
    """The chunk loader of a generic listens table (see the README for its columns)."""

    def load(conn: Connection, chunk: pl.DataFrame, batch_id: int, log: batches.RejectLog) -> dict[str, int]:
        rows = with_track_fields(chunk, prefix).with_columns(
            c.blank(pl.col("user")).alias("_user"),
            c.blank(pl.col("weight")).alias("_weight_raw"),
            c.blank(pl.col("timestamp")).alias("_time_raw"),
            c.timestamp(pl.col("timestamp")).alias("_listened_at"),
        )
        has_id = pl.col("_id").is_not_null()
        named = pl.col("_title").is_not_null() & pl.col("_artist").is_not_null()
        artist_level = pl.lit(not has_title) & ~has_id
        rows = rows.with_columns(
            (pl.lit(f"{prefix}:") + pl.col("_user")).alias("_user_key"),
            pl.col("_weight_raw").cast(pl.Float64, strict=False).fill_null(1.0).alias("_weight"),
            pl.when(artist_level).then(None).otherwise(pl.col("_track_key")).alias("_track_key"),
            pl.when(artist_level).then(c.artist_source_key(pl.col("_artist"))).alias("_artist_key"),
            pl.col("_artist").alias("_artist_name"),
            (pl.lit(has_title) & named).alias("_create_track"),
        ).with_columns(pl.coalesce("_track_key", "_artist_key").alias("_item"))
        weight = pl.col("_weight_raw").cast(pl.Float64, strict=False)
        checks: list[tuple[pl.Expr, pl.Expr | str]] = [
            encoding_check("listens"),
            (pl.col("_user").is_null(), "missing field: user"),
            *c.id_checks({"user": pl.col("_user")}),
            (
                pl.col("_weight_raw").is_not_null() & _bad_weight(weight),
                pl.lit("invalid weight: ") + c.quoted(pl.col("_weight_raw")),
            ),
            (
                pl.col("_time_raw").is_not_null() & pl.col("_listened_at").is_null(),
                pl.lit("invalid timestamp: ") + c.quoted(pl.col("_time_raw")),
            ),
        ]
        if has_title:
            checks += [
                (~has_id & pl.col("_title").is_null(), "missing field: title"),
                (~has_id & pl.col("_artist").is_null(), "missing field: artist"),
            ]
        else:
            checks.append((~has_id & pl.col("_artist").is_null(), "missing field: track_id or artist"))
        checks += track_checks(rows, require_names=False)
        rows = rows.with_columns(first_reason(checks))
        good, bad = rows.filter(pl.col(REASON).is_null()), rows.filter(pl.col(REASON).is_not_null())
        log_rejects(log, bad, location, c.KIND_FIELDS["listens"])
        good = good.with_columns(_raw_track_columns())
        return load_listens(
            conn, good, listen_source=listen_source, location=location, log=log, max_name_chars=max_name_chars
        )

    return load


def _bad_weight(weight: pl.Expr) -> pl.Expr:
    """A weight that is not a positive, finite number (text, 0, NaN, infinity)."""
    return weight.is_null() | ~weight.is_finite() | (weight <= 0)


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
        good = good.with_columns(_raw_track_columns(pl.col("_mbid")))
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
                        _bad_weight(weight),
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
        if already_done(engine, SOURCE, location, checksum):
            report.skipped += 1
            continue
        task = progress.start(f"ingest {fmt} {path.name}", total=None)
        load_stream(
            engine,
            source=SOURCE,
            location=location,
            checksum=checksum,
            chunks=chunks,
            load=load,
            report=report,
            progress=progress,
            task=task,
        )
    progress.stop()
    return report


def _checked(location: str) -> str:
    """``location``, or InputError when it is too long to record (see ``guards.location_problem``)."""
    problem = location_problem(location)
    if problem:
        raise InputError(f"{shorten(location)}: {problem}")
    return location
