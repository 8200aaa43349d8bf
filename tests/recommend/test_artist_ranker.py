"""Known answer: tracks seen once, artists seen often. Only the artist-level sources find the
withheld tracks, and the ranker learns to put them first; without those sources it cannot."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from recsys.collaborative.baselines import ItemKNN, Popularity
from recsys.collaborative.matrix import InteractionMatrix, from_frame
from recsys.recommend.artist_sources import ArtistIndex, ArtistNeighbourSource, SeedArtistSource
from recsys.recommend.candidates import CandidateSource, ScorerSource
from recsys.recommend.continuation import ContinuationService
from recsys.recommend.diversify import TrackTable
from recsys.recommend.ranker import (
    Example,
    RankerConfig,
    RankerStage,
    fit_ranker,
    pool_candidates,
    training_matrix,
)
from recsys.recommend.ranker_features import ARTIST_SOURCES, FEATURES, PairFeatures

ARTISTS, PER_ARTIST, HITS = 12, 40, 60
SMALL = RankerConfig(pool=300, trees=40, num_leaves=15, min_data_in_leaf=20, threads=1)


def artist_track(artist: int, j: int) -> int:
    return 1000 * (artist + 1) + j


def planted() -> tuple[InteractionMatrix, TrackTable]:
    """Every artist track sits in one playlist of its own, among 8 random hits (each hit its
    own artist): no track co-occurs with another track of its artist, but the artist
    appears in 40 playlists."""
    rng = np.random.default_rng(3)
    hits = np.arange(HITS) + 100
    rows = []
    playlist = 0
    for artist in range(ARTISTS):
        for j in range(PER_ARTIST):
            rows.append((playlist, artist_track(artist, j)))
            rows += [(playlist, int(h)) for h in rng.choice(hits, size=8, replace=False)]
            playlist += 1
    entries = pl.DataFrame(rows, schema={"playlist_id": pl.Int64, "track_id": pl.Int64}, orient="row")
    matrix = from_frame(entries, row="playlist_id", item="track_id")
    ids = [artist_track(a, j) for a in range(ARTISTS) for j in range(PER_ARTIST)] + hits.tolist() + [999_999]
    artist_ids = [a + 1 for a in range(ARTISTS) for _ in range(PER_ARTIST)] + (hits + 500).tolist() + [1]
    recordings = [f"r{t}" for t in ids[:-1]] + [f"r{artist_track(0, 0)}"]  # 999999: a second release
    tracks = TrackTable(
        pl.DataFrame(
            {
                "track_id": ids,
                "title": [f"song {t}" for t in ids],
                "artist_name": [f"artist {a}" for a in artist_ids],
                "artist_id": artist_ids,
                "recording_key": recordings,
            }
        )
    )
    return matrix, tracks


def examples(seed: int, count: int) -> list[Example]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        artist = int(rng.integers(ARTISTS))
        chosen = rng.permutation(PER_ARTIST)[:15]
        songs = [artist_track(artist, int(j)) for j in chosen]
        out.append(Example(tuple(songs[:5]), None, tuple(songs[5:])))
    return out


@pytest.fixture(scope="module")
def world() -> dict[str, object]:
    matrix, tracks = planted()
    knn, popularity = ItemKNN(), Popularity()
    knn.fit(matrix)
    popularity.fit(matrix)
    index = ArtistIndex(matrix, tracks.artists())
    sources: list[CandidateSource] = [
        ScorerSource(knn, matrix.items, positive_only=True),
        ScorerSource(popularity, matrix.items, needs_seeds=False, static=True),
        ArtistNeighbourSource(index),
        SeedArtistSource(index),
    ]
    features = PairFeatures(matrix, index, tracks.titles())
    return {"matrix": matrix, "tracks": tracks, "sources": sources, "features": features}


def train(world: dict[str, object], config: RankerConfig) -> RankerStage:
    sources, features = world["sources"], world["features"]
    assert isinstance(features, PairFeatures)

    def pool_of(example: Example):  # type: ignore[no-untyped-def]
        lists = {s.name: s.candidates(example.seeds, None, config.pool) for s in sources}  # type: ignore[attr-defined]
        return pool_candidates(lists, features, example.seeds, None, config), example.holdout

    x, y, groups = training_matrix(pool_of(e) for e in examples(1, 40))
    assert x.shape == (sum(groups), len(FEATURES))
    return RankerStage(fit_ranker(x, y, groups, config), features)


def recall(service: ContinuationService, cases: list[Example], method: str) -> float:
    """Share of the withheld tracks among the first 35 results (35: the artist's tracks not
    seeded, which all look alike, since each was seen once)."""
    scores = []
    for case in cases:
        got = [r.track_id for r in service.recommend(list(case.seeds), None, PER_ARTIST - 5, method=method)]
        scores.append(len(set(got) & set(case.holdout)) / len(case.holdout))
    return float(np.mean(scores))


def test_only_the_artist_sources_find_tracks_seen_once(world: dict[str, object]) -> None:
    case = examples(2, 1)[0]
    found = {}
    for source in world["sources"]:  # type: ignore[attr-defined]
        got = set(source.candidates(case.seeds, None, 100).track_ids.tolist())
        found[source.name] = len(got & set(case.holdout))
    assert found["knn"] == 0 and found["popularity"] == 0, found
    assert found["seed_artists"] == len(case.holdout) and found["artist_knn"] == len(case.holdout), found


def test_the_ranker_learns_to_use_the_artist_sources(world: dict[str, object]) -> None:
    tracks, sources = world["tracks"], world["sources"]
    assert isinstance(tracks, TrackTable)
    weights = {"knn": 1.0, "popularity": 0.1, "artist_knn": 0.0, "seed_artists": 0.0}
    with_artists = ContinuationService(sources, tracks, weights=weights, ranker=train(world, SMALL))  # type: ignore[arg-type]
    # neither the artist sources nor the artist features: what is left cannot tell the artist's tracks
    blind = RankerConfig.from_dict(
        {**SMALL.as_dict(), "drop_sources": ARTIST_SOURCES, "drop_groups": ("artist",)}
    )
    without = ContinuationService(sources, tracks, weights=weights, ranker=train(world, blind))  # type: ignore[arg-type]
    cases = examples(5, 20)
    assert recall(with_artists, cases, "ranker") >= 0.9
    assert recall(with_artists, cases, "fusion") == 0.0
    assert recall(without, cases, "ranker") <= 0.1
    importances = with_artists.ranker.ranker.importances()  # type: ignore[union-attr]
    artist_driven = {*(f"{s}_{k}" for s in ARTIST_SOURCES for k in ("score", "rank", "relative")),
                     "seed_artist_count", "seed_artist_share", "artist_cosine"}  # fmt: skip
    assert sum(v for k, v in importances.items() if k in artist_driven) > 0.5, importances


def test_ranked_results_keep_reasons_filters_and_are_deterministic(world: dict[str, object]) -> None:
    tracks, sources = world["tracks"], world["sources"]
    assert isinstance(tracks, TrackTable)
    first, second = train(world, SMALL), train(world, SMALL)
    assert first.ranker.version == second.ranker.version
    service = ContinuationService(sources, tracks, ranker=first)  # type: ignore[arg-type]
    seeds = [artist_track(0, 0), artist_track(0, 1)]
    recs = service.recommend(seeds, None, 30, artist_cap=4)
    assert recs and not {r.track_id for r in recs} & {*seeds, 999_999}  # seeds and the second release
    per_artist: dict[int | None, int] = {}
    for r in recs:
        per_artist[tracks.artist(r.track_id)] = per_artist.get(tracks.artist(r.track_id), 0) + 1
    assert max(per_artist.values()) <= 4
    by_artist = [r for r in recs if tracks.artist(r.track_id) == 1]
    assert by_artist and all("more by the seeds' artists" in r.reason for r in by_artist)
    assert all(set(r.because) <= set(seeds) for r in by_artist) and by_artist[0].because
    again = ContinuationService(sources, tracks, ranker=second).recommend(seeds, None, 30, artist_cap=4)  # type: ignore[arg-type]
    assert [r.track_id for r in again] == [r.track_id for r in recs]
    assert service.methods[:3] == ["hybrid", "ranker", "fusion"]
