"""The frames a source parser hands to the catalog loader: their exact schemas, and the chunk that holds them.

Column order matters: a frame is staged (:mod:`recsys.catalog.staging`) with its
columns in schema order. :func:`conform` selects and casts any frame to a schema, so
a parser may build its columns in any order and leave out the ones it lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

# The exact frames a source parser hands to the loader (column order matters for staging).
ARTISTS = {"source_key": pl.String, "name": pl.String, "name_key": pl.String, "spotify_uri": pl.String}
ALBUMS = {
    "source_key": pl.String,
    "title": pl.String,
    "artist_key": pl.String,
    "spotify_uri": pl.String,
    "release_year": pl.Int32,
    "album_type": pl.String,
}
TRACKS = {
    "source_key": pl.String,
    "spotify_uri": pl.String,
    "isrc": pl.String,
    "mbid": pl.String,
    "title": pl.String,
    "title_key": pl.String,
    "artist_key": pl.String,
    "artist_name": pl.String,
    "album_key": pl.String,
    "duration_ms": pl.Int64,
    "year": pl.Int32,
    "recording_key": pl.String,
}
TRACK_ARTISTS = {"track_key": pl.String, "position": pl.Int32, "artist_key": pl.String, "role": pl.String}
PLAYLISTS = {
    "source_key": pl.String,
    "name": pl.String,
    "name_key": pl.String,
    "description": pl.String,
    "owner": pl.String,
    "num_followers": pl.Int64,
    "collaborative": pl.Boolean,
    "modified_at": pl.Datetime("us", "UTC"),
    "num_tracks": pl.Int64,
    "batch_id": pl.Int64,
}
ENTRIES = {"playlist_key": pl.String, "position": pl.Int32, "track_key": pl.String}
REJECTS = {
    "reject_key": pl.String,
    "batch_id": pl.Int64,
    "source": pl.String,
    "location": pl.String,
    "reason": pl.String,
    "raw": pl.String,
}

# Values a later occurrence of a track may add to its row, and how the row is checked for each.
HELD = ("has_album", "has_duration", "has_isrc", "has_year", "has_artist_uri")
# A track known to be in the catalog: its id and which of those values its row holds.
KNOWN_TRACKS: dict[str, Any] = {"source_key": pl.String, "id": pl.Int64} | {name: pl.Boolean for name in HELD}
KNOWN_ARTISTS: dict[str, Any] = {"source_key": pl.String, "id": pl.Int64, "has_uri": pl.Boolean}
KNOWN_ALBUMS: dict[str, Any] = {"source_key": pl.String, "id": pl.Int64}


def empty(schema: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def conform(frame: pl.DataFrame, schema: dict[str, Any]) -> pl.DataFrame:
    """Select and cast ``frame`` to ``schema`` (missing columns become nulls)."""
    return frame.select(
        [
            (pl.col(name) if name in frame.columns else pl.lit(None)).cast(dtype).alias(name)
            for name, dtype in schema.items()
        ]
    )


@dataclass
class CatalogChunk:
    """Normalised, deduplicated frames for one transaction of catalog loading."""

    artists: pl.DataFrame = field(default_factory=lambda: empty(ARTISTS))
    albums: pl.DataFrame = field(default_factory=lambda: empty(ALBUMS))
    tracks: pl.DataFrame = field(default_factory=lambda: empty(TRACKS))
    track_artists: pl.DataFrame = field(default_factory=lambda: empty(TRACK_ARTISTS))
    playlists: pl.DataFrame = field(default_factory=lambda: empty(PLAYLISTS))
    entries: pl.DataFrame = field(default_factory=lambda: empty(ENTRIES))
    rejects: pl.DataFrame = field(default_factory=lambda: empty(REJECTS))
    # Filled by merge_dimensions when given the known tracks: the tracks it inserted (KNOWN_TRACKS).
    new_tracks: pl.DataFrame = field(default_factory=lambda: empty(KNOWN_TRACKS))
