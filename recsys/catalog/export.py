"""Playlists out of the catalog: JSPF and M3U documents, and saving a list of tracks as a playlist.

One home for the command line, the interface and the HTTP API. :func:`export_tracks`
reads what a document needs about each track; :func:`to_jspf` and :func:`to_m3u` write
the two formats players and services read; :func:`save_playlist` keeps a list (a
continuation someone liked) as a playlist of its own namespace, which training never
reads (models train on the ``catalog`` namespace).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from recsys.catalog import keys
from recsys.catalog.db import is_postgres
from recsys.catalog.feedback import track_id_of, user_name
from recsys.catalog.schema import DEFAULT_NAMESPACE, Album, AudioAsset, Playlist, PlaylistTrack, Track
from recsys.errors import InputError, NotFoundError

SAVED_NAMESPACE = "saved"
MAX_TRACKS = 10_000  # a saved or exported playlist holds at most this many entries (Spotify's own limit)
MAX_NAME = 200
MAX_DESCRIPTION = 2_000
_MAX_ID = 2**63 - 1
_SPOTIFY_TRACK = re.compile(r"^spotify:track:([0-9A-Za-z]{1,64})$")
# Everything str.splitlines() breaks on, and the other control characters: none may reach an M3U line.
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")


@dataclass(frozen=True)
class ExportTrack:
    """What a playlist document says about one track."""

    track_id: int
    title: str
    artist: str | None
    album: str | None
    duration_ms: int | None
    spotify_uri: str | None  # spotify:track:<id>
    audio_path: str | None  # a local audio file of the track

    @property
    def spotify_url(self) -> str | None:
        """The track's page on open.spotify.com, when its Spotify id is known."""
        match = _SPOTIFY_TRACK.match(self.spotify_uri or "")
        return f"https://open.spotify.com/track/{match.group(1)}" if match else None

    @property
    def file_uri(self) -> str | None:
        """The local audio file as a ``file://`` URI (percent-encoded), when there is one."""
        if not self.audio_path:
            return None
        if self.audio_path.startswith("/"):
            return PurePosixPath(self.audio_path).as_uri()
        return quote(self.audio_path)  # a relative reference


def _ids(track_ids: Sequence[int]) -> list[int]:
    return [track_id_of(value) for value in track_ids]


