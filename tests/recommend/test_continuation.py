"""The continuation service: seeds never come back, one release per recording, caps, fusion, reasons."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recsys.collaborative.matrix import from_frame
from recsys.errors import InputError
from recsys.recommend.candidates import Candidate, CandidateSource, TitleSource, title_key
from recsys.recommend.continuation import ContinuationService
from recsys.recommend.diversify import TrackTable
from recsys.recommend.fusion import reciprocal_rank_fusion

N_TRACKS = 60


def track_table() -> TrackTable:
    # tracks 2k and 2k+1 are two releases of the same recording; 6 artists of 10 tracks each
    ids = list(range(N_TRACKS))
    return TrackTable(
        pl.DataFrame(
            {
                "track_id": ids,
                "title": [f"Song {i // 2}" for i in ids],
                "artist_name": [f"Artist {i // 10}" for i in ids],
                "artist_id": [i // 10 for i in ids],
                "recording_key": [f"artist {i // 10}|song {i // 2}" for i in ids],
            }
        )
    )


class ListSource:
    """Proposes a fixed ranked list (seeds included, to check the service removes them)."""

    def __init__(self, name: str, ranked: Sequence[int], because: tuple[int, ...] = ()) -> None:
        self.name = name
        self.ranked = list(ranked)
        self.because = because

    def candidates(self, seeds: Sequence[int], title: str | None, n: int) -> list[Candidate]:
        return [
            Candidate(t, 1.0 / (i + 1), f"from {self.name}", self.because)
            for i, t in enumerate(self.ranked[:n])
        ]


def test_sources_satisfy_the_protocol() -> None:
    assert isinstance(ListSource("a", []), CandidateSource)


@settings(max_examples=60, deadline=None)
@given(
    lists=st.lists(st.lists(st.integers(0, N_TRACKS - 1), max_size=40), min_size=1, max_size=3),
    seeds=st.lists(st.integers(0, N_TRACKS - 1), min_size=1, max_size=8),
    cap=st.one_of(st.none(), st.integers(1, 3)),
    n=st.integers(1, 30),
)
def test_seeds_never_returned_recordings_never_twice(lists, seeds, cap, n) -> None:  # type: ignore[no-untyped-def]
    tracks = track_table()
    service = ContinuationService(
        [ListSource(f"s{i}", ranked) for i, ranked in enumerate(lists)], tracks, artist_cap=cap
    )
    out = service.recommend(seeds, None, n)
    ids = [r.track_id for r in out]
    assert len(ids) <= n
    assert not set(ids) & set(seeds)
    recordings = [tracks.recording(t) for t in ids]
    assert len(recordings) == len(set(recordings))
    assert not set(recordings) & {tracks.recording(s) for s in seeds}
    if cap is not None:
        per_artist = pl.Series([tracks.artist(t) for t in ids], dtype=pl.Int64).value_counts()
        assert per_artist.height == 0 or per_artist["count"].max() <= cap
    assert all(r.reason for r in out)


def test_known_fusion_order_and_reasons() -> None:
    tracks = track_table()
    a = ListSource("a", [10, 20, 30], because=(0,))
    b = ListSource("b", [30, 20, 40])
    service = ContinuationService([a, b], tracks, rrf_k=1.0)
    out = service.recommend([0], None, 10)
    # RRF with k=1: 20 → 1/3+1/3, 30 → 1/4+1/2, 10 → 1/2, 40 → 1/4
    assert [r.track_id for r in out] == [30, 20, 10, 40]
    assert out[0].sources == ("a", "b")
    assert out[0].reason == "from a + from b; because of “Song 0” by Artist 0"
    assert out[3].reason == "from b"


def test_weights_move_the_ranking() -> None:
    fused = reciprocal_rank_fusion(
        {
            "a": [Candidate(1, 1, "a"), Candidate(2, 1, "a")],
            "b": [Candidate(2, 1, "b"), Candidate(1, 1, "b")],
        },
        weights={"a": 2.0, "b": 1.0},
    )
    assert [f.track_id for f in fused] == [1, 2]


def test_the_same_recording_is_returned_once() -> None:
    tracks = track_table()
    service = ContinuationService([ListSource("a", [12, 13, 14, 15, 3])], tracks)
    # 12/13 and 14/15 are pairs of releases; 3 is the other release of seed 2
    assert [r.track_id for r in service.recommend([2], None, 10)] == [12, 14]


def test_bad_requests_are_named_errors() -> None:
    service = ContinuationService([ListSource("a", [1])], track_table())
    with pytest.raises(InputError):
        service.recommend([], None, 10)
    with pytest.raises(InputError):
        service.recommend([1], None, 0)
    with pytest.raises(ValueError, match="unique"):
        ContinuationService([ListSource("a", []), ListSource("a", [])], track_table())


def test_title_source_serves_a_cold_start_from_similar_names() -> None:
    rows = []
    names = {1: "Rock Night", 2: "rock classics", 3: "Jazz evening", 4: "jazz"}
    for pid, tracks in {1: [10, 11, 12], 2: [10, 12, 13], 3: [20, 21], 4: [21, 22]}.items():
        rows += [(pid, pos, t) for pos, t in enumerate(tracks)]
    frame = pl.DataFrame(
        rows, schema={"playlist_id": pl.Int64, "position": pl.Int32, "track_id": pl.Int64}, orient="row"
    )
    matrix = from_frame(frame, row="playlist_id", item="track_id")
    playlists = pl.DataFrame({"playlist_id": list(names), "name_key": [title_key(n) for n in names.values()]})
    source = TitleSource(matrix, playlists)
    got = [c.track_id for c in source.candidates([], "ROCK!", 10)]
    assert set(got) == {10, 11, 12, 13}
    assert got[:2] == [10, 12]  # in both rock playlists
    assert next(c.track_id for c in source.candidates([], "Jazz", 10)) == 21
    assert source.candidates([], "polka", 10) == []
    assert source.candidates([10], None, 10) == []


@pytest.mark.parametrize(
    ("title", "key"),
    [
        ("The Best of Rock & Roll!!", "best of rock and roll"),
        ("  Chill\tVibes ", "chill vibes"),
        ("🔥🔥", ""),
    ],
)
def test_title_key_matches_the_catalog_rule(title: str, key: str) -> None:
    from recsys.catalog import keys

    assert title_key(title) == key
    assert title_key(title) == (keys.apply_one(keys.name_key, title) or "")
