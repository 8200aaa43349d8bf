"""The load memory: the rows one load has found in or written to the catalog, so it need not look them up again.

Used by the MPD loader (``pipelines.ingest.mpd``), whose chunks name the same popular
tracks again and again: :class:`KnownTracks` remembers each track's id and which of
the values a later occurrence could add (:data:`~recsys.catalog.frames.HELD`) its row
holds, and the artists and albums met, so a chunk looks up and writes only what the
load has not settled yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import Connection, text

from recsys.catalog.frames import HELD, KNOWN_ALBUMS, KNOWN_ARTISTS, KNOWN_TRACKS
from recsys.catalog.staging import query_frame

# Every track as KNOWN_TRACKS, the same values read with the artist joined rather than looked up per row.
_ALL_TRACKS = """SELECT track.source_key, track.id, track.album_id IS NOT NULL, track.duration_ms IS NOT NULL,
                     track.isrc IS NOT NULL, track.year IS NOT NULL, COALESCE(artist.spotify_uri IS NOT NULL, false)
                 FROM track LEFT JOIN artist ON artist.id = track.artist_id"""


def brought(raw: pl.DataFrame) -> pl.DataFrame:
    """Per raw track (``RAW_TRACK`` columns), which of the :data:`HELD` values this occurrence brings."""
    return raw.select(
        pl.col("source_key").cast(pl.String),
        (pl.col("album_uri").is_not_null() | pl.col("album_title").is_not_null()).alias("has_album"),
        pl.col("duration_ms").is_not_null().alias("has_duration"),
        pl.col("isrc").is_not_null().alias("has_isrc"),
        pl.col("release_year").is_not_null().alias("has_year"),
        pl.col("artist_uri").is_not_null().alias("has_artist_uri"),
    )


# Over ``wanted`` joined with what is held (suffix ``_held``): the row holds every value the occurrence brings.
_HOLDS_ALL = pl.all_horizontal(pl.col(f"{name}_held") | ~pl.col(name) for name in HELD)


def settled(wanted: pl.DataFrame, held: pl.DataFrame) -> pl.DataFrame:
    """``source_key, id`` of the tracks whose catalog row already holds every value this occurrence brings.

    ``wanted`` has the source key and, per value, whether this occurrence brings it
    (:data:`HELD` names); ``held`` has what the catalog holds (``KNOWN_TRACKS``).
    """
    return _holding_all(wanted.join(held, on="source_key", how="inner", suffix="_held"))


def _holding_all(joined: pl.DataFrame) -> pl.DataFrame:
    """``source_key, id`` of the rows of ``joined`` (see :func:`settled`) that hold all they are brought."""
    return joined.filter(_HOLDS_ALL).select("source_key", "id")


# Memory's hidden column: a 64-bit hash of each row's source key.
_KEY_HASH = "_key_hash"
# A probe's row number, while a lookup runs.
_ROW = "_row"


class KnownRows:
    """Rows one load has found in or written to the catalog, by source key, so it need not look them up again.

    At most ``limit`` rows are kept (the most recently seen), so memory stays bounded;
    ``evicted`` says that some were let go. Every chunk probes the whole memory, so rows
    are matched on a 64-bit hash of their key, kept beside it (integers join several
    times faster than strings), and each match is then confirmed on the key itself:
    two keys that share a hash are never taken for one another.

    Rows are only ever appended (a row met again is moved to the end), so a lookup can
    be confined to the rows appended after a count of them (``since``; a
    :class:`Survey` records it). Lookups may run in any thread; rows are added by one
    thread at a time.
    """

    def __init__(self, schema: dict[str, Any], limit: int) -> None:
        self.schema = schema
        self.limit = limit
        # The rows, and how many rows were ever appended: read and replaced together.
        self._state = (pl.DataFrame(schema=schema | {_KEY_HASH: pl.UInt64}), 0)
        self.evicted = False

    @staticmethod
    def key_hash(keys: pl.Expr) -> pl.Expr:
        return keys.hash(seed=0)

    @property
    def frame(self) -> pl.DataFrame:
        """The known rows, oldest first."""
        return self._state[0].drop(_KEY_HASH)

    def lookup(self, probe: pl.DataFrame, suffix: str = "_known", since: int | None = None) -> pl.DataFrame:
        """The rows of ``probe`` whose ``source_key`` is known, with the known row's columns
        (those whose names clash take ``suffix``); with ``since``, known from the rows appended
        after the first ``since`` ever appended."""
        rows, appended = self._state
        return self._lookup(rows if since is None else rows.tail(appended - since), probe, suffix)

    def _lookup(self, rows: pl.DataFrame, probe: pl.DataFrame, suffix: str) -> pl.DataFrame:
        hashed = probe.with_columns(self.key_hash(pl.col("source_key")).alias(_KEY_HASH))
        joined = hashed.join(rows, on=_KEY_HASH, how="inner", suffix=suffix)
        return joined.filter(pl.col("source_key") == pl.col(f"source_key{suffix}")).drop(
            _KEY_HASH, f"source_key{suffix}"
        )

    def find(self, keys: pl.Series) -> pl.DataFrame:
        """The known rows of ``keys``."""
        probe = pl.DataFrame({"source_key": keys.unique()}, schema={"source_key": pl.String})
        return self.lookup(probe).select(list(self.schema))

    def add(self, *frames: pl.DataFrame, among: pl.Series | None = None) -> None:
        """Remember the rows of ``frames`` (the last of each key), replacing those known by the same keys.

        ``among``, when given, holds the only keys of ``frames`` the memory may know
        already (a lookup just made found them, and nothing was added since): the
        memory is searched for rows to replace only when one of those comes.
        """
        fresh = (
            pl.concat([f.select(list(self.schema)) for f in frames])
            .unique(subset="source_key", keep="last", maintain_order=True)
            .with_columns(self.key_hash(pl.col("source_key")).alias(_KEY_HASH))
        )
        rows, appended = self._state
        candidates = fresh if among is None else fresh.filter(pl.col("source_key").is_in(among.implode()))
        # Rows met again are replaced; usually there are none, and the known rows are not copied.
        hit = rows[_KEY_HASH].is_in(candidates[_KEY_HASH].implode()) if candidates.height else None
        if hit is not None and hit.any():
            # A known row that only shares its key's hash with a fresh one stays.
            kept = rows.filter(hit).join(fresh.select("source_key"), on="source_key", how="anti")
            rows = pl.concat([rows.filter(~hit), kept])
            appended += kept.height
        rows = pl.concat([rows, fresh], rechunk=False)
        appended += fresh.height
        if rows.height > self.limit:
            self.evicted = True
            rows = rows.tail(self.limit)
        self._state = (rows.rechunk() if rows.n_chunks() > 64 else rows, appended)


@dataclass(frozen=True)
class Survey:
    """What a :class:`KnownTracks` memory knew of a chunk's wanted tracks at one moment (:meth:`KnownTracks.survey`)."""

    settled: pl.DataFrame  # source_key, id: the tracks that held then, and so hold now, all they bring
    lacking: pl.DataFrame  # the known tracks lacking a value they bring: wanted's columns, id, held values
    rest: pl.DataFrame  # the wanted rows not settled then: the lacking and the unknown
    mark: int  # how many rows the memory had ever appended then


