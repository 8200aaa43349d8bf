"""Spotify Web API → catalog: playlists by id or URL, the current user's playlists, albums,
tracks, artists and saved tracks, through spotipy.

Each input (one playlist, one album, one track, one artist, the saved tracks) is fetched
whole, following every ``next`` page, then ingested as one batch (source ``spotify``,
location its URI, checksum the sha256 of the canonical JSON of what was fetched) in one
transaction: the same answer twice is skipped, so re-running changes nothing.

Spotify has closed much of the Web API (see the README): a 403 or 404 for one input is
reported in one line and stored as a reject, and the other inputs go on. Playlist items
come from the playlist's own answer when it embeds them, else from
``/playlists/{id}/items`` (the old ``/playlists/{id}/tracks`` when ``/items`` is 404).
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, update

from pipelines.ingest.guards import MAX_ID_BYTES, InputLimits, check_namespace
from pipelines.ingest.report import IngestReport, Progress
from pipelines.ingest.spotify_client import SpotifyApi, SpotifyRefused
from pipelines.ingest.spotify_map import Collected, artist_genres, catalog_chunk, parse_id
from recsys.catalog import batches
from recsys.catalog.db import write_transaction
from recsys.catalog.merges import merge_chunk
from recsys.catalog.schema import DEFAULT_NAMESPACE, Artist
from recsys.errors import ConfigError, InputError, RecordError

SOURCE = "spotify"
PAGE_LIMIT = 50


@dataclass
class SpotifyInputs:
    """What to ingest: ids, URIs or URLs per kind, and the current user's library."""

    playlists: list[str] = field(default_factory=list)
    albums: list[str] = field(default_factory=list)
    tracks: list[str] = field(default_factory=list)
    artists: list[str] = field(default_factory=list)
    mine: bool = False  # the current user's playlists
    saved: bool = False  # the current user's saved tracks

    def is_empty(self) -> bool:
        return not (self.playlists or self.albums or self.tracks or self.artists or self.mine or self.saved)

    def require_any(self) -> None:
        """Raise InputError when nothing was asked for."""
        if self.is_empty():
            raise InputError(
                "nothing to ingest: give --playlist, --mine, --album, --track, --artist or --saved"
            )


@dataclass
class Job:
    location: str  # spotify:playlist:<id>, spotify:album:<id>, …, me/tracks
    what: str  # for messages: "playlist 37i9…"
    fetch: Callable[[], Any]  # the whole answer to ingest


def canonical_checksum(document: Any) -> str:
    """sha256 of the canonical JSON (sorted keys) of a document."""
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _page_items(page: dict[str, Any], what: str) -> list[Any]:
    items = page.get("items")
    if not isinstance(items, list):
        raise RecordError(f"{what}: a page of the answer has no 'items' list")
    return items


def all_items(api: SpotifyApi, what: str, first: dict[str, Any]) -> list[Any]:
    """The items of a paging object and of every page after it."""
    return [item for page in api.pages(what, first) for item in _page_items(page, what)]


def _embedded_page(playlist: dict[str, Any]) -> dict[str, Any] | None:
    """The first page of items in a playlist answer, when it carries full track objects."""
    page = playlist.get("items") if isinstance(playlist.get("items"), dict) else playlist.get("tracks")
    if not isinstance(page, dict) or not isinstance(page.get("items"), list):
        return None
    for item in page["items"]:
        obj = item.get("item", item.get("track")) if isinstance(item, dict) else None
        if isinstance(obj, dict) and "uri" not in obj:
            return None  # a fields-filtered answer: fetch the items themselves
    return page


def playlist_items(api: SpotifyApi, pid: str) -> list[Any]:
    """Every item of a playlist from ``/playlists/{id}/items`` (or the old ``/tracks`` when that is 404)."""
    what = f"playlist {pid}"
    try:
        first = api.get(
            what, api.sp.playlist_items, pid, limit=PAGE_LIMIT, additional_types=("track", "episode")
        )
    except SpotifyRefused as exc:
        if exc.status != 404:
            raise
        try:
            first = api.get(
                what,
                api.sp._get,
                f"playlists/{pid}/tracks",
                limit=PAGE_LIMIT,
                additional_types="track,episode",
            )
        except SpotifyRefused:
            raise exc from None
    return all_items(api, what, first)


