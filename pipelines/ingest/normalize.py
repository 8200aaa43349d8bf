"""Pure Polars transforms from raw source records to the catalog's normalised frames.

Every source parser produces *raw tracks* (one row per track occurrence, schema
``RAW_TRACK``) and, for playlists, *raw entries* (``playlist_key, position, track_key``);
these functions turn them into the deduplicated frames ``recsys.catalog.merges`` loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from pipelines.ingest.guards import MAX_NAME_CHARS
from recsys.catalog import keys as k
from recsys.catalog.batches import RejectLog
from recsys.catalog.frames import (
    ALBUMS,
    ARTISTS,
    ENTRIES,
    PLAYLISTS,
    REJECTS,
    TRACK_ARTISTS,
    TRACKS,
    CatalogChunk,
    conform,
)

RAW_TRACK = {
    "source_key": pl.String,  # spotify:track:…, isrc:…, audio:<sha256>, name:<artist>|<title>, ...
    "spotify_uri": pl.String,
    "isrc": pl.String,
    "mbid": pl.String,
    "title": pl.String,
    "artist_credit": pl.String,  # as credited: "A feat. B"
    "artist_uri": pl.String,  # Spotify URI of the primary artist, when known
    "album_title": pl.String,
    "album_uri": pl.String,
    "album_type": pl.String,
    "release_year": pl.Int32,
    "duration_ms": pl.Int64,
}

SPOTIFY_TRACK_URI = r"^spotify:track:[0-9A-Za-z]{22}$"


def raw_tracks_frame(rows: dict[str, list]) -> pl.DataFrame:
    """A raw-track frame from column lists (missing columns are null)."""
    height = len(next(iter(rows.values()))) if rows else 0
    return pl.DataFrame(
        {name: rows.get(name, [None] * height) for name in RAW_TRACK}, schema=RAW_TRACK, strict=False
    )


# Per column, the stages of expressions deriving columns from it: given whether every value is
# printable ASCII (keys.PRINTABLE_ASCII), for which keys.clean_text and keys.name_key skip their
# Unicode steps.
Stages = Callable[[bool], list[list[pl.Expr]]]


def _by_value(frame: pl.DataFrame, derivations: dict[str, Stages]) -> pl.DataFrame:
    """``frame`` with the columns derived from single columns of it, per column a list of stages
    of expressions (each stage may use the columns of the ones before).

    Names repeat (an artist over all their tracks, an album over its own): each
    distinct value is normalised once, and the results are joined back. Distinct
    values of printable ASCII (most names) take the stages' cheaper ASCII form, which
    gives the same results.
    """
    tables = []
    for column, stages in derivations.items():
        values = frame.lazy().select(pl.col(column).unique())
        printable = pl.col(column).str.contains(k.PRINTABLE_ASCII).fill_null(False)
        parts = []
        for ascii, part in ((True, values.filter(printable)), (False, values.filter(~printable))):
            for stage in stages(ascii):
                part = part.with_columns(stage)
            parts.append(part)
        tables.append(pl.concat(parts))
    joined = frame.lazy()
    for column, table in zip(derivations, pl.collect_all(tables), strict=True):
        joined = joined.join(table.lazy(), on=column, how="left", nulls_equal=True, maintain_order="left")
    return joined.collect()


# What the cleaning derives from each text column of a raw track, computed once per distinct value:
# the cleaned text itself (under a temporary name) and the keys made from it.
def _artist_stages(ascii: bool) -> list[list[pl.Expr]]:
    return [
        [k.clean_text(pl.col("artist_credit"), ascii=ascii).alias("_artist_credit")],
        [k.primary_artist(pl.col("_artist_credit")).alias("primary_name")],
        [("name:" + k.name_key(pl.col("primary_name"), ascii=ascii)).alias("artist_key")],
    ]


def _album_stages(ascii: bool) -> list[list[pl.Expr]]:
    return [
        [k.clean_text(pl.col("album_title"), ascii=ascii).alias("_album_title")],
        [k.name_key(pl.col("_album_title"), ascii=ascii).alias("_album_name_key")],
    ]


def _title_stages(ascii: bool) -> list[list[pl.Expr]]:
    return [
        [k.clean_text(pl.col("title"), ascii=ascii).alias("_title")],
        [
            k.name_key(pl.col("_title").fill_null(""), ascii=ascii).alias("title_key"),
            # keys.recording_key's title part
            k.name_key(k.title_base(pl.col("_title").fill_null("")), ascii=ascii).alias("_title_base_key"),
        ],
    ]


def _credit_stages(ascii: bool) -> list[list[pl.Expr]]:
    return [[("name:" + k.name_key(pl.col("name"), ascii=ascii)).alias("artist_key")]]


def _cleaned(raw: pl.DataFrame) -> pl.DataFrame:
    """Raw tracks with their text cleaned, their primary artist, artist key and title keys."""
    frame = raw.with_columns(pl.col("isrc").str.to_uppercase().str.replace_all(r"[^0-9A-Z]", ""))
    frame = _by_value(
        frame, {"artist_credit": _artist_stages, "album_title": _album_stages, "title": _title_stages}
    )
    return frame.with_columns(
        pl.col("_artist_credit").alias("artist_credit"),
        pl.col("_album_title").alias("album_title"),
        pl.col("_title").alias("title"),
    ).drop("_artist_credit", "_album_title", "_title")


# Values a later occurrence of a track may add when the first lacks them, in a chunk as in
# the catalog (merges.merge_chunk fills the same ones into known tracks).
_FILLED = ("artist_uri", "duration_ms", "isrc", "release_year")
# Row (in the raw frame) that gave a track its album: an album's own fields come from its first such row.
ALBUM_ROW = "album_row"


def distinct_tracks(raw: pl.DataFrame) -> pl.DataFrame:
    """One raw track per source key, in first-occurrence order.

    The first occurrence gives the title and credits; the album (title and URI together),
    duration, ISRC, year and artist URI come from the first occurrence that has them.
    So a chunk resolves repeated tracks exactly as merging them one chunk after another
    would: where the chunk boundaries fall changes nothing. The added ``album_row`` column
    (kept when already there) orders a chunk's albums (:func:`assemble`).

    Usually a track's first occurrence already holds every value a later one could
    add, so the first occurrences are taken as they are, and only the tracks whose
    first occurrence lacks a value some row of the frame has are aggregated over all
    their occurrences (:func:`_filled_tracks`).
    """
    frame = raw
    if ALBUM_ROW not in raw.columns:
        frame = raw.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias(ALBUM_ROW))
    has_album = pl.col("album_uri").is_not_null() | pl.col("album_title").is_not_null()
    first = frame.unique(subset="source_key", keep="first", maintain_order=True).with_columns(
        pl.when(has_album).then(pl.col(ALBUM_ROW)).alias(ALBUM_ROW)
    )
    if first.height == frame.height:
        return first
    # A value missing from a first occurrence can only come from a row of this frame that has it.
    *present, album_present = frame.select(
        *(pl.col(c).is_not_null().any() for c in _FILLED), has_album.any().alias("album")
    ).row(0)
    missing = [pl.col(c).is_null() for c, there in zip(_FILLED, present, strict=True) if there]
    if album_present:
        missing.append(~has_album)
    lacking = (
        first.filter(pl.any_horizontal(missing))["source_key"] if missing else pl.Series([], dtype=pl.String)
    )
    if not lacking.len():
        return first
    filled = _filled_tracks(frame.filter(pl.col("source_key").is_in(lacking.implode())), has_album)
    return first.update(filled, on="source_key", include_nulls=True)


def _filled_tracks(frame: pl.DataFrame, has_album: pl.Expr) -> pl.DataFrame:
    """:func:`distinct_tracks` by aggregating every occurrence of every track of ``frame``."""
    fills = frame.group_by("source_key", maintain_order=True).agg(
        *[pl.col(c).drop_nulls().first().alias(c) for c in _FILLED],
        *[pl.col(c).filter(has_album).first().alias(c) for c in ("album_title", "album_uri", ALBUM_ROW)],
    )
    first = frame.unique(subset="source_key", keep="first", maintain_order=True)
    filled = ["album_title", "album_uri", ALBUM_ROW, *_FILLED]
    return (
        first.drop(filled)
        .join(fills, on="source_key", how="left", maintain_order="left")
        .select(frame.columns)
    )


def _prepared(raw: pl.DataFrame) -> pl.DataFrame:
    """Distinct raw tracks, cleaned, with their artist, album and title keys."""
    tracks_in = _cleaned(distinct_tracks(raw))
    album_key = (
        pl.when(pl.col("album_uri").is_not_null())
        .then(pl.col("album_uri"))
        .when(pl.col("album_title").is_not_null())
        .then(
            pl.concat_str(
                [pl.lit("name:"), pl.col("artist_key").str.slice(5), pl.lit("|"), pl.col("_album_name_key")]
            )
        )
        .otherwise(None)
    )
    return tracks_in.with_columns(album_key.alias("album_key")).drop("_album_name_key")


def _row_frames(tracks_in: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(credits, tracks): what each distinct track gives on its own, one or more rows per track."""
    credits = (
        tracks_in.select(
            "source_key",
            pl.concat_list(
                pl.col("primary_name"), k.featured_artists(pl.col("artist_credit"), pl.col("title"))
            ).alias("names"),
        )
        .explode("names")
        .with_columns(
            pl.int_range(pl.len()).over("source_key").cast(pl.Int32).alias("position"),
        )
        .rename({"names": "name"})
        .filter(pl.col("name").is_not_null() & (pl.col("name").str.len_chars() > 0))
    )
    credits = (
        _by_value(credits, {"name": _credit_stages})
        .with_columns(
            pl.when(pl.col("position") == 0)
            .then(pl.lit("primary"))
            .otherwise(pl.lit("featured"))
            .alias("role")
        )
        .filter(pl.col("artist_key") != "name:")
    )
    tracks = tracks_in.select(
        "source_key",
        "spotify_uri",
        "isrc",
        "mbid",
        pl.col("title").fill_null(""),
        "title_key",
        "artist_key",
        pl.col("artist_credit").fill_null("").alias("artist_name"),
        "album_key",
        "duration_ms",
        pl.col("release_year").alias("year"),
        # keys.recording_key, from the primary artist's key and the title's base key computed above.
        pl.concat_str(
            [pl.col("artist_key").str.slice(5).fill_null(""), pl.lit("|"), pl.col("_title_base_key")]
        ).alias("recording_key"),
    )
    return credits, tracks


