"""Routes that recommend: continue a playlist, similar tracks and playlists, words → music, music
for a video, and the likes and dislikes that continuation applies."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile

from recsys.api import models
from recsys.api.errors import ApiError
from recsys.api.limits import BodyTooLarge
from recsys.api.routes_catalog import PlaylistId, TrackId, services
from recsys.catalog.feedback import DISLIKE, LIKE, record_feedback, user_feedback
from recsys.errors import NotFoundError
from recsys.recommend.service import playlist_seeds, resolve_tracks
from recsys.recommend.similar import similar_playlists, similar_tracks
from recsys.recommend.text_search import MAX_PROMPT_CHARS, search_music
from recsys.recommend.video_scoring import ScoredTrack, score_clip

router = APIRouter(prefix="/v1", tags=["recommend"])

VIDEO_ROUTE = "/v1/video/score"
Tag = Annotated[str | None, Query(max_length=100)]
HowMany = Annotated[int, Query(ge=1, le=100, description="How many results.")]


@router.post(
    "/continue", response_model=models.Continuation, summary="Continue a playlist, or seeds and a title"
)
def continue_playlist(request: Request, body: models.ContinueRequest) -> models.Continuation:
    held = services(request)
    engine = held.engine()
    service = held.continuation()
    if body.playlist_id is not None:
        found = playlist_seeds(engine, str(body.playlist_id))
        seeds, title = found.track_ids, found.title
    else:
        found = resolve_tracks(engine, [str(s) for s in body.seeds])
        if found.unknown:
            shown = ", ".join(found.unknown[:10]) + (" …" if len(found.unknown) > 10 else "")
            raise NotFoundError(f"no track {shown} in the catalog")
        seeds, title = found.track_ids, (body.title or "").strip() or None
    opinions = user_feedback(engine, user=body.user) if body.user else {}
    results = service.recommend(
        seeds, title, body.n, artist_cap=body.artist_cap, method=body.method, feedback=opinions
    )
    out = []
    for rank, rec in enumerate(results, 1):
        info = service.tracks.get(rec.track_id)
        out.append(
            models.Recommendation(
                rank=rank,
                track_id=rec.track_id,
                title=info.title if info else None,
                artist=info.artist_name if info else None,
                score=rec.score,
                sources=list(rec.sources),
                because=list(rec.because),
                reason=rec.reason,
            )
        )
    return models.Continuation(
        playlist_id=body.playlist_id,
        title=title,
        seeds=seeds,
        method=body.method.strip().lower(),
        versions=service.versions,
        feedback_applied=len(opinions),
        results=out,
    )


def _filters(culture: str | None, genre: str | None) -> dict[str, str]:
    return {k: v.strip() for k, v in (("culture", culture), ("genre", genre)) if v and v.strip()}


@router.get("/tracks/{track_id}/similar", response_model=models.SimilarTracks, summary="Tracks like a track")
def similar_to_track(
    request: Request,
    track_id: TrackId,
    by: Annotated[models.TrackVector, Query(description="Which vector to compare.")] = models.TrackVector(
        "audio"
    ),
    culture: Tag = None,
    genre: Tag = None,
    n: HowMany = 10,
) -> models.SimilarTracks:
    found = similar_tracks(
        services(request).store(), track_id, by=str(by.value), filters=_filters(culture, genre), n=n
    )
    return models.SimilarTracks(
        track_id=track_id,
        by=str(by.value),
        results=[models.SimilarTrack(**t.as_dict()) for t in found],
    )


@router.get(
    "/playlists/{playlist_id}/similar",
    response_model=models.SimilarPlaylists,
    summary="Playlists like a playlist",
)
def similar_to_playlist(
    request: Request,
    playlist_id: PlaylistId,
    by: Annotated[
        models.PlaylistVector, Query(description="Which vector to compare.")
    ] = models.PlaylistVector("sif"),
    n: HowMany = 10,
) -> models.SimilarPlaylists:
    found = similar_playlists(services(request).store(), playlist_id, by=str(by.value), n=n)
    return models.SimilarPlaylists(
        playlist_id=playlist_id,
        by=str(by.value),
        results=[
            models.SimilarPlaylist(
                playlist_id=p.playlist_id, score=p.score, name=p.name, num_tracks=p.num_tracks
            )
            for p in found
        ],
    )


def _scored(tracks: list[ScoredTrack]) -> list[models.ScoredTrack]:
    def tags(payload: Mapping[str, Any], field: str) -> list[str]:
        return [str(t) for t in payload.get(field) or []]

    return [
        models.ScoredTrack(
            track_id=t.track_id,
            score=t.score,
            video=t.video,
            text=t.text,
            title=t.payload.get("title"),
            artist=t.payload.get("artist"),
            cultures=tags(t.payload, "cultures"),
            genres=tags(t.payload, "genres"),
        )
        for t in tracks
    ]


@router.post("/search/music", response_model=models.MusicResults, summary="Words → music")
def words_to_music(request: Request, body: models.MusicSearch) -> models.MusicResults:
    found = search_music(
        services(request).scorer(), body.prompt, n=body.n, filters=_filters(body.culture, body.genre)
    )
    return models.MusicResults(prompt=body.prompt, results=_scored(found))


@router.post(
    "/video/score",
    response_model=models.VideoResults,
    summary="Music for a video (multipart upload, with the UI's size and duration caps)",
)
def score_video(
    request: Request,
    video: Annotated[UploadFile, File(description="The video file.")],
    prompt: Annotated[str | None, Form(max_length=MAX_PROMPT_CHARS)] = None,
    n: Annotated[int, Form(ge=1, le=50)] = 10,
    culture: Annotated[str | None, Form(max_length=100)] = None,
    genre: Annotated[str | None, Form(max_length=100)] = None,
) -> models.VideoResults:
    held = services(request)
    cfg = held.settings
    name = FilePath(video.filename or "upload").name[:200] or "upload"
    if video.size is not None and video.size > cfg.max_upload_bytes:
        raise BodyTooLarge("upload_too_large", cfg.max_upload_bytes)
    scorer = held.scorer()
    with tempfile.TemporaryDirectory(prefix="recsys-api-video-") as scratch:
        path = FilePath(scratch) / ("upload" + FilePath(name).suffix[:10])
        with path.open("wb") as out:
            shutil.copyfileobj(video.file, out, 1024 * 1024)
        if path.stat().st_size == 0:
            raise ApiError(422, "invalid_video", f"{name}: the file is empty")
        result = score_clip(
            scorer,
            path,
            name=name,
            max_duration_s=cfg.ui_max_video_s,
            prompt=(prompt or "").strip() or None,
            n=n,
            filters=_filters(culture, genre),
        )
    return models.VideoResults(
        name=name,
        prompt=(prompt or "").strip() or None,
        frames=result.frames,
        seconds=result.seconds,
        soundtrack=result.soundtrack,
        truncated=result.truncated,
        results=_scored(result.tracks),
    )


@router.post("/feedback", response_model=models.Feedback, summary="Like or dislike a track, as a user")
def give_feedback(request: Request, body: models.FeedbackRequest) -> models.Feedback:
    engine = services(request).engine()
    rating = LIKE if body.rating == "like" else DISLIKE
    record_feedback(engine, user=body.user, track_id=body.track_id, rating=rating, context=body.context)
    return _opinions(engine, body.user)


@router.get("/feedback", response_model=models.Feedback, summary="A user's likes and dislikes")
def read_feedback(
    request: Request, user: Annotated[str, Query(min_length=1, max_length=128)]
) -> models.Feedback:
    return _opinions(services(request).engine(), user)


def _opinions(engine: Any, user: str) -> models.Feedback:
    opinions = user_feedback(engine, user=user)
    return models.Feedback(
        user=user.strip(),
        likes=[t for t, r in opinions.items() if r == LIKE],
        dislikes=[t for t, r in opinions.items() if r == DISLIKE],
    )
