"""The Million Playlist Dataset Challenge: a submission written by the continuation service.

Seed URIs are looked up in the catalog (unknown ones are left out of the seeds, and
counted); each playlist is continued by the service (the ranker when one is trained,
the fusion otherwise) and completed, if the catalog had too few tracks with a Spotify
URI to give, by the catalog's most frequent tracks.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select

from recsys.catalog.schema import DEFAULT_NAMESPACE, Playlist, PlaylistTrack, Track
from recsys.recommend.challenge import (
    SUBMISSION_SIZE,
    ChallengePlaylist,
    continue_challenge,
    read_challenge_set,
    write_submission,
)
from recsys.recommend.continuation import ContinuationService


@dataclass(frozen=True)
class ChallengeReport:
    playlists: int
    unknown_seeds: int  # seed URIs the catalog does not hold
    padded: int  # playlists completed from the most frequent tracks
    out: Path


def track_uris(engine: Engine) -> dict[int, str]:
    """Catalog track id → Spotify URI, for the tracks that have one."""
    with engine.connect() as conn:
        rows = conn.execute(select(Track.id, Track.spotify_uri).where(Track.spotify_uri.is_not(None)))
        return {int(track_id): str(uri) for track_id, uri in rows}


def most_frequent_uris(engine: Engine, namespace: str, limit: int) -> list[str]:
    """URIs of the tracks listed by the most playlists of ``namespace``, most first."""
    with engine.connect() as conn:
        count = func.count(func.distinct(PlaylistTrack.playlist_id))
        rows = conn.execute(
            select(Track.spotify_uri)
            .join(PlaylistTrack, PlaylistTrack.track_id == Track.id)
            .join(Playlist, Playlist.id == PlaylistTrack.playlist_id)
            .where(Playlist.namespace == namespace, Track.spotify_uri.is_not(None))
            .group_by(Track.id, Track.spotify_uri)
            .order_by(count.desc(), Track.id)
            .limit(limit)
        )
        return [str(uri) for (uri,) in rows]


def write_challenge_submission(
    engine: Engine,
    service: ContinuationService,
    challenge: Path,
    out: Path,
    *,
    team: str,
    email: str,
    namespace: str = DEFAULT_NAMESPACE,
) -> ChallengeReport:
    """Read the challenge set, continue every playlist and write the gzipped submission."""
    playlists = read_challenge_set(challenge)
    uri_of = track_uris(engine)
    id_of = {uri: track_id for track_id, uri in uri_of.items()}
    fallback = most_frequent_uris(
        engine, namespace, SUBMISSION_SIZE + max((len(p.seeds) for p in playlists), default=0)
    )
    unknown = 0
    padded = 0

    def recommend(playlist: ChallengePlaylist, n: int) -> list[str]:
        nonlocal unknown, padded
        seeds = [id_of[uri] for uri in playlist.seeds if uri in id_of]
        unknown += len(playlist.seeds) - len(seeds)
        title = (playlist.name or "").strip() or None
        uris: list[str] = []
        if seeds or title:
            # a few more than needed: tracks without a URI are dropped
            recs = service.recommend(seeds, title, n + n // 10)
            uris = [uri_of[r.track_id] for r in recs if r.track_id in uri_of]
        fresh = set(uris) - set(playlist.seeds)
        if len(fresh) < n:
            padded += 1
        return uris

    lines = write_submission(out, continue_challenge(playlists, recommend, fallback), team=team, email=email)
    return ChallengeReport(lines, unknown, padded, out)