def _set_frames(
    tracks_in: pl.LazyFrame, credits: pl.LazyFrame
) -> tuple[pl.LazyFrame, pl.LazyFrame, pl.LazyFrame]:
    """(artists, albums, track_artists): one row per key, the first occurrence winning."""
    primary_uris = (
        tracks_in.select(pl.col("artist_key").alias("source_key"), pl.col("artist_uri").alias("spotify_uri"))
        .filter(pl.col("spotify_uri").is_not_null())
        .unique(subset="source_key", keep="first", maintain_order=True)
    )
    artists = (
        credits.select(pl.col("artist_key").alias("source_key"), "name")
        .unique(subset="source_key", keep="first", maintain_order=True)
        .with_columns(pl.col("source_key").str.slice(5).alias("name_key"))
        .join(primary_uris, on="source_key", how="left", maintain_order="left")
    )
    albums = (
        tracks_in.filter(pl.col("album_key").is_not_null())
        .sort(ALBUM_ROW, maintain_order=True)
        .select(
            pl.col("album_key").alias("source_key"),
            pl.col("album_title").fill_null("").alias("title"),
            "artist_key",
            pl.col("album_uri").alias("spotify_uri"),
            "release_year",
            "album_type",
        )
        .unique(subset="source_key", keep="first", maintain_order=True)
    )
    track_artists = credits.select(
        pl.col("source_key").alias("track_key"), "position", "artist_key", "role"
    ).unique(subset=["track_key", "position"], keep="first", maintain_order=True)
    return artists, albums, track_artists