def _local_path(uri: str) -> str | None:
    """The file system path of an audio asset's URI (a path or ``file://``), None for a remote URL."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return unquote(parts.path)
    if parts.scheme and len(parts.scheme) > 1:  # http, s3, … (a one-letter scheme is a Windows drive)
        return None
    return uri


def export_tracks(engine: Engine, track_ids: Sequence[int]) -> list[ExportTrack]:
    """The tracks of ``track_ids``, in the given order (repeats kept); unknown ids raise
    ``NotFoundError`` naming them. The local audio file is the track's first audio asset
    stored on a file system."""
    ids = _ids(track_ids)
    if len(ids) > MAX_TRACKS:
        raise InputError(f"{len(ids):,} tracks: at most {MAX_TRACKS:,} per playlist")
    wanted = sorted({t for t in ids if 0 < t <= _MAX_ID})
    found: dict[int, ExportTrack] = {}
    audio: dict[int, str] = {}
    with engine.connect() as conn:
        for start in range(0, len(wanted), 1000):
            chunk = wanted[start : start + 1000]
            rows = conn.execute(
                select(
                    Track.id,
                    Track.title,
                    Track.artist_name,
                    Album.title,
                    Track.duration_ms,
                    Track.spotify_uri,
                    Track.source_key,
                )
                .outerjoin(Album, Album.id == Track.album_id)
                .where(Track.id.in_(chunk))
            )
            for row in rows:
                uri = row.spotify_uri or (row.source_key if _SPOTIFY_TRACK.match(row.source_key) else None)
                found[row.id] = ExportTrack(row.id, row[1], row[2] or None, row[3], row[4], uri, None)
            for track_id, asset_uri in conn.execute(
                select(AudioAsset.track_id, AudioAsset.uri)
                .where(AudioAsset.track_id.in_(chunk))
                .order_by(AudioAsset.id)
            ):
                path = _local_path(asset_uri)
                if path and track_id not in audio:
                    audio[track_id] = path
    missing = list(dict.fromkeys(t for t in ids if t not in found))
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (
            f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        )
        raise NotFoundError(f"no track {shown} in the catalog")
    return [replace(found[t], audio_path=audio[t]) if t in audio else found[t] for t in ids]


def to_jspf(
    title: str,
    tracks: Sequence[ExportTrack],
    *,
    creator: str | None = None,
    annotation: str | None = None,
    date: datetime | None = None,
) -> dict[str, Any]:
    """The playlist as JSPF (XSPF in JSON, https://www.xspf.org/jspf).

    ``{"playlist": {"title", "creator", "annotation", "date", "track": [...]}}``; each track
    has ``title``, ``creator`` (the artist), ``album``, ``duration`` (milliseconds),
    ``identifier`` (its open.spotify.com URL) and ``location`` (a ``file://`` URI of its
    local audio). Optional values that are unknown are left out, as XSPF has them absent
    rather than empty. ``date`` defaults to now (UTC).
    """
    when = (date or datetime.now(UTC)).isoformat(timespec="seconds")
    playlist: dict[str, Any] = {"title": title}
    if creator is not None:
        playlist["creator"] = creator
    if annotation is not None:
        playlist["annotation"] = annotation
    playlist["date"] = when
    entries = []
    for track in tracks:
        entry: dict[str, Any] = {"title": track.title}
        if track.artist:
            entry["creator"] = track.artist
        if track.album:
            entry["album"] = track.album
        if track.duration_ms is not None and track.duration_ms >= 0:
            entry["duration"] = int(track.duration_ms)
        if track.spotify_url:
            entry["identifier"] = [track.spotify_url]
        if track.file_uri:
            entry["location"] = [track.file_uri]
        entries.append(entry)
    playlist["track"] = entries
    return {"playlist": playlist}


def _one_line(text: str) -> str:
    return _LINE_BREAKS.sub(" ", text).strip()


def to_m3u(title: str, tracks: Sequence[ExportTrack]) -> str:
    """The playlist as extended M3U (UTF-8 text).

    ``#EXTM3U``, ``#PLAYLIST:<title>``, then per track ``#EXTINF:<seconds or -1>,<artist> -
    <title>`` and its location: the local audio file, else its open.spotify.com URL. Line
    breaks and other control characters in names become spaces (a line is a record in
    M3U); a path that holds one is written as its ``file://`` URI. A track with neither
    location is written as a comment naming it, so that no track goes missing unsaid.
    """
    lines = ["#EXTM3U", f"#PLAYLIST:{_one_line(title)}"]
    for track in tracks:
        name = _one_line(track.title)
        if track.artist:
            name = f"{_one_line(track.artist)} - {name}"
        location = track.audio_path
        if location and (
            _LINE_BREAKS.search(location) or location != location.strip() or location.startswith("#")
        ):
            location = track.file_uri
        location = location or track.spotify_url
        if location is None:
            lines.append(f"# track {track.track_id} ({name}): no local audio and no Spotify link")
            continue
        seconds = (
            -1 if track.duration_ms is None or track.duration_ms < 0 else round(track.duration_ms / 1000)
        )
        lines += [f"#EXTINF:{seconds},{name}", location]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class CatalogPlaylist:
    """A playlist of the catalog (any namespace) with its entries in order."""

    playlist_id: int
    namespace: str
    name: str
    description: str | None
    owner: str | None
    track_ids: list[int]


def catalog_playlist(engine: Engine, ref: str) -> CatalogPlaylist:
    """The playlist given by id or source key (``mpd:12``, ``saved:…``), with its entries in order."""
    ref = ref.strip()
    if ref.isdigit():
        condition = Playlist.id == int(ref) if int(ref) <= _MAX_ID else Playlist.id == -1
    else:
        condition = Playlist.source_key == ref
    with engine.connect() as conn:
        found = conn.execute(
            select(Playlist.id, Playlist.namespace, Playlist.name, Playlist.description, Playlist.owner)
            .where(condition)
            .limit(2)
        ).all()
        if not found:
            raise NotFoundError(f"no playlist {ref!r} in the catalog")
        if len(found) > 1:
            raise InputError(f"playlist {ref!r} is ambiguous (several namespaces): give its numeric id")
        pid, namespace, name, description, owner = found[0]
        tracks = conn.execute(
            select(PlaylistTrack.track_id)
            .where(PlaylistTrack.playlist_id == pid)
            .order_by(PlaylistTrack.position)
        ).scalars()
        return CatalogPlaylist(pid, namespace, name, description, owner, [int(t) for t in tracks])


def saved_key(name: str, track_ids: Sequence[int], user: str | None) -> str:
    """The source key of a saved playlist: a hash of who saved it, its name and its tracks in order."""
    digest = hashlib.sha256("\x1f".join([user or "", name, ",".join(map(str, track_ids))]).encode())
    return f"saved:{digest.hexdigest()[:32]}"


def save_playlist(
    engine: Engine,
    *,
    name: str,
    track_ids: Sequence[int],
    user: str | None = None,
    description: str | None = None,
    namespace: str = SAVED_NAMESPACE,
) -> int:
    """Save the tracks, in order, as a playlist of ``namespace``; returns its id.

    Saving is idempotent: the playlist's source key is ``saved:`` and a hash of the user,
    the name (stripped) and the track ids in order (:func:`saved_key`), so the same user
    saving the same list under the same name again gets the same playlist back (its
    description replaced when a new one is given), while any change makes a new one.
    The namespace is never ``catalog`` (nor a held-out ``heldout-…`` test set): models
    train on ``catalog`` only, so a saved list does not feed back into training. Raises
    ``InputError`` for an empty or over-long name, no tracks or more than 10,000, and
    ``NotFoundError`` naming track ids that are not in the catalog.
    """
    if not isinstance(name, str) or not name.strip():
        raise InputError("a saved playlist needs a name")
    name = name.strip()
    if len(name) > MAX_NAME:
        raise InputError(f"playlist name is {len(name)} characters long: at most {MAX_NAME}")
    owner = None if user is None else user_name(user)
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise InputError(
            f"playlist description is {len(description)} characters long: at most {MAX_DESCRIPTION}"
        )
    namespace = namespace.strip() if isinstance(namespace, str) else ""
    if not namespace or len(namespace) > 64:
        raise InputError("a namespace is a name of 1 to 64 characters")
    if namespace == DEFAULT_NAMESPACE or namespace.startswith("heldout-"):
        raise InputError(
            f"saved playlists never go into namespace {namespace!r}: it is read for training or evaluation"
        )
    ids = _ids(track_ids)
    if not ids:
        raise InputError("nothing to save: the playlist has no tracks")
    export_tracks(engine, ids)  # every track is in the catalog (NotFoundError naming the others)
    key = saved_key(name, ids, owner)
    now = datetime.now(UTC)
    values = {
        "namespace": namespace,
        "source_key": key,
        "name": name,
        "name_key": str(keys.apply_one(keys.name_key, name) or ""),
        "description": description,
        "owner": owner,
        "collaborative": False,
        "modified_at": now,
        "num_tracks": len(ids),
    }
    upsert = (postgresql.insert if is_postgres(engine) else sqlite.insert)(Playlist).values(**values)
    with engine.begin() as conn:
        new_id = conn.execute(
            upsert.on_conflict_do_nothing(index_elements=[Playlist.namespace, Playlist.source_key]).returning(
                Playlist.id
            )
        ).scalar()
        if new_id is None:  # saved before: the same playlist
            existing = int(
                conn.execute(
                    select(Playlist.id).where(Playlist.namespace == namespace, Playlist.source_key == key)
                ).scalar_one()
            )
            if description is not None:
                conn.execute(
                    update(Playlist)
                    .where(Playlist.id == existing)
                    .values(description=description, modified_at=now)
                )
            return existing
        conn.execute(
            insert(PlaylistTrack),
            [{"playlist_id": new_id, "position": i, "track_id": t} for i, t in enumerate(ids)],
        )
        return int(new_id)
