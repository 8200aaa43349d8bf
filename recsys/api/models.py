"""The API's request and response bodies (pydantic): what the OpenAPI schema at ``/docs`` shows.

Request bodies refuse fields they do not know (a misspelt ``artist_cap`` is an error,
not a silently ignored option). Bounds are the UI's: at most 500 continued tracks, 100
similar tracks or playlists, 50 scored clips, 500 characters of a description.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from recsys.catalog.export import MAX_DESCRIPTION, MAX_NAME, MAX_TRACKS
from recsys.catalog.feedback import MAX_CONTEXT, MAX_USER
from recsys.recommend.similar import PLAYLIST_VECTORS, SIMILARITY_VECTORS
from recsys.recommend.text_search import MAX_PROMPT_CHARS

MAX_SEEDS = 500

TrackVector = StrEnum("TrackVector", {name: name for name in SIMILARITY_VECTORS})  # type: ignore[misc]
PlaylistVector = StrEnum("PlaylistVector", {name: name for name in PLAYLIST_VECTORS})  # type: ignore[misc]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable code of the error (see the API's documentation).")
    message: str = Field(description="One line saying what went wrong.")


class ErrorBody(BaseModel):
    error: ErrorDetail


# --------------------------------------------------------------------------- health


class Health(BaseModel):
    status: Literal["ok"]


class Check(BaseModel):
    ok: bool
    detail: str


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    database: Check
    vector_store: Check
    collections: dict[str, int | None] = Field(description="Published version of each collection.")
    continuation: dict[str, Any] | None = Field(description="Methods and model versions, once loaded.")
    video: dict[str, Any] | None = Field(description="The video–music model's version, once loaded.")
    problems: dict[str, str] = Field(description="What could not be loaded, and why.")


# --------------------------------------------------------------------------- catalog


class Track(BaseModel):
    track_id: int
    title: str
    artist: str
    duration_ms: int | None
    playlists: int = Field(description="Entries in playlists: how well known the track is.")


class TrackPage(BaseModel):
    query: str
    page: int
    page_size: int
    tracks: list[Track]
    next_page: int | None = Field(description="The next page's number, or null on the last page.")


class PlaylistHit(BaseModel):
    playlist_id: int
    name: str
    num_tracks: int


class PlaylistPage(BaseModel):
    query: str
    page: int
    pages: int
    page_size: int
    total: int
    playlists: list[PlaylistHit]


class PlaylistEntry(BaseModel):
    position: int
    track_id: int
    title: str
    artist: str
    album: str | None
    duration_ms: int | None
    has_audio: bool


class Playlist(BaseModel):
    playlist_id: int
    name: str
    namespace: str
    source_key: str
    entries: list[PlaylistEntry]


class SaveRequest(_Request):
    name: str = Field(min_length=1, max_length=MAX_NAME)
    track_ids: list[int] = Field(min_length=1, max_length=MAX_TRACKS)
    user: str | None = Field(default=None, max_length=MAX_USER)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)


class Saved(BaseModel):
    playlist_id: int
    namespace: str
    tracks: int


# --------------------------------------------------------------------------- recommendations


class ContinueRequest(_Request):
    """A catalog playlist to continue, or seed tracks and/or a title (one or the other)."""

    playlist_id: int | None = Field(default=None, ge=1, description="A catalog playlist to continue.")
    seeds: list[int | str] = Field(
        default_factory=list,
        max_length=MAX_SEEDS,
        description="Seed tracks: catalog ids, Spotify URIs or source keys.",
    )
    title: str | None = Field(default=None, max_length=MAX_NAME, description="A title for the new playlist.")
    method: str = Field(
        default="hybrid", description="hybrid, or one source: als, knn, title, popularity, seq2seq."
    )
    n: int = Field(default=25, ge=1, le=500, description="How many tracks.")
    artist_cap: int | None = Field(default=None, ge=1, le=50, description="At most this many per artist.")
    user: str | None = Field(
        default=None, max_length=MAX_USER, description="Whose likes and dislikes to apply (as the UI does)."
    )

    @model_validator(mode="after")
    def _one_start(self) -> ContinueRequest:
        if self.playlist_id is not None and (self.seeds or self.title):
            raise ValueError("give playlist_id, or seeds and a title, not both")
        if self.playlist_id is None and not self.seeds and not (self.title or "").strip():
            raise ValueError("give playlist_id, or seeds, a title, or both")
        return self


class Recommendation(BaseModel):
    rank: int
    track_id: int
    title: str | None
    artist: str | None
    score: float
    sources: list[str] = Field(description="The candidate sources that proposed it.")
    because: list[int] = Field(description="The seed tracks that drove it, strongest first.")
    reason: str = Field(description="Why it is here, in a sentence.")


class Continuation(BaseModel):
    playlist_id: int | None
    title: str | None
    seeds: list[int]
    method: str
    versions: dict[str, str] = Field(description="The model versions that answered.")
    feedback_applied: int = Field(description="How many of the user's ratings were applied.")
    results: list[Recommendation]


class SimilarTrack(BaseModel):
    track_id: int
    score: float
    title: str | None
    artist: str | None
    cultures: list[str]
    genres: list[str]


class SimilarTracks(BaseModel):
    track_id: int
    by: str
    results: list[SimilarTrack]


class SimilarPlaylist(BaseModel):
    playlist_id: int
    score: float
    name: str | None
    num_tracks: int | None


class SimilarPlaylists(BaseModel):
    playlist_id: int
    by: str
    results: list[SimilarPlaylist]


class MusicSearch(_Request):
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="What the music should be.")
    n: int = Field(default=10, ge=1, le=100)
    culture: str | None = Field(default=None, max_length=100)
    genre: str | None = Field(default=None, max_length=100)


class ScoredTrack(BaseModel):
    track_id: int
    score: float
    video: float = Field(description="The video's part of the score (0 in a text search).")
    text: float = Field(description="The words' part of the score.")
    title: str | None
    artist: str | None
    cultures: list[str]
    genres: list[str]


class MusicResults(BaseModel):
    prompt: str
    results: list[ScoredTrack]


class VideoResults(BaseModel):
    name: str
    prompt: str | None
    frames: int
    seconds: float
    soundtrack: str
    truncated: bool
    results: list[ScoredTrack]


# --------------------------------------------------------------------------- feedback


class FeedbackRequest(_Request):
    user: str = Field(min_length=1, max_length=MAX_USER)
    track_id: int = Field(ge=1)
    rating: Literal["like", "dislike"]
    context: str | None = Field(default=None, max_length=MAX_CONTEXT)


class Feedback(BaseModel):
    user: str
    likes: list[int]
    dislikes: list[int]
