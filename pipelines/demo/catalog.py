"""The demo catalog: MPD-format slices with a planted genre structure.

Playlists are drawn from one "genre" each (a set of artists and their tracks, with genre
words in the playlist names), so collaborative models have real structure to find.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass
from pathlib import Path

GENRES = ("rock", "jazz", "country", "chill", "hip hop", "classical", "carnatic", "rebetiko")
_WORDS = (
    "night",
    "road",
    "summer",
    "blue",
    "river",
    "gold",
    "fire",
    "home",
    "light",
    "dream",
    "stone",
    "rain",
)


@dataclass(frozen=True)
class DemoConfig:
    playlists: int = 2_000
    per_slice: int = 1_000
    artists_per_genre: int = 25
    tracks_per_artist: int = 8
    min_tracks: int = 10
    max_tracks: int = 60
    seed: int = 7


def _uri(kind: str, rng: random.Random) -> str:
    return f"spotify:{kind}:" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(22))


def generate_mpd(out_dir: Path, config: DemoConfig = DemoConfig()) -> list[Path]:
    """Write demo slices (full MPD schema) to ``out_dir``; same config, same bytes."""
    rng = random.Random(config.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    catalog: dict[str, list[dict[str, object]]] = {}
    for genre in GENRES:
        tracks: list[dict[str, object]] = []
        for a in range(config.artists_per_genre):
            artist = f"{genre.title()} {rng.choice(_WORDS).title()} {a}"
            artist_uri = _uri("artist", rng)
            album_uri, album = (
                _uri("album", rng),
                f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS).title()}",
            )
            for t in range(config.tracks_per_artist):
                tracks.append(
                    {
                        "artist_name": artist,
                        "track_uri": _uri("track", rng),
                        "artist_uri": artist_uri,
                        "track_name": f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS)} {t}",
                        "album_uri": album_uri,
                        "duration_ms": rng.randint(120_000, 420_000),
                        "album_name": album,
                    }
                )
        catalog[genre] = tracks
    paths: list[Path] = []
    for start in range(0, config.playlists, config.per_slice):
        end = min(start + config.per_slice, config.playlists)
        playlists = []
        for pid in range(start, end):
            genre = GENRES[pid % len(GENRES)]
            pool = catalog[genre]
            # Popularity within a genre is skewed, as in real playlists.
            weights = [1.0 / (1 + i) ** 0.6 for i in range(len(pool))]
            n = rng.randint(config.min_tracks, config.max_tracks)
            picks = list(dict.fromkeys(rng.choices(range(len(pool)), weights=weights, k=n * 2)))[:n]
            tracks = [dict(pool[i], pos=pos) for pos, i in enumerate(picks)]
            playlists.append(
                {
                    "name": f"{genre} {rng.choice(_WORDS)}",
                    "collaborative": "false",
                    "pid": pid,
                    "modified_at": 1_500_000_000 + pid * 60,
                    "num_tracks": len(tracks),
                    "num_albums": len({t["album_uri"] for t in tracks}),
                    "num_followers": rng.randint(1, 50),
                    "tracks": tracks,
                }
            )
        path = out_dir / f"mpd.slice.{start}-{end - 1}.json"
        payload = {
            "info": {"generated_on": "recsys demo", "slice": f"{start}-{end - 1}", "version": "v1"},
            "playlists": playlists,
        }
        path.write_text(json.dumps(payload, indent=1))
        paths.append(path)
    return paths