def _with_items(playlist: dict[str, Any], items: list[Any]) -> dict[str, Any]:
    head = {k: v for k, v in playlist.items() if k not in ("items", "tracks")}
    return head | {"type": "playlist", "items": {"items": items}}


def fetch_playlist(api: SpotifyApi, pid: str) -> dict[str, Any]:
    what = f"playlist {pid}"
    playlist = api.get(what, api.sp.playlist, pid, additional_types=("track", "episode"))
    page = _embedded_page(playlist)
    items = all_items(api, what, page) if page is not None else playlist_items(api, pid)
    return _with_items({"id": pid} | playlist, items)  # a fields-filtered answer may omit its id


def fetch_album(api: SpotifyApi, aid: str) -> dict[str, Any]:
    what = f"album {aid}"
    album = api.get(what, api.sp.album, aid)
    page = album.get("tracks")
    if not isinstance(page, dict) or not isinstance(page.get("items"), list):
        page = api.get(what, api.sp.album_tracks, aid, limit=PAGE_LIMIT)
    return album | {"type": "album", "tracks": {"items": all_items(api, what, page)}}


def fetch_artist(api: SpotifyApi, aid: str, report: IngestReport) -> dict[str, Any]:
    what = f"artist {aid}"
    artist = api.get(what, api.sp.artist, aid)
    try:
        with warnings.catch_warnings():  # spotipy warns that Spotify deprecated the endpoint: handled below
            warnings.simplefilter("ignore", DeprecationWarning)
            top = api.get(f"{what} top tracks", api.sp.artist_top_tracks, aid)
    except SpotifyRefused as exc:  # a closed endpoint for many apps: the artist itself still lands
        report.messages.append(f"spotify: {exc}")
        top = {}
    return {"artist": artist, "top_tracks": top.get("tracks") or []}


def fetch_saved(api: SpotifyApi) -> dict[str, Any]:
    what = "saved tracks"
    return {"items": all_items(api, what, api.get(what, api.sp.current_user_saved_tracks, limit=PAGE_LIMIT))}


def my_playlist_jobs(api: SpotifyApi, report: IngestReport) -> Iterator[Job]:
    """One job per playlist of the current user (their items from ``/playlists/{id}/items``)."""
    what = "the current user's playlists"
    for index, meta in enumerate(
        all_items(api, what, api.get(what, api.sp.current_user_playlists, limit=PAGE_LIMIT))
    ):
        pid = meta.get("id") if isinstance(meta, dict) else None
        if not isinstance(pid, str) or not pid.isalnum() or not pid.isascii() or len(pid) > MAX_ID_BYTES:
            report.messages.append(f"spotify: {what}[{index}] has no valid playlist id: skipped")
            continue
        yield Job(
            f"spotify:playlist:{pid}",
            f"playlist {pid}",
            partial(_listed_playlist, api, meta, pid),
        )


def _listed_playlist(api: SpotifyApi, meta: dict[str, Any], pid: str) -> dict[str, Any]:
    return _with_items(meta, playlist_items(api, pid))


def plan(api: SpotifyApi, inputs: SpotifyInputs, report: IngestReport) -> Iterator[Job]:
    """The jobs for ``inputs``, each location once, in the order given."""
    ids = {
        kind: [parse_id(kind, value) for value in values]
        for kind, values in (
            ("playlist", inputs.playlists),
            ("album", inputs.albums),
            ("track", inputs.tracks),
            ("artist", inputs.artists),
        )
    }
    seen: set[str] = set()
    jobs: list[Job | Callable[[], Iterator[Job]]] = []
    jobs += [
        Job(f"spotify:playlist:{i}", f"playlist {i}", partial(fetch_playlist, api, i))
        for i in ids["playlist"]
    ]
    if inputs.mine:
        jobs.append(partial(my_playlist_jobs, api, report))
    jobs += [Job(f"spotify:album:{i}", f"album {i}", partial(fetch_album, api, i)) for i in ids["album"]]
    jobs += [
        Job(f"spotify:track:{i}", f"track {i}", partial(api.get, f"track {i}", api.sp.track, i))
        for i in ids["track"]
    ]
    jobs += [
        Job(f"spotify:artist:{i}", f"artist {i}", partial(fetch_artist, api, i, report))
        for i in ids["artist"]
    ]
    if inputs.saved:
        jobs.append(Job("me/tracks", "saved tracks", partial(fetch_saved, api)))
    for job in jobs:
        expanded = [job] if isinstance(job, Job) else _listing(job, report)
        for one in expanded:
            if one.location not in seen:
                seen.add(one.location)
                yield one


