"""Track facts for post-processing, and the filters: seeds out, one release per recording, artist caps."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class TrackInfo:
    track_id: int
    title: str
    artist_name: str
    artist_id: int | None
    recording_key: str


class TrackTable:
    """The catalog's tracks by id (from ``recsys.catalog.queries.tracks_frame``)."""

    def __init__(self, tracks: pl.DataFrame) -> None:
        columns = ("track_id", "title", "artist_name", "artist_id", "recording_key")
        self._rows: dict[int, TrackInfo] = {
            int(row[0]): TrackInfo(int(row[0]), row[1], row[2], row[3], row[4])
            for row in tracks.select(columns).iter_rows()
        }

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, track_id: object) -> bool:
        return track_id in self._rows

    def get(self, track_id: int) -> TrackInfo | None:
        return self._rows.get(track_id)

    def label(self, track_id: int) -> str:
        info = self._rows.get(track_id)
        return f"“{info.title}” by {info.artist_name}" if info else f"track {track_id}"

    def recording(self, track_id: int) -> str:
        info = self._rows.get(track_id)
        return info.recording_key if info else f"#{track_id}"

    def artists(self) -> dict[int, int | None]:
        """Catalog track id → artist id, for every track."""
        return {t: info.artist_id for t, info in self._rows.items()}

    def titles(self) -> dict[int, tuple[str, str]]:
        """Catalog track id → (title, artist name), for every track."""
        return {t: (info.title or "", info.artist_name or "") for t, info in self._rows.items()}

    def artist(self, track_id: int) -> int | None:
        info = self._rows.get(track_id)
        return info.artist_id if info else None


def diversified(
    track_ids: Iterable[int],
    tracks: TrackTable,
    *,
    seeds: Iterable[int] = (),
    exclude: Iterable[int] = (),
    artist_cap: int | None = None,
) -> Iterator[int]:
    """The tracks in order, leaving out seeds, ``exclude`` (disliked tracks), any recording
    already given, seeded or excluded, and tracks of an artist who already has
    ``artist_cap`` tracks in the result."""
    seeds = set(seeds) | set(exclude)
    seen_recordings = {tracks.recording(t) for t in seeds}
    per_artist: Counter[int] = Counter()
    for track_id in track_ids:
        if track_id in seeds:
            continue
        recording = tracks.recording(track_id)
        if recording in seen_recordings:
            continue
        artist = tracks.artist(track_id)
        if artist_cap is not None and artist is not None and per_artist[artist] >= artist_cap:
            continue
        seen_recordings.add(recording)
        if artist is not None:
            per_artist[artist] += 1
        yield track_id