# Text columns of raw tracks and of playlists that a source may fill with names of any length.
_TRACK_TEXT = ("title", "artist_credit", "album_title")
_PLAYLIST_TEXT = ("name", "description")


def capped_names(frame: pl.DataFrame, columns: tuple[str, ...], max_chars: int) -> pl.DataFrame:
    """The ``source_key, field, chars`` of each value of ``columns`` longer than ``max_chars`` characters."""
    present = [c for c in columns if c in frame.columns]
    if not present or not frame.height:
        return pl.DataFrame(schema={"source_key": pl.String, "field": pl.String, "chars": pl.Int64})
    return pl.concat(
        [
            frame.filter(pl.col(c).str.len_chars() > max_chars).select(
                pl.col("source_key"),
                pl.lit(c).alias("field"),
                pl.col(c).str.len_chars().cast(pl.Int64).alias("chars"),
            )
            for c in present
        ]
    )


def cut_names(frame: pl.DataFrame, columns: tuple[str, ...], max_chars: int) -> pl.DataFrame:
    """``frame`` with every value of ``columns`` cut to ``max_chars`` characters."""
    return frame.with_columns(pl.col(c).str.head(max_chars) for c in columns if c in frame.columns)


def name_cut_reason(field: str, chars: int, max_chars: int) -> str:
    return f"{field} of {chars:,} characters cut to {max_chars:,} (RECSYS_MAX_NAME_CHARS)"


def log_cut_names(log: RejectLog, capped: pl.DataFrame, what: str, max_chars: int) -> None:
    for key, field, chars in capped.iter_rows():
        log.add(f"{what} {key}", name_cut_reason(field, chars, max_chars), {"source_key": key})


