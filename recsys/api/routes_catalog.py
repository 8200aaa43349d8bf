"""Routes over the catalog: tracks and playlists by id and by the words of their names, a
playlist's JSPF and M3U, saving a list of tracks as a playlist, the catalog's counts."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from recsys.api import models
from recsys.api.services import Services
from recsys.catalog import browse, track_search
from recsys.catalog.export import (
    SAVED_NAMESPACE,
    catalog_playlist,
    export_tracks,
    save_playlist,
    to_jspf,
    to_m3u,
)
from recsys.catalog.queries import catalog_stats
from recsys.errors import NotFoundError

router = APIRouter(prefix="/v1", tags=["catalog"])

MAX_ID = 2**63 - 1
TrackId = Annotated[int, Path(ge=1, le=MAX_ID, description="A catalog track id.")]
PlaylistId = Annotated[int, Path(ge=1, le=MAX_ID, description="A catalog playlist id.")]
Words = Annotated[str, Query(max_length=200, description="Words of the name (every one must match).")]
Page = Annotated[int, Query(ge=1, le=10_000, description="Which page, from 1.")]
PageSize = Annotated[int, Query(ge=1, le=browse.MAX_PAGE_SIZE, description="Hits per page.")]

JSPF_TYPE = "application/jspf+json"
M3U_TYPE = "audio/x-mpegurl"


class ExportFormat(StrEnum):
    jspf = "jspf"
    m3u = "m3u"


def services(request: Request) -> Services:
    return request.app.state.services


def _track(hit: track_search.TrackHit) -> models.Track:
    return models.Track(
        track_id=hit.track_id,
        title=hit.title,
        artist=hit.artist,
        duration_ms=hit.duration_ms,
        playlists=hit.playlists,
    )


@router.get(
    "/tracks", response_model=models.TrackPage, summary="Search tracks by the words of title and artist"
)
def search_tracks(
    request: Request, q: Words, page: Page = 1, page_size: PageSize = browse.PAGE_SIZE
) -> models.TrackPage:
    engine = services(request).engine()
    hits = track_search.search_tracks(engine, q, limit=page_size + 1, offset=(page - 1) * page_size)
    return models.TrackPage(
        query=q,
        page=page,
        page_size=page_size,
        tracks=[_track(h) for h in hits[:page_size]],
        next_page=page + 1 if len(hits) > page_size else None,
    )


@router.get("/tracks/{track_id}", response_model=models.Track, summary="A track by its id")
def get_track(request: Request, track_id: TrackId) -> models.Track:
    found = track_search.tracks_by_id(services(request).engine(), [track_id])
    if track_id not in found:
        raise NotFoundError(f"no track {track_id} in the catalog")
    return _track(found[track_id])


@router.get(
    "/playlists", response_model=models.PlaylistPage, summary="Search playlists by the words of their name"
)
def search_playlists(
    request: Request, q: Words = "", page: Page = 1, page_size: PageSize = browse.PAGE_SIZE
) -> models.PlaylistPage:
    found = browse.playlist_page(services(request).engine(), q, page=page, page_size=page_size)
    return models.PlaylistPage(
        query=q,
        page=found.page,
        pages=found.pages,
        page_size=page_size,
        total=found.total,
        playlists=[
            models.PlaylistHit(playlist_id=h.playlist_id, name=h.name, num_tracks=h.num_tracks)
            for h in found.hits
        ],
    )


@router.get(
    "/playlists/{playlist_id}", response_model=models.Playlist, summary="A playlist and its tracks in order"
)
def get_playlist(request: Request, playlist_id: PlaylistId) -> models.Playlist:
    view = browse.playlist_view(services(request).engine(), playlist_id)
    return models.Playlist(
        playlist_id=view.playlist_id,
        name=view.name,
        namespace=view.namespace,
        source_key=view.source_key,
        entries=[
            models.PlaylistEntry(
                position=e.position,
                track_id=e.track_id,
                title=e.title,
                artist=e.artist,
                album=e.album,
                duration_ms=e.duration_ms,
                has_audio=e.audio is not None,
            )
            for e in view.entries
        ],
    )


@router.get(
    "/playlists/{playlist_id}/export",
    summary="A playlist as JSPF or M3U",
    response_class=Response,
    responses={
        200: {
            "content": {JSPF_TYPE: {"schema": {"type": "object"}}, M3U_TYPE: {"schema": {"type": "string"}}},
            "description": "The playlist document: JSPF (XSPF as JSON) or extended M3U.",
        }
    },
)
def export_playlist(
    request: Request,
    playlist_id: PlaylistId,
    format: Annotated[ExportFormat, Query(description="jspf or m3u")] = ExportFormat.jspf,
) -> Response:
    engine = services(request).engine()
    playlist = catalog_playlist(engine, str(playlist_id))
    tracks = export_tracks(engine, playlist.track_ids)
    filename = f"playlist-{playlist.playlist_id}"
    if format == ExportFormat.m3u:
        return Response(
            to_m3u(playlist.name, tracks),
            media_type=M3U_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{filename}.m3u8"'},
        )
    document = to_jspf(playlist.name, tracks, creator=playlist.owner, annotation=playlist.description)
    return Response(
        json.dumps(document, ensure_ascii=False),
        media_type=JSPF_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}.jspf"'},
    )


@router.post(
    "/playlists",
    response_model=models.Saved,
    status_code=201,
    summary="Save tracks as a playlist (namespace saved)",
)
def save(request: Request, body: models.SaveRequest) -> models.Saved:
    saved = save_playlist(
        services(request).engine(),
        name=body.name,
        track_ids=body.track_ids,
        user=body.user,
        description=body.description,
    )
    return models.Saved(playlist_id=saved, namespace=SAVED_NAMESPACE, tracks=len(body.track_ids))


@router.get("/catalog", summary="The catalog's counts")
def counts(request: Request) -> dict[str, Any]:
    with services(request).engine().connect() as conn:
        return catalog_stats(conn)
