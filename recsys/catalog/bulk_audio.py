"""Audio assets in bulk: which catalog track a file belongs to, and idempotent asset rows.

Matching (``match_tracks``) runs in the database on a staged frame of candidates:
first by ISRC, then by recording key (normalised primary artist and title, see
``recsys.catalog.keys``) when the durations agree within ``tolerance_ms`` or one
of them is unknown. Assets (``merge_assets``) are keyed by their URI: the same file
twice changes nothing, and a file whose bytes changed is updated in place.
"""

from __future__ import annotations

import polars as pl
from sqlalchemy import Connection, select, text

from recsys.catalog.frames import conform
from recsys.catalog.schema import AudioAsset
from recsys.catalog.staging import stage

DURATION_TOLERANCE_MS = 3_000

CANDIDATES = {"seq": pl.Int64, "isrc": pl.String, "recording_key": pl.String, "duration_ms": pl.Int64}
ASSETS = {
    "uri": pl.String,
    "checksum": pl.String,
    "size_bytes": pl.Int64,
    "format": pl.String,
    "sample_rate": pl.Int64,
    "channels": pl.Int64,
    "duration_s": pl.Float64,
    "tags": pl.String,  # a JSON object as text
    "track_id": pl.Int64,  # an existing track, or null to resolve ``track_key``
    "track_key": pl.String,
    "batch_id": pl.Int64,
}


def known_assets(conn: Connection, uris: list[str]) -> dict[str, str]:
    """uri → checksum of the assets already stored among ``uris``."""
    if not uris:
        return {}
    rows = conn.execute(select(AudioAsset.uri, AudioAsset.checksum).where(AudioAsset.uri.in_(uris)))
    return {uri: checksum for uri, checksum in rows}


def match_tracks(
    conn: Connection, candidates: pl.DataFrame, *, tolerance_ms: int = DURATION_TOLERANCE_MS
) -> dict[int, tuple[int, str]]:
    """seq → (track id, "isrc" or "name") for the candidates that match an existing track.

    Among several name matches the closest duration wins, then the lowest id.
    """
    if not stage(conn, "s_audio_match", conform(candidates, CANDIDATES)):
        return {}
    out: dict[int, tuple[int, str]] = {}
    for seq, track_id in conn.execute(
        text(
            """SELECT s.seq, MIN(t.id) FROM s_audio_match s JOIN track t ON t.isrc = s.isrc
               WHERE s.isrc IS NOT NULL GROUP BY s.seq"""
        )
    ):
        out[int(seq)] = (int(track_id), "isrc")
    best: dict[int, tuple[int, int]] = {}
    for seq, track_id, gap in conn.execute(
        text(
            """SELECT s.seq, t.id, ABS(t.duration_ms - s.duration_ms)
               FROM s_audio_match s JOIN track t ON t.recording_key = s.recording_key
               WHERE s.recording_key IS NOT NULL
                 AND (s.duration_ms IS NULL OR t.duration_ms IS NULL
                      OR ABS(t.duration_ms - s.duration_ms) <= :tolerance)"""
        ),
        {"tolerance": tolerance_ms},
    ):
        if int(seq) in out:
            continue
        rank = (int(gap) if gap is not None else tolerance_ms + 1, int(track_id))
        if int(seq) not in best or rank < best[int(seq)]:
            best[int(seq)] = rank
    for seq, (_, track_id) in best.items():
        out[seq] = (track_id, "name")
    return out


def merge_assets(conn: Connection, assets: pl.DataFrame) -> int:
    """Insert or update asset rows (by URI) inside the caller's transaction; returns rows written."""
    if not stage(conn, "s_audio", conform(assets, ASSETS)):
        return 0
    tags = "CAST(s.tags AS JSON)" if conn.dialect.name == "postgresql" else "s.tags"
    result = conn.execute(
        text(
            f"""INSERT INTO audio_asset (track_id, uri, checksum, size_bytes, format, sample_rate, channels,
                                         duration_s, tags, batch_id)
                SELECT COALESCE(s.track_id, t.id), s.uri, s.checksum, s.size_bytes, s.format, s.sample_rate,
                       s.channels, s.duration_s, {tags}, s.batch_id
                FROM s_audio s LEFT JOIN track t ON t.source_key = s.track_key
                WHERE COALESCE(s.track_id, t.id) IS NOT NULL
                ON CONFLICT (uri) DO UPDATE SET
                    track_id = excluded.track_id, checksum = excluded.checksum,
                    size_bytes = excluded.size_bytes, format = excluded.format,
                    sample_rate = excluded.sample_rate, channels = excluded.channels,
                    duration_s = excluded.duration_s, tags = excluded.tags, batch_id = excluded.batch_id
                WHERE audio_asset.checksum <> excluded.checksum"""
        )
    )
    return result.rowcount or 0