@dataclass
class PreparedTracks:
    """Distinct raw tracks normalised row by row: the costly part of :func:`build_chunk`.

    Every row depends on its own track alone, so the tracks a chunk turns out not to
    need can be dropped afterwards (:meth:`without`) and :func:`assemble` gives exactly
    what :func:`build_chunk` gives for the remaining raw tracks.
    """

    tracks_in: pl.DataFrame  # cleaned distinct raw tracks with their artist and album keys
    credits: pl.DataFrame  # each track's credited artists, in credit order
    tracks: pl.DataFrame  # TRACKS rows
    capped: pl.DataFrame | None = None  # names cut to the limit (capped_names), for reject rows

    def without(self, keys: pl.Series) -> PreparedTracks:
        if not keys.len():
            return self
        gone = keys.implode()
        return PreparedTracks(
            *(
                frame.filter(~pl.col("source_key").is_in(gone))
                for frame in (self.tracks_in, self.credits, self.tracks)
            )
        )


def prepare_tracks(raw_tracks: pl.DataFrame, max_name_chars: int = MAX_NAME_CHARS) -> PreparedTracks:
    """Distinct, cleaned raw tracks with everything each gives on its own.

    Titles, artist credits and album titles are cut to ``max_name_chars`` characters
    first (the names cut are in ``capped``), whatever the source.
    """
    capped = capped_names(raw_tracks, _TRACK_TEXT, max_name_chars)
    if capped.height:
        raw_tracks = cut_names(raw_tracks, _TRACK_TEXT, max_name_chars)
    tracks_in = _prepared(raw_tracks)
    credits, tracks = _row_frames(tracks_in)
    return PreparedTracks(tracks_in, credits, tracks, capped.unique(maintain_order=True))


def playlist_frame(
    rows: dict[str, list] | pl.DataFrame, max_name_chars: int = MAX_NAME_CHARS, log: RejectLog | None = None
) -> pl.LazyFrame:
    """Playlists (columns or a frame) with cleaned names and their match keys.

    Names and descriptions are cut to ``max_name_chars`` characters, each cut one
    reject row in ``log`` when it is given.
    """
    frame = conform(pl.DataFrame(rows, strict=False), PLAYLISTS)
    capped = capped_names(frame, _PLAYLIST_TEXT, max_name_chars)
    if capped.height:
        frame = cut_names(frame, _PLAYLIST_TEXT, max_name_chars)
        if log is not None:
            log_cut_names(log, capped, "playlist", max_name_chars)
    return (
        frame.lazy()
        .with_columns(
            k.clean_text(pl.col("name")).fill_null("").alias("name"),
            k.clean_text(pl.col("description")).alias("description"),
        )
        .with_columns(k.name_key(pl.col("name")).alias("name_key"))
    )


def build_chunk(
    raw_tracks: pl.DataFrame,
    playlists: pl.LazyFrame | None = None,
    entries: pl.DataFrame | None = None,
    rejects: pl.DataFrame | None = None,
    *,
    log: RejectLog | None = None,
    max_name_chars: int = MAX_NAME_CHARS,
) -> CatalogChunk:
    """Collect every frame of one chunk in one pass.

    A track name cut to ``max_name_chars`` is one reject row in ``log`` when it is given
    (the caller stores it), and in the chunk's ``rejects`` too when those are given.
    """
    # Cleaning is the costly part: do it once, on distinct tracks, for every frame below.
    prepared = prepare_tracks(raw_tracks, max_name_chars)
    if log is not None and prepared.capped is not None and prepared.capped.height:
        before = len(log.rows)
        log_cut_names(log, prepared.capped, "track", max_name_chars)
        if rejects is not None:
            added = pl.DataFrame(log.rows[before:], schema=REJECTS)
            rejects = pl.concat([conform(rejects, REJECTS), added])
    return assemble(prepared, playlists, entries, rejects)


def assemble(
    prepared: PreparedTracks,
    playlists: pl.LazyFrame | pl.DataFrame | None = None,
    entries: pl.DataFrame | None = None,
    rejects: pl.DataFrame | None = None,
) -> CatalogChunk:
    """The chunk of prepared tracks: their artists, albums and credits, one row per key."""
    frames = list(_set_frames(prepared.tracks_in.lazy(), prepared.credits.lazy()))
    if playlists is not None:
        frames.append(playlists.lazy())
    collected = pl.collect_all(frames)
    chunk = CatalogChunk(
        artists=conform(collected[0], ARTISTS),
        albums=conform(collected[1], ALBUMS),
        tracks=conform(prepared.tracks, TRACKS),
        track_artists=conform(collected[2], TRACK_ARTISTS),
    )
    if playlists is not None:
        chunk.playlists = conform(collected[3], PLAYLISTS)
    if entries is not None:
        chunk.entries = conform(entries, ENTRIES)
    if rejects is not None:
        chunk.rejects = conform(rejects, REJECTS)
    return chunk
