"""The row checks shared by every table parser (tracks, playlists, listens, Last.fm): a batch's rows
validated in one vectorised pass, each bad row given exactly one reason and logged as a reject.

A parser adds its parsed fields (:func:`with_track_fields`), lists its checks as
``(condition, reason)`` pairs (:func:`track_checks`, :func:`encoding_check`, its own),
takes the first failing one per row (:func:`first_reason`, in the ``_reason`` column)
and logs the rows that have one (:func:`log_rejects`); :func:`raw_track_columns` makes
the raw tracks of the rows that pass. :func:`check_prefix` bounds the id prefix every
key made from an id starts with.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from pipelines.ingest import columns as c
from pipelines.ingest.table_batch import ROW
from recsys.catalog import batches
from recsys.catalog import keys as k
from recsys.errors import InputError

REASON = "_reason"
MAX_PREFIX_BYTES = 64  # of --id-prefix: the keys it starts stay far below any index's limit


def first_reason(checks: list[tuple[pl.Expr, pl.Expr | str]]) -> pl.Expr:
    """The reason of the first failing check, or null when the row is good."""

    def value(reason: pl.Expr | str) -> pl.Expr:
        return pl.lit(reason) if isinstance(reason, str) else reason

    expr: Any = pl.when(checks[0][0]).then(value(checks[0][1]))
    for condition, reason in checks[1:]:
        expr = expr.when(condition).then(value(reason))
    return expr.otherwise(None).cast(pl.String).alias(REASON)


def with_track_fields(rows: pl.DataFrame, prefix: str) -> pl.DataFrame:
    """Parsed track fields (``_title``, ``_artist``, ``_isrc``, ``_duration``, …) and the track source key."""
    out = rows.with_columns(
        k.clean_text(pl.col("title")).alias("_title"),
        k.clean_text(pl.col("artist")).alias("_artist"),
        k.clean_text(pl.col("album")).alias("_album"),
        c.isrc(pl.col("isrc")).alias("_isrc"),
        c.duration_ms(pl.col("duration_ms"), pl.col("duration")).alias("_duration"),
        c.year(pl.col("year")).alias("_year")
        if "year" in rows.columns
        else pl.lit(None, pl.Int32).alias("_year"),
        c.spotify_uri(pl.col("track_id")).alias("_spotify"),
        c.blank(pl.col("track_id")).alias("_id"),
    )
    return out.with_columns(
        pl.coalesce(
            pl.col("_spotify"),
            pl.when(pl.col("_isrc").str.contains(c.ISRC_PATTERN)).then(pl.lit("isrc:") + pl.col("_isrc")),
            pl.lit(f"{prefix}:") + pl.col("_id"),
            c.name_track_key(pl.col("_artist"), pl.col("_title")),
        ).alias("_track_key")
    )


def encoding_check(kind: str) -> tuple[pl.Expr, str]:
    """Rows where a value holds U+FFFD: bytes that were not UTF-8 (read lossily, see ``open_table``)."""
    fields = [f for f in c.KIND_FIELDS[kind]]
    return (
        pl.any_horizontal([pl.col(f).str.contains("\ufffd", literal=True).fill_null(False) for f in fields]),
        "invalid UTF-8 in the row",
    )


def track_checks(rows: pl.DataFrame, *, require_names: bool = True) -> list[tuple[pl.Expr, pl.Expr | str]]:
    raw_duration = pl.coalesce(c.blank(pl.col("duration_ms")), c.blank(pl.col("duration")))
    checks: list[tuple[pl.Expr, pl.Expr | str]] = [*c.id_checks({"track_id": pl.col("track_id")})]
    if require_names:
        checks += [
            (pl.col("_title").is_null(), "missing field: title"),
            (pl.col("_artist").is_null(), "missing field: artist"),
        ]
    checks += [
        (
            pl.col("_isrc").is_not_null() & ~pl.col("_isrc").str.contains(c.ISRC_PATTERN),
            pl.lit("invalid isrc: ") + c.quoted(pl.col("isrc")),
        ),
        (
            raw_duration.is_not_null() & pl.col("_duration").is_null(),
            pl.lit("invalid duration: ") + c.quoted(raw_duration),
        ),
    ]
    if "year" in rows.columns:
        checks.append(
            (
                c.blank(pl.col("year")).is_not_null() & pl.col("_year").is_null(),
                pl.lit("invalid year: ") + c.quoted(pl.col("year")),
            )
        )
    return checks


def raw_track_columns(mbid: pl.Expr | None = None, prefix: str = "raw_") -> list[pl.Expr]:
    """The columns of ``normalize.RAW_TRACK``, each named with ``prefix``, from parsed track fields
    (``with_track_fields``); ``mbid`` for the MusicBrainz id, null without it."""
    valid_isrc = pl.col("_isrc").str.contains(c.ISRC_PATTERN)
    return [
        pl.col("_track_key").alias(f"{prefix}source_key"),
        pl.col("_spotify").alias(f"{prefix}spotify_uri"),
        pl.when(valid_isrc).then(pl.col("_isrc")).alias(f"{prefix}isrc"),
        (mbid if mbid is not None else pl.lit(None, pl.String)).alias(f"{prefix}mbid"),
        pl.col("_title").alias(f"{prefix}title"),
        pl.col("_artist").alias(f"{prefix}artist_credit"),
        pl.lit(None, pl.String).alias(f"{prefix}artist_uri"),
        pl.col("_album").alias(f"{prefix}album_title"),
        pl.lit(None, pl.String).alias(f"{prefix}album_uri"),
        pl.lit(None, pl.String).alias(f"{prefix}album_type"),
        pl.col("_year").alias(f"{prefix}release_year"),
        pl.col("_duration").alias(f"{prefix}duration_ms"),
    ]


def log_rejects(log: batches.RejectLog, bad: pl.DataFrame, location: str, fields: tuple[str, ...]) -> None:
    for record in bad.select(ROW, REASON, *fields).iter_rows(named=True):
        raw = {f: record[f] for f in fields if record[f] is not None}
        log.add(f"{location}: row {record[ROW]}", record[REASON], raw)


def check_prefix(id_prefix: str) -> None:
    """InputError when the prefix of the keys made from ids is itself too long to key anything."""
    size = len(id_prefix.encode("utf-8", "surrogateescape"))
    if size > MAX_PREFIX_BYTES:
        raise InputError(f"--id-prefix of {size:,} bytes: an id prefix is at most {MAX_PREFIX_BYTES}")
