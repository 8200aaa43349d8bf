"""Spotify Web API objects → catalog rows (pure: no HTTP, no database).

``Collected`` gathers what one ingest input (a playlist, an album, a track, an artist,
any Web API answer) offers: raw tracks in the ``RAW_TRACK`` shape shared by every
source, the exact artist credits Spotify lists (primary first, then featured, with
their URIs), albums, full artist objects (with genres), playlists and their ordered
entries. Records that are not tracks (podcast episodes, local files, removed tracks)
and malformed records become rejects with their reason, as does a playlist whose id is
longer than ``guards.MAX_ID_BYTES``; a value no column holds (an ISRC that is not one,
a duration or follower count past 32 bits, a negative one, an album type of more than
16 characters) is stored as null with a reject row.

``catalog_chunk`` turns it into the frames ``recsys.catalog.merges.merge_chunk`` loads,
through ``pipelines.ingest.normalize.build_chunk`` like every other source, then puts
Spotify's own credits and albums in place of the ones parsed from credit strings.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from pipelines.ingest.guards import ID_TOO_LONG, MAX_ID_BYTES, MAX_NAME_CHARS, shorten
from pipelines.ingest.normalize import RAW_TRACK, build_chunk, playlist_frame, raw_tracks_frame
from recsys.catalog import keys as k
from recsys.catalog.batches import RejectLog
from recsys.catalog.frames import ALBUMS, ARTISTS, TRACK_ARTISTS, TRACKS, CatalogChunk, conform
from recsys.errors import InputError

_BASE62 = r"[0-9A-Za-z]+"
_TRACK_URI = re.compile(r"^spotify:track:[0-9A-Za-z]{22}$")
_ALBUM_URI = re.compile(r"^spotify:album:[0-9A-Za-z]{22}$")
_ARTIST_URI = re.compile(r"^spotify:artist:[0-9A-Za-z]{22}$")
# Keys beside "track"/"item" that mark a playlist or library item (saved, recently played).
_ITEM_KEYS = ("added_at", "added_by", "played_at", "is_local")
_ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$")
_INT32_MAX = 2**31 - 1  # the catalog's integer columns (duration_ms, num_followers)
_ALBUM_TYPE_CHARS = 16  # album.album_type


def parse_id(kind: str, value: str) -> str:
    """The id in a bare id, a ``spotify:<kind>:<id>`` URI or an ``open.spotify.com/<kind>/<id>`` URL."""
    text = value.strip()
    if len(text.encode("utf-8", "surrogateescape")) > MAX_ID_BYTES:
        raise InputError(f"{shorten(text, 80)!r}: {ID_TOO_LONG} (a Spotify {kind} id, URI or URL)")
    patterns = (
        rf"spotify:{kind}:({_BASE62})",
        rf"spotify:user:[^:]+:{kind}:({_BASE62})",
        rf"(?:https?://)?open\.spotify\.com/(?:intl-[a-z]{{2}}/)?(?:user/[^/]+/)?{kind}/({_BASE62})/?(?:\?.*)?",
        rf"({_BASE62})",
    )
    for pattern in patterns:
        match = re.fullmatch(pattern, text)
        if match:
            return match.group(1)
    raise InputError(f"{value!r}: not a Spotify {kind} id, {kind} URI or open.spotify.com {kind} URL")


def release_year(album: dict[str, Any] | None) -> int | None:
    date = (album or {}).get("release_date")
    if isinstance(date, str) and re.match(r"^\d{4}", date):
        year = int(date[:4])
        return year if 1000 <= year <= 2100 else None
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def track_problem(obj: Any) -> str | None:
    """Why ``obj`` cannot be a catalog track, or None when it can."""
    if obj is None:
        return "null track (removed from Spotify or unavailable)"
    if not isinstance(obj, dict):
        return "track is not a JSON object"
    uri = obj.get("uri")
    kind = obj.get("type")
    if kind == "episode" or (isinstance(uri, str) and uri.startswith("spotify:episode:")):
        return f"podcast episode, not a track ({uri})"
    if obj.get("is_local") is True or (isinstance(uri, str) and uri.startswith("spotify:local:")):
        return f"local file, not in the Spotify catalog ({uri})"
    if kind is not None and kind != "track":
        return f"not a track: type {str(kind)[:40]!r}"
    if uri is None:
        return "missing field: uri"
    if not isinstance(uri, str) or not _TRACK_URI.match(uri):
        return f"invalid uri: {str(uri)[:80]!r}"
    if _text(obj.get("name")) is None:
        return "missing field: name"
    artists = obj.get("artists")
    if not isinstance(artists, list) or not any(
        isinstance(a, dict) and _text(a.get("name")) for a in artists
    ):
        return "missing field: artists (at least one named artist is required)"
    return None


def _whole(value: Any, least: int) -> int | None:
    """A whole number from ``least`` to 2^31 - 1 (what the catalog's integer columns hold), also when
    written as a float (``204053.0``: some answers carry floats); None otherwise."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and least <= value <= _INT32_MAX:
        return value
    return None


def _shown(value: Any) -> str:
    return repr(shorten(value, 80) if isinstance(value, str) else value)[:100]


def _nulled(rejects: RejectLog, where: str, field: str, value: Any, rule: str, record: Any) -> None:
    """The reject row of a value stored as null."""
    rejects.add(where, f"invalid {field}: {_shown(value)} {rule}; stored as null", record)


def _isrc(value: Any) -> str | None:
    """An ISRC (``gb-aaa-81-00001`` and ``GBAAA8100001`` alike); None otherwise."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    cleaned = re.sub(r"[^0-9A-Z]", "", value.upper())
    return cleaned if _ISRC.match(cleaned) else None


def _album_type(value: Any) -> str | None:
    text = _text(value)
    return text if text is not None and len(text) <= _ALBUM_TYPE_CHARS else None


def _uri(value: Any, pattern: re.Pattern[str]) -> str | None:
    return value if isinstance(value, str) and pattern.match(value) else None


@dataclass
class Collected:
    """Rows gathered from one input, in the shapes the catalog chunk is built from."""

    tracks: dict[str, list[Any]] = field(default_factory=lambda: {c: [] for c in RAW_TRACK})
    credits: dict[str, list[Any]] = field(
        default_factory=lambda: {"track_key": [], "position": [], "name": [], "spotify_uri": []}
    )
    albums: dict[str, list[Any]] = field(
        default_factory=lambda: {
            c: [] for c in ("source_key", "title", "artist_name", "artist_uri", "release_year", "album_type")
        }
    )
    artists: dict[str, list[Any]] = field(
        default_factory=lambda: {"name": [], "spotify_uri": [], "genres": []}
    )
    playlists: dict[str, list[Any]] = field(
        default_factory=lambda: (
            {c: [] for c in ("source_key", "name", "description", "owner", "num_followers", "collaborative")}
            | {"num_tracks": []}
        )
    )
    entries: dict[str, list[Any]] = field(
        default_factory=lambda: {"playlist_key": [], "position": [], "track_key": []}
    )

    @property
    def n_tracks(self) -> int:
        """Distinct tracks (a track on two playlists of one answer counts once)."""
        return len(set(self.tracks["source_key"]))

    @property
    def n_entries(self) -> int:
        return len(self.entries["position"])

    @property
    def n_playlists(self) -> int:
        return len(self.playlists["source_key"])

    # ------------------------------------------------------------------ objects

    def track(
        self, obj: Any, where: str, rejects: RejectLog, album: dict[str, Any] | None = None
    ) -> str | None:
        """Add one track object (``album`` gives the context of a simplified track); its URI, or None."""
        problem = track_problem(obj)
        if problem:
            rejects.add(where, problem, obj)
            return None
        uri = obj["uri"]
        album = obj.get("album") if isinstance(obj.get("album"), dict) else album
        album_uri = self.album(album, where, rejects) if album else None
        named = [a for a in obj["artists"] if isinstance(a, dict) and _text(a.get("name"))]
        for position, artist in enumerate(named):
            self.credits["track_key"].append(uri)
            self.credits["position"].append(position)
            self.credits["name"].append(artist["name"])
            self.credits["spotify_uri"].append(_uri(artist.get("uri"), _ARTIST_URI))
        credit = named[0]["name"]
        if len(named) > 1:
            credit += " feat. " + ", ".join(a["name"] for a in named[1:])
        isrc = (
            (obj.get("external_ids") or {}).get("isrc") if isinstance(obj.get("external_ids"), dict) else None
        )
        if isrc is not None and _isrc(isrc) is None:
            _nulled(rejects, where, "isrc", isrc, "is not an ISRC", obj)
        duration = obj.get("duration_ms")
        if duration is not None and _whole(duration, 1) is None:
            _nulled(
                rejects,
                where,
                "duration_ms",
                duration,
                f"is not a whole number from 1 to {_INT32_MAX:,}",
                obj,
            )
        row = {
            "source_key": uri,
            "spotify_uri": uri,
            "isrc": _isrc(isrc),
            "mbid": None,
            "title": obj["name"],
            "artist_credit": credit,
            "artist_uri": _uri(named[0].get("uri"), _ARTIST_URI),
            # Albums are identified by URI only: a title alone would name an album row that never lands.
            "album_title": _text((album or {}).get("name")) if album_uri else None,
            "album_uri": album_uri,
            "album_type": _album_type((album or {}).get("album_type")),
            "release_year": release_year(album),
            "duration_ms": _whole(duration, 1),
        }
        for column, value in row.items():
            self.tracks[column].append(value)
        return uri

    def album(self, obj: dict[str, Any], where: str, rejects: RejectLog) -> str | None:
        """Add an album object (full or simplified); its URI, or None when it has none."""
        uri = _uri(obj.get("uri"), _ALBUM_URI)
        title = _text(obj.get("name"))
        if uri is None or title is None:
            return None
        kind = obj.get("album_type")
        if kind is not None and _album_type(kind) is None:
            _nulled(
                rejects,
                where,
                "album_type",
                kind,
                f"is not text of at most {_ALBUM_TYPE_CHARS} characters",
                None,
            )
        artists = [a for a in obj.get("artists") or [] if isinstance(a, dict) and _text(a.get("name"))]
        self.albums["source_key"].append(uri)
        self.albums["title"].append(title)
        self.albums["artist_name"].append(artists[0]["name"] if artists else None)
        self.albums["artist_uri"].append(_uri(artists[0].get("uri"), _ARTIST_URI) if artists else None)
        self.albums["release_year"].append(release_year(obj))
        self.albums["album_type"].append(_album_type(kind))
        for artist in artists:
            self.artist(artist)
        return uri

    def artist(self, obj: dict[str, Any]) -> None:
        """Add an artist object; a full one carries its genres."""
        name = _text(obj.get("name"))
        if name is None:
            return
        genres = obj.get("genres")
        self.artists["name"].append(name)
        self.artists["spotify_uri"].append(_uri(obj.get("uri"), _ARTIST_URI))
        self.artists["genres"].append(
            [g for g in genres if isinstance(g, str) and g] if isinstance(genres, list) else None
        )

    def entry(self, item: Any, where: str, rejects: RejectLog) -> str | None:
        """One playlist or library item (``{"item"|"track": …, "is_local": …}``); the track URI or None."""
        if not isinstance(item, dict):
            rejects.add(where, "playlist item is not a JSON object", item)
            return None
        obj = item.get("item", item.get("track"))
        if isinstance(obj, dict) and item.get("is_local") is True and obj.get("is_local") is None:
            obj = {**obj, "is_local": True}
        return self.track(obj, where, rejects)

    def playlist(self, meta: dict[str, Any], items: list[Any], where: str, rejects: RejectLog) -> bool:
        """Add a playlist with its ordered items; False when the playlist itself is rejected."""
        pid = meta.get("id")
        name = _text(meta.get("name"))
        head = {k: v for k, v in meta.items() if k not in ("items", "tracks")}
        if not isinstance(pid, str) or not re.fullmatch(_BASE62, pid):
            rejects.add(where, "missing field: id", head)
            return False
        if len(pid) > MAX_ID_BYTES:
            rejects.add(where, f"invalid id: {ID_TOO_LONG}", {k: v for k, v in head.items() if k != "id"})
            return False
        if name is None:
            rejects.add(where, "missing field: name", head)
            return False
        key = f"spotify:playlist:{pid}"
        kept = 0
        for position, item in enumerate(items):
            uri = self.entry(item, f"{where}.items[{position}]", rejects)
            if uri is None:
                continue
            self.entries["playlist_key"].append(key)
            self.entries["position"].append(position)
            self.entries["track_key"].append(uri)
            kept += 1
        if kept == 0:
            reason = "empty playlist: no items" if not items else "empty playlist: every item was rejected"
            rejects.add(where, reason, head)
            return False
        owner: dict[str, Any] = meta["owner"] if isinstance(meta.get("owner"), dict) else {}
        followers: dict[str, Any] = meta["followers"] if isinstance(meta.get("followers"), dict) else {}
        description = _text(meta.get("description"))
        collaborative = meta.get("collaborative")
        total = followers.get("total")
        if total is not None and _whole(total, 0) is None:
            _nulled(
                rejects,
                where,
                "followers.total",
                total,
                f"is not a whole number from 0 to {_INT32_MAX:,}",
                head,
            )
        row = {
            "source_key": key,
            "name": name,
            "description": html.unescape(description) if description else None,
            "owner": _text(owner.get("display_name")) or _text(owner.get("id")),
            "num_followers": _whole(total, 0),
            "collaborative": collaborative if isinstance(collaborative, bool) else None,
            "num_tracks": kept,
        }
        for column, value in row.items():
            self.playlists[column].append(value)
        return True

    # ------------------------------------------------------------------ any answer

    def document(self, node: Any, where: str, rejects: RejectLog) -> None:
        """Every track, album and artist anywhere in a Web API answer (search, top items, pages, …)."""
        if isinstance(node, list):
            for index, value in enumerate(node):
                if value is None:
                    rejects.add(f"{where}[{index}]", "null item (not found or unavailable)")
                else:
                    self.document(value, f"{where}[{index}]", rejects)
            return
        if not isinstance(node, dict):
            return
        kind = node.get("type")
        if kind in ("track", "episode"):
            self.track(node, where, rejects)
        elif kind == "album":
            uri = self.album(node, where, rejects)
            page = node.get("tracks")
            if uri and isinstance(page, dict) and isinstance(page.get("items"), list):
                for index, obj in enumerate(page["items"]):
                    self.track(obj, f"{where}.tracks.items[{index}]", rejects, album=node)
        elif kind == "artist":
            self.artist(node)
        elif kind == "playlist" and "name" in node:  # (a playback context names no playlist: skipped)
            page = node.get("items") if isinstance(node.get("items"), dict) else node.get("tracks")
            items = page.get("items") if isinstance(page, dict) else None
            if isinstance(items, list):
                self.playlist(node, items, where, rejects)
            else:
                rejects.add(
                    where,
                    "playlist listed without its items (ingest it with --playlist)",
                    {k: v for k, v in node.items() if k not in ("images",)},
                )
        elif ("track" in node or "item" in node) and any(key in node for key in _ITEM_KEYS):
            self.entry(node, where, rejects)
        else:
            for name, value in node.items():
                if isinstance(value, dict | list):
                    self.document(value, f"{where}.{name}", rejects)


def _artist_key(name: pl.Expr) -> pl.Expr:
    return pl.lit("name:") + k.name_key(k.clean_text(name))


def catalog_chunk(
    collected: Collected, rejects: RejectLog, batch_id: int | None, max_name_chars: int = MAX_NAME_CHARS
) -> CatalogChunk:
    """The catalog frames of one input, with Spotify's exact credits, albums and artist URIs.

    Names are cut to ``max_name_chars``, each cut one more row in ``rejects``; every row of
    ``rejects`` goes into the chunk with ``batch_id``.
    """
    playlists = None
    if collected.n_playlists:
        playlists = playlist_frame(
            collected.playlists | {"batch_id": [batch_id] * collected.n_playlists},
            max_name_chars,
            log=rejects,
        )
    chunk = build_chunk(
        raw_tracks_frame(collected.tracks),
        playlists,
        pl.DataFrame(
            collected.entries,
            schema={"playlist_key": pl.String, "position": pl.Int32, "track_key": pl.String},
        ),
        log=rejects,
        max_name_chars=max_name_chars,
    )
    for row in rejects.rows:  # those of the cut names too, which build_chunk has just added
        row["batch_id"] = batch_id
    chunk.rejects = rejects.frame()
    credits = (
        pl.DataFrame(
            collected.credits,
            schema={
                "track_key": pl.String,
                "position": pl.Int32,
                "name": pl.String,
                "spotify_uri": pl.String,
            },
        )
        .with_columns(_artist_key(pl.col("name")).alias("artist_key"))
        .filter(pl.col("artist_key") != "name:")
        .unique(subset=["track_key", "artist_key"], keep="first", maintain_order=True)
        .with_columns(pl.int_range(pl.len()).over("track_key").cast(pl.Int32).alias("position"))
    )
    albums = pl.DataFrame(
        collected.albums,
        schema={
            "source_key": pl.String,
            "title": pl.String,
            "artist_name": pl.String,
            "artist_uri": pl.String,
            "release_year": pl.Int32,
            "album_type": pl.String,
        },
    ).unique(subset="source_key", keep="first", maintain_order=True)
    named = pl.concat(
        [
            credits.select("name", "spotify_uri"),
            albums.select(pl.col("artist_name").alias("name"), pl.col("artist_uri").alias("spotify_uri")),
            pl.DataFrame(
                {"name": collected.artists["name"], "spotify_uri": collected.artists["spotify_uri"]},
                schema={"name": pl.String, "spotify_uri": pl.String},
            ),
        ]
    ).filter(pl.col("name").is_not_null())
    artists = (
        named.with_columns(k.clean_text(pl.col("name")).alias("name"))
        .with_columns(_artist_key(pl.col("name")).alias("source_key"))
        .filter(pl.col("source_key") != "name:")
        .group_by("source_key", maintain_order=True)
        .agg(pl.col("name").first(), pl.col("spotify_uri").drop_nulls().first())
        .with_columns(pl.col("source_key").str.slice(5).alias("name_key"))
    )
    primary = credits.filter(pl.col("position") == 0).select(
        pl.col("track_key").alias("source_key"), pl.col("artist_key").alias("primary_key")
    )
    chunk.tracks = conform(
        chunk.tracks.join(primary, on="source_key", how="left", maintain_order="left")
        .with_columns(pl.coalesce("primary_key", "artist_key").alias("artist_key"))
        .drop("primary_key"),
        TRACKS,
    )
    chunk.track_artists = conform(
        credits.with_columns(
            pl.when(pl.col("position") == 0)
            .then(pl.lit("primary"))
            .otherwise(pl.lit("featured"))
            .alias("role")
        ),
        TRACK_ARTISTS,
    )
    chunk.albums = conform(
        albums.with_columns(
            k.clean_text(pl.col("title")).fill_null("").alias("title"),
            pl.when(pl.col("artist_name").is_not_null())
            .then(_artist_key(pl.col("artist_name")))
            .otherwise(None)
            .alias("artist_key"),
            pl.col("source_key").alias("spotify_uri"),
        ),
        ALBUMS,
    )
    chunk.artists = conform(artists, ARTISTS)
    return chunk


def artist_genres(collected: Collected) -> dict[str, list[str]]:
    """Artist source key → genres, for the full artist objects that list some."""
    out: dict[str, list[str]] = {}
    names = collected.artists["name"]
    genres = collected.artists["genres"]
    pairs = [(n, g) for n, g in zip(names, genres, strict=True) if g]
    if not pairs:
        return out
    frame = pl.DataFrame({"name": [n for n, _ in pairs]}, schema={"name": pl.String})
    keys = frame.select(_artist_key(pl.col("name")).alias("key"))["key"].to_list()
    for key, (_, found) in zip(keys, pairs, strict=True):
        if key != "name:":
            out.setdefault(key, found)
    return out
