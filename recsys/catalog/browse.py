"""Browsing the catalog: summary charts, paginated playlist search, a playlist's ordered tracks.

Everything is an aggregate or a bounded page computed in the database, so the pages stay
fast on catalogs of hundreds of thousands of tracks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import ColumnElement, Connection, Engine, func, or_, select

from recsys.catalog.schema import (
    DEFAULT_NAMESPACE,
    Album,
    Artist,
    ModelVersion,
    Playlist,
    PlaylistTrack,
    Track,
)
from recsys.catalog.track_search import audio_files, query_words, words_match
from recsys.errors import NotFoundError

PAGE_SIZE = 25
MAX_PAGE_SIZE = 200


def playlist_lengths(conn: Connection, *, namespace: str = DEFAULT_NAMESPACE) -> list[tuple[int, int]]:
    """(number of tracks, playlists of that length), by length."""
    rows = conn.execute(
        select(Playlist.num_tracks, func.count())
        .where(Playlist.namespace == namespace)
        .group_by(Playlist.num_tracks)
        .order_by(Playlist.num_tracks)
    )
    return [(int(n or 0), int(c)) for n, c in rows]


def tracks_per_artist(conn: Connection) -> list[tuple[int, int]]:
    """(tracks credited to an artist, artists with that many), by the number of tracks."""
    per_artist = (
        select(func.count().label("tracks"))
        .select_from(Track)
        .where(Track.artist_id.is_not(None))
        .group_by(Track.artist_id)
        .subquery()
    )
    rows = conn.execute(
        select(per_artist.c.tracks, func.count()).group_by(per_artist.c.tracks).order_by(per_artist.c.tracks)
    )
    return [(int(t), int(c)) for t, c in rows]


def top_artists(
    conn: Connection, *, namespace: str = DEFAULT_NAMESPACE, limit: int = 20
) -> list[tuple[str, int, int]]:
    """The artists with the most playlist entries in ``namespace``: (name, entries, playlists)."""
    counts = (
        select(
            Track.artist_id.label("artist_id"),
            func.count().label("entries"),
            func.count(func.distinct(PlaylistTrack.playlist_id)).label("playlists"),
        )
        .select_from(PlaylistTrack)
        .join(Track, Track.id == PlaylistTrack.track_id)
        .where(
            PlaylistTrack.playlist_id.in_(select(Playlist.id).where(Playlist.namespace == namespace)),
            Track.artist_id.is_not(None),
        )
        .group_by(Track.artist_id)
        .order_by(func.count().desc(), Track.artist_id)
        .limit(limit)
        .subquery()
    )
    rows = conn.execute(
        select(Artist.name, counts.c.entries, counts.c.playlists)
        .join(counts, counts.c.artist_id == Artist.id)
        .order_by(counts.c.entries.desc(), Artist.name)
    )
    return [(str(name), int(entries), int(playlists)) for name, entries, playlists in rows]


@dataclass(frozen=True)
class ModelInUse:
    kind: str
    version: str
    created_at: str
    versions: int


def models_in_use(conn: Connection) -> list[ModelInUse]:
    """The newest version of each model kind (the one the services load), and how many versions exist.

    Candidates a pipeline trained and has not published (kinds ending in ``-candidate``) serve
    nothing and are left out."""
    rows = conn.execute(
        select(ModelVersion.kind, ModelVersion.version, ModelVersion.created_at, ModelVersion.id)
        .where(~ModelVersion.kind.endswith("-candidate"))
        .order_by(ModelVersion.kind, ModelVersion.created_at.desc(), ModelVersion.id.desc())
    ).all()
    out: dict[str, ModelInUse] = {}
    counts: dict[str, int] = {}
    for kind, version, created, _ in rows:
        counts[kind] = counts.get(kind, 0) + 1
        if kind not in out:
            out[kind] = ModelInUse(kind, version, f"{created:%Y-%m-%d %H:%M}" if created else "", 0)
    return [ModelInUse(m.kind, m.version, m.created_at, counts[m.kind]) for m in out.values()]


@dataclass(frozen=True)
class PlaylistHit:
    playlist_id: int
    name: str
    num_tracks: int


@dataclass(frozen=True)
class PlaylistPage:
    hits: list[PlaylistHit]
    total: int
    page: int
    pages: int


def playlist_page(
    engine: Engine,
    query: str = "",
    *,
    page: int = 1,
    page_size: int = PAGE_SIZE,
    namespace: str | None = DEFAULT_NAMESPACE,
) -> PlaylistPage:
    """One page of the playlists whose name holds every word of ``query`` (all when empty), by name.

    Words are compared as match keys (any case, accents and punctuation as the catalog keys
    them); a number alone also finds the playlist with that id.
    """
    words = query_words(query)
    page_size = max(1, min(page_size, MAX_PAGE_SIZE))
    conditions: list[ColumnElement[bool]] = []
    if namespace is not None:
        conditions.append(Playlist.namespace == namespace)
    if words:
        match: list[ColumnElement[bool]] = words_match(Playlist.name_key, words)
        if query.strip().isdigit():
            conditions.append(or_(Playlist.id == int(query.strip()), *match))
        else:
            conditions.extend(match)
    with engine.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(Playlist).where(*conditions)).scalar_one())
        pages = max(1, -(-total // page_size))
        page = max(1, min(page, pages))
        rows = conn.execute(
            select(Playlist.id, Playlist.name, Playlist.num_tracks)
            .where(*conditions)
            .order_by(Playlist.name, Playlist.id)
            .offset((page - 1) * page_size)
            .limit(page_size)
        ).all()
    return PlaylistPage([PlaylistHit(int(r[0]), r[1], int(r[2] or 0)) for r in rows], total, page, pages)


@dataclass(frozen=True)
class PlaylistEntry:
    position: int
    track_id: int
    title: str
    artist: str
    album: str | None
    duration_ms: int | None
    audio: Path | None


@dataclass(frozen=True)
class PlaylistView:
    playlist_id: int
    name: str
    namespace: str
    source_key: str
    entries: list[PlaylistEntry]


def playlist_view(engine: Engine, playlist_id: int) -> PlaylistView:
    """A playlist's ordered entries with artist, album, duration and local audio file (where there is one)."""
    with engine.connect() as conn:
        head = conn.execute(
            select(Playlist.name, Playlist.namespace, Playlist.source_key).where(
                Playlist.id == int(playlist_id)
            )
        ).first()
        if head is None:
            raise NotFoundError(f"no playlist {playlist_id} in the catalog")
        rows = conn.execute(
            select(
                PlaylistTrack.position,
                Track.id,
                Track.title,
                Track.artist_name,
                Album.title,
                Track.duration_ms,
            )
            .join(Track, Track.id == PlaylistTrack.track_id)
            .outerjoin(Album, Album.id == Track.album_id)
            .where(PlaylistTrack.playlist_id == int(playlist_id))
            .order_by(PlaylistTrack.position)
        ).all()
    files = audio_files(engine, [r[1] for r in rows])
    entries = [
        PlaylistEntry(int(p), int(t), title, artist, album, duration, files.get(int(t)))
        for p, t, title, artist, album, duration in rows
    ]
    return PlaylistView(int(playlist_id), head[0], head[1], head[2], entries)