def _listing(make: Callable[[], Iterator[Job]], report: IngestReport) -> list[Job]:
    try:
        return list(make())
    except SpotifyRefused as exc:
        report.messages.append(f"spotify: {exc}")
        return []


def ingest_spotify(
    engine: Engine,
    api: SpotifyApi,
    inputs: SpotifyInputs,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    progress: Progress | None = None,
    limits: InputLimits | None = None,
) -> IngestReport:
    """Fetch and ingest every input; 403/404 and unreadable answers are reported per input.

    ``limits``: the names kept (``max_name_chars``); the answers' size and depth are the
    client's (:class:`~pipelines.ingest.spotify_client.SpotifyApi`).
    """
    inputs.require_any()
    check_namespace(namespace)
    if (inputs.mine or inputs.saved) and not api.user_token:
        raise ConfigError(
            "--mine and --saved read the current user's library: set RECSYS_SPOTIFY_ACCESS_TOKEN to a user token"
        )
    report = IngestReport(source=SOURCE)
    progress = progress or Progress.quiet()
    task = progress.start("ingest spotify", total=None)
    try:
        for job in plan(api, inputs, report):
            report.inputs += 1
            try:
                document = job.fetch()
            except SpotifyRefused as exc:
                report.messages.append(f"spotify: {exc}")
                _reject_input(engine, report, job.location, f"HTTP {exc.status} {exc.message}", None)
            except RecordError as exc:
                report.unreadable.append(str(exc))
                _reject_input(engine, report, job.location, str(exc).split(": ", 1)[-1], api.last_body)
            else:
                ingest_document(
                    engine, job.location, document, namespace=namespace, report=report, limits=limits
                )
            progress.advance(task)
    finally:
        progress.stop()
    return report


def ingest_document(
    engine: Engine,
    location: str,
    document: Any,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    report: IngestReport | None = None,
    limits: InputLimits | None = None,
) -> IngestReport:
    """Ingest one Web API answer (any shape: playlist, album, track, artist, a page or a search) as one batch."""
    report = report if report is not None else IngestReport(source=SOURCE)
    limits = limits or InputLimits()
    check_namespace(namespace)
    checksum = canonical_checksum(document)
    with engine.connect() as conn:
        if batches.find_done_batch(conn, SOURCE, location, checksum) is not None:
            report.skipped += 1
            return report
    log = batches.RejectLog(SOURCE)
    collected = Collected()
    collected.document(document, location, log)
    with write_transaction(engine) as conn:
        batch_id = batches.open_batch(conn, SOURCE, location, checksum)
        merge_chunk(conn, catalog_chunk(collected, log, batch_id, limits.max_name_chars), namespace=namespace)
        store_genres(conn, artist_genres(collected))
        batches.close_batch(
            conn,
            batch_id,
            loaded=collected.n_tracks,
            rejected=len(log.rows),
            detail={
                "playlists": collected.n_playlists,
                "entries": collected.n_entries,
                "tracks": collected.n_tracks,
            },
        )
    counts = {
        "playlists": collected.n_playlists,
        "playlist_tracks": collected.n_entries,
        "tracks": collected.n_tracks,
    }
    report.add_loaded(**{k: v for k, v in counts.items() if v})
    report.add_rejects(log)
    return report


def store_genres(conn: Connection, genres: dict[str, list[str]]) -> int:
    """Give artists without genres the ones a full artist object listed; returns rows updated."""
    updated = 0
    for key, values in genres.items():
        result = conn.execute(
            update(Artist).where(Artist.source_key == key, Artist.genres.is_(None)).values(genres=values)
        )
        updated += result.rowcount or 0
    return updated


def _reject_input(engine: Engine, report: IngestReport, location: str, reason: str, raw: Any) -> None:
    log = batches.RejectLog(SOURCE)
    log.add(location, reason, raw)
    report.add_rejects(log)
    with write_transaction(engine) as conn:
        log.flush(conn)