class KnownTracks(KnownRows):
    """Tracks one load has found in or written to the catalog, so it need not look them up again.

    Holds each track's id and which of the values a later occurrence could add its row
    already has. Values are only ever added to a track, never taken away, so a value
    recorded as held stays held: a track this cache calls settled is settled. A track
    it does not know, or records as lacking something, is looked up again. The artists
    and albums the load has met are kept too (id, and whether the artist has its URI),
    so new tracks arrive with their ids resolved and known ones are not written again.

    :meth:`prime` reads the whole catalog in when it fits: the memory is then
    *complete* (until it evicts a row), and a track it does not know is taken for a
    new one and inserted without being looked up first. One that another process
    wrote in the meantime is caught by the insert's ``ON CONFLICT`` and merged as a
    known track.
    """

    def __init__(self, limit: int = 4_000_000) -> None:
        super().__init__(KNOWN_TRACKS, limit)
        self.artists = KnownRows(KNOWN_ARTISTS, limit)
        self.albums = KnownRows(KNOWN_ALBUMS, limit)
        self.primed = False

    @property
    def complete(self) -> bool:
        """Whether every track, artist and album of the catalog is known (as of :meth:`prime`)."""
        return self.primed and not (self.evicted or self.artists.evicted or self.albums.evicted)

    def prime(self, conn: Connection) -> None:
        """Read every track, artist and album of the catalog, unless one table holds more than ``limit`` rows."""
        counts = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM track), (SELECT count(*) FROM artist), (SELECT count(*) FROM album)"
            )
        ).one()
        if max(counts) > self.limit:
            return
        if counts[0]:
            self.add(query_frame(conn, _ALL_TRACKS, schema=KNOWN_TRACKS))
        if counts[1]:
            self.artists.add(
                query_frame(conn, "SELECT source_key, id, spotify_uri IS NOT NULL FROM artist", KNOWN_ARTISTS)
            )
        if counts[2]:
            self.albums.add(query_frame(conn, "SELECT source_key, id FROM album", KNOWN_ALBUMS))
        self.primed = True

    def survey(self, wanted: pl.DataFrame) -> Survey:
        """What this memory knows now of ``wanted`` (as for :func:`settled`), for :meth:`classify` to finish later."""
        rows, mark = self._state
        held = self._lookup(rows, wanted.with_row_index(_ROW), "_held")
        holding = held.filter(_HOLDS_ALL)
        settled_rows = np.zeros(wanted.height, dtype=bool)
        settled_rows[holding[_ROW].to_numpy()] = True
        return Survey(
            settled=holding.select("source_key", "id"),
            lacking=held.filter(~_HOLDS_ALL).drop(_ROW),
            rest=wanted.filter(~pl.Series(settled_rows)),
            mark=mark,
        )

    def classify(self, survey: Survey) -> tuple[pl.DataFrame, pl.Series, pl.Series]:
        """The tracks of a surveyed ``wanted`` this memory knows settled now (``source_key, id``),
        those it knows lacking a value their occurrence brings, and those it does not know (keys).

        Only the tracks not settled when surveyed are looked up again, among the rows
        added since: a settled track stays settled, and a row added later replaces the
        one surveyed.
        """
        since = self.lookup(survey.rest, suffix="_held", since=survey.mark)
        held = pl.concat(
            [survey.lacking.join(since.select("source_key"), on="source_key", how="anti"), since]
        )
        return (
            pl.concat([survey.settled, _holding_all(since)]),
            held.filter(~_HOLDS_ALL)["source_key"],
            survey.rest.join(held.select("source_key"), on="source_key", how="anti")["source_key"],
        )
