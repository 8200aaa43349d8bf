"""Tracks that sound like a track: nearest neighbours of one of its named vectors in ``tracks``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from recsys.vectorstore.base import Filter, Match, VectorStore
from recsys.vectorstore.collections import TRACKS

# What ``--by`` accepts, and the named vector each one searches.
SIMILARITY_VECTORS = {"audio": "audio", "audio_dsp": "audio_dsp", "dsp": "audio_dsp"}


@dataclass(frozen=True)
class SimilarTrack:
    track_id: int
    score: float
    title: str | None
    artist: str | None
    cultures: list[str]
    genres: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "score": round(self.score, 6),
            "title": self.title,
            "artist": self.artist,
            "cultures": self.cultures,
            "genres": self.genres,
        }


def similar_tracks(
    store: VectorStore, track_id: int, *, by: str = "audio", culture: str | None = None, n: int = 10
) -> list[SimilarTrack]:
    """The ``n`` tracks nearest to ``track_id`` by the ``by`` vector, never the track itself.

    ``culture`` keeps only tracks tagged with it. Raises ``NotFoundError`` when the
    track has no such vector (not embedded yet) or the collection does not exist.
    """
    if by not in SIMILARITY_VECTORS:
        raise ValueError(f"--by must be one of {', '.join(SIMILARITY_VECTORS)}, not {by!r}")
    using = SIMILARITY_VECTORS[by]
    flt = Filter.where(Match("cultures", culture)) if culture else None
    hits = store.recommend(TRACKS, using=using, positive=[track_id], filter=flt, limit=n)
    return [
        SimilarTrack(
            track_id=int(hit.payload.get("track_id", hit.id)),
            score=float(hit.score),
            title=hit.payload.get("title"),
            artist=hit.payload.get("artist"),
            cultures=list(hit.payload.get("cultures", [])),
            genres=list(hit.payload.get("genres", [])),
        )
        for hit in hits
    ]
