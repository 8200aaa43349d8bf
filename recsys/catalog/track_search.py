"""Finding tracks by words, and the local audio files of tracks.

Words are matched through the catalog's own match keys (``keys.name_key``: case-folded,
punctuation dropped, the same rules on every backend), so "beyonce halo" finds
"Beyoncé – Halo" wherever the keys agree and a search never depends on the database's
collation. Every search is bounded: a page of hits, never the whole catalog.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import ColumnElement, Engine, func, select
from sqlalchemy.orm import QueryableAttribute

from recsys.catalog import keys
from recsys.catalog.schema import Artist, AudioAsset, PlaylistTrack, Track

MAX_HITS = 200
# Tracks that match the words are ranked by how many playlists hold them; at most this many
# matches are counted, so a very common word costs a bounded query.
_RANKED = 2_000


def query_words(text: str) -> list[str]:
    """The match keys of the words of ``text`` (empty when it holds no letters or digits)."""
    key = keys.apply_one(keys.name_key, text or "")
    return str(key or "").split()


def like_pattern(word: str) -> str:
    """A LIKE pattern matching ``word`` anywhere, with LIKE's own characters escaped."""
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def words_match(
    column: ColumnElement[str] | QueryableAttribute[str], words: list[str]
) -> list[ColumnElement[bool]]:
    """One condition per word: the key column contains it."""
    return [column.like(like_pattern(w), escape="\\") for w in words]


@dataclass(frozen=True)
class TrackHit:
    track_id: int
    title: str
    artist: str
    duration_ms: int | None
    playlists: int  # entries in playlists: how well known the track is

    @property
    def label(self) -> str:
        return f"{self.title} — {self.artist}"


def search_tracks(engine: Engine, text: str, *, limit: int = 25, offset: int = 0) -> list[TrackHit]:
    """Tracks whose title and artist together hold every word of ``text``, best known first.

    A number alone also finds the track with that id. At most ``limit`` hits (≤ 200), after
    the first ``offset`` (a page further on); the ranking covers the first 2,000 matches.
    """
    words = query_words(text)
    limit = max(1, min(limit, MAX_HITS))
    if not words:
        return []
    haystack = Track.title_key + " " + func.coalesce(Artist.name_key, "")
    by_words = (
        select(Track.id.label("track_id"))
        .outerjoin(Artist, Artist.id == Track.artist_id)
        .where(*words_match(haystack, words))
        .limit(_RANKED)
    )
    ids = by_words.subquery()
    if text.strip().isdigit():  # a number also finds the track with that id
        by_id = select(Track.id.label("track_id")).where(Track.id == int(text.strip()))
        ids = select(ids.c.track_id).union(by_id).subquery()
    uses = (
        select(PlaylistTrack.track_id, func.count().label("n"))
        .where(PlaylistTrack.track_id.in_(select(ids.c.track_id)))
        .group_by(PlaylistTrack.track_id)
        .subquery()
    )
    stmt = (
        select(Track.id, Track.title, Track.artist_name, Track.duration_ms, func.coalesce(uses.c.n, 0))
        .join(ids, ids.c.track_id == Track.id)
        .outerjoin(uses, uses.c.track_id == Track.id)
        .order_by(func.coalesce(uses.c.n, 0).desc(), Track.title_key, Track.id)
        .offset(max(0, offset))
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return [TrackHit(int(r[0]), r[1], r[2], r[3], int(r[4])) for r in rows]


def tracks_by_id(engine: Engine, track_ids: list[int]) -> dict[int, TrackHit]:
    """The tracks with these ids (missing ids are left out), with their playlist counts."""
    ids = list(dict.fromkeys(int(t) for t in track_ids))
    if not ids:
        return {}
    uses = (
        select(PlaylistTrack.track_id, func.count().label("n"))
        .where(PlaylistTrack.track_id.in_(ids))
        .group_by(PlaylistTrack.track_id)
        .subquery()
    )
    stmt = (
        select(Track.id, Track.title, Track.artist_name, Track.duration_ms, func.coalesce(uses.c.n, 0))
        .outerjoin(uses, uses.c.track_id == Track.id)
        .where(Track.id.in_(ids))
    )
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    return {int(r[0]): TrackHit(int(r[0]), r[1], r[2], r[3], int(r[4])) for r in rows}


def audio_files(engine: Engine, track_ids: list[int]) -> dict[int, Path]:
    """For each track that has one, a local audio file that exists (the first by asset id)."""
    ids = list(dict.fromkeys(int(t) for t in track_ids))
    if not ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(AudioAsset.track_id, AudioAsset.uri)
            .where(AudioAsset.track_id.in_(ids))
            .order_by(AudioAsset.track_id, AudioAsset.id)
        ).all()
    found: dict[int, Path] = {}
    for track_id, uri in rows:
        if int(track_id) in found or ("://" in uri and not uri.startswith("file://")):
            continue
        path = Path(uri.removeprefix("file://"))
        if path.is_file():
            found[int(track_id)] = path
    return found
