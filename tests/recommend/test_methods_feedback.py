"""Continuation on a planted catalog: one method at a time, and a listener's likes and dislikes.

The catalog is the planted block structure of ``tests/collaborative/planted.py`` (four
blocks of 30 tracks, 60 playlists each, named after the block) written to a real
database, plus a twin of one track: a track listed in exactly the playlists that list
track ``DISLIKED``, so the two always co-occur (item-kNN cosine 1).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa

from recsys.catalog.schema import ModelVersion, Playlist, PlaylistTrack, Track
from recsys.collaborative.factorization import MatrixFactorization, MFConfig
from recsys.collaborative.matrix import playlist_matrix
from recsys.collaborative.store import save_model
from recsys.errors import InputError
from recsys.recommend.continuation import ContinuationService, methods_available
from recsys.recommend.service import continuation_service, continuation_versions
from tests.collaborative.planted import block_of, planted_frame
from tests.recommend.test_continuation import ListSource, track_table

GENRES = ("rock", "jazz", "folk", "soul")
DISLIKED = 1005  # block 0
TWIN = 1999  # listed wherever DISLIKED is
SEEDS = [1000, 1001, 1002, 1003, 1030, 1031]  # four of block 0, two of block 1


def block(track_id: int) -> int:
    return 0 if track_id == TWIN else block_of(track_id)


def planted_entries() -> pl.DataFrame:
    frame = planted_frame()
    holders = frame.filter(pl.col("track_id") == DISLIKED)["playlist_id"]
    twins = (
        frame.filter(pl.col("playlist_id").is_in(holders.implode()))
        .group_by("playlist_id")
        .agg((pl.col("position").max() + 1).cast(pl.Int32).alias("position"))
        .with_columns(pl.lit(TWIN, dtype=pl.Int64).alias("track_id"))
        .select(frame.columns)
    )
    return pl.concat([frame, twins]).sort("playlist_id", "position")


def write_catalog(engine: sa.Engine) -> pl.DataFrame:
    entries = planted_entries()
    track_ids = sorted(set(entries["track_id"].to_list()))
    playlist_ids = sorted(set(entries["playlist_id"].to_list()))
    with engine.begin() as conn:
        conn.execute(
            sa.insert(Track),
            [
                {
                    "id": t,
                    "source_key": f"t:{t}",
                    "title": f"Song {t}",
                    "title_key": f"song {t}",
                    "artist_name": f"Artist {t}",
                    "recording_key": f"artist {t}|song {t}",
                }
                for t in track_ids
            ],
        )
        first_track = entries.group_by("playlist_id").agg(pl.col("track_id").first())
        genre_of = {p: GENRES[block_of(t)] for p, t in first_track.iter_rows()}
        conn.execute(
            sa.insert(Playlist),
            [
                {
                    "id": p + 1,
                    "namespace": "catalog",
                    "source_key": f"planted:{p}",
                    "name": f"{genre_of[p]} mix {p}",
                    "name_key": f"{genre_of[p]} mix {p}",
                    "num_tracks": 0,
                }
                for p in playlist_ids
            ],
        )
        conn.execute(
            sa.insert(PlaylistTrack),
            [{"playlist_id": p + 1, "position": pos, "track_id": t} for p, pos, t in entries.iter_rows()],
        )
    return entries


@pytest.fixture
def service(catalog_engine: sa.Engine, tmp_path: Path) -> ContinuationService:
    write_catalog(catalog_engine)
    from recsys.catalog.queries import playlist_entries

    matrix = playlist_matrix(playlist_entries(catalog_engine))
    model = MatrixFactorization(MFConfig(factors=8, iterations=6, alpha=10.0, device="cpu"))
    model.fit(matrix)
    saved = save_model(catalog_engine, tmp_path / "models", model, matrix)
    return continuation_service(catalog_engine, saved)


def ids(recs: list) -> list[int]:  # type: ignore[type-arg]
    return [r.track_id for r in recs]


# --------------------------------------------------------------------------- methods


def test_each_method_uses_its_source_alone(service: ContinuationService) -> None:
    assert service.methods == [
        "hybrid",
        "als",
        "knn",
        "playlist_knn",
        "title",
        "popularity",
        "artist_knn",
        "seed_artists",
    ]
    assert methods_available(service) == service.methods
    title = "rock"
    # every track here has an artist of its own: the artist sources have nothing to say (see test_artist_ranker)
    assert service.recommend(SEEDS, title, 20, method="seed_artists") == []
    for method in service.methods[1:6]:
        recs = service.recommend(SEEDS, title, 20, method=method)
        assert len(recs) == 20, method
        assert all(r.sources == (method,) for r in recs), method
        assert all(r.reason for r in recs)
        # the source's own ranking, the seeds left out
        source = next(s for s in service.sources if s.name == method)
        own = [t for t in source.candidates(SEEDS, title, 100).track_ids.tolist() if t not in SEEDS]
        assert ids(recs) == own[:20], method
    hybrid = service.recommend(SEEDS, title, 20, method="hybrid")
    assert ids(hybrid) == ids(service.recommend(SEEDS, title, 20))
    assert len({s for r in hybrid for s in r.sources}) >= 3
    assert any(len(r.sources) > 1 for r in hybrid)


def test_methods_answer_differently_where_their_sources_do(service: ContinuationService) -> None:
    # popularity ignores the seeds, the title source ignores everything but the title
    popular = ids(service.recommend(SEEDS, None, 10, method="popularity"))
    jazz = ids(service.recommend(SEEDS, "jazz", 10, method="title"))
    assert {block(t) for t in jazz} == {1}
    assert popular != ids(service.recommend(SEEDS, None, 10, method="knn"))
    assert service.recommend(SEEDS, None, 10, method="title") == []  # no title, nothing to say


@pytest.mark.parametrize("method", ["svd", "seq2seq", "", "hybrid+"])
def test_an_unknown_method_names_the_available_ones(service: ContinuationService, method: str) -> None:
    with pytest.raises(
        InputError,
        match="use one of hybrid, als, knn, playlist_knn, title, popularity, artist_knn, seed_artists",
    ):
        service.recommend(SEEDS, None, 5, method=method)


def test_a_factorisation_method_needs_no_other_source(catalog_engine: sa.Engine) -> None:
    write_catalog(catalog_engine)
    without_model = continuation_service(catalog_engine, None)
    assert without_model.methods == [
        "hybrid",
        "knn",
        "playlist_knn",
        "title",
        "popularity",
        "artist_knn",
        "seed_artists",
    ]
    with pytest.raises(InputError, match=r"'als' is not available .*recsys train als"):
        without_model.recommend(SEEDS, None, 5, method="als")
    assert all(r.sources == ("knn",) for r in without_model.recommend(SEEDS, None, 5, method="knn"))


# --------------------------------------------------------------------------- dislikes


def test_a_disliked_result_never_comes_back(service: ContinuationService) -> None:
    first = ids(service.recommend(SEEDS, "rock", 10))
    gone = first[0]
    again = ids(service.recommend(SEEDS, "rock", 10, feedback={gone: -1}))
    assert gone not in again and len(again) == 10
    for method in service.methods:
        assert gone not in ids(service.recommend(SEEDS, "rock", 60, method=method, feedback={gone: -1}))


def test_another_release_of_a_disliked_recording_is_left_out_too() -> None:
    tracks = track_table()  # 12 and 13 are two releases of one recording
    service = ContinuationService([ListSource("a", [12, 13, 14, 16, 18])], tracks)
    assert ids(service.recommend([0], None, 10)) == [12, 14, 16, 18]
    assert ids(service.recommend([0], None, 10, feedback={12: -1})) == [14, 16, 18]
    assert ids(service.recommend([0], None, 10, feedback={13: -1})) == [14, 16, 18]


def test_the_twin_of_a_disliked_track_drops_and_unrelated_tracks_keep_their_order(
    service: ContinuationService,
) -> None:
    n = 50
    before = ids(service.recommend(SEEDS, None, n))
    after_recs = service.recommend(SEEDS, None, n, feedback={DISLIKED: -1})
    after = ids(after_recs)
    assert DISLIKED in before and TWIN in before and DISLIKED not in after
    # the twin: among the first of its block before, behind at least 10 more tracks after
    above_before = before.index(TWIN) - (before.index(DISLIKED) < before.index(TWIN))
    above_after = after.index(TWIN) if TWIN in after else n
    assert above_after >= above_before + 10, (above_before, above_after)
    twin = next((r for r in after_recs if r.track_id == TWIN), None)
    if twin is not None:
        assert twin.reason.endswith("; ranked lower: close to “Song 1005” by Artist 1005, which you disliked")
        assert twin.penalty is not None and twin.penalty.similarity == pytest.approx(1.0)
    # the tracks of the other seeded block, never listed with the disliked one, keep their
    # order (and move up); blocks 2 and 3 come only from the tails of the sources' lists,
    # which a request with feedback reads one track deeper
    unrelated_before = [t for t in before if block(t) == 1]
    unrelated_after = [t for t in after if block(t) == 1]
    assert len(unrelated_before) >= 10
    assert unrelated_after[: len(unrelated_before)] == unrelated_before
    assert sum(map(unrelated_before.__contains__, before[:25])) < sum(
        map(unrelated_after.__contains__, after[:25])
    )
    assert all(r.penalty is None for r in after_recs if block(r.track_id) != 0)


def test_without_a_similarity_dislikes_are_only_left_out() -> None:
    service = ContinuationService([ListSource("a", [10, 20, 30, 40])], track_table())
    assert ids(service.recommend([0], None, 10, feedback={20: -1})) == [10, 30, 40]


# --------------------------------------------------------------------------- likes


def test_a_liked_track_close_to_the_seeds_joins_them(service: ContinuationService) -> None:
    seeds = [1000, 1001, 1002]
    far = 1070  # block 2: never listed with the seeds
    plain = service.recommend(seeds, None, 20, method="knn")
    liked = plain[0].track_id  # block 0, not a seed
    assert block(liked) == 0
    recs = service.recommend(seeds, None, 20, method="knn", feedback={liked: 1, far: 1})
    assert liked not in ids(recs)  # a seed now
    assert ids(recs) != ids(plain)[1:]  # and it steers
    assert {block(t) for t in ids(recs)} == {0}  # the far like did not pull its block in
    assert any(liked in r.because for r in recs)
    assert any(f"“Song {liked}” by Artist {liked} (you liked it)" in r.reason for r in recs)
    # the same opinions on a playlist of block 2: the other like joins, the first stays out
    other = service.recommend([1060, 1061, 1062], None, 20, method="knn", feedback={liked: 1, far: 1})
    assert far not in ids(other) and {block(t) for t in ids(other)} == {2}
    assert any(far in r.because for r in other) and not any(liked in r.because for r in other)


def test_bad_feedback_is_an_input_error(service: ContinuationService) -> None:
    with pytest.raises(InputError, match="feedback on track 1010: rating must be 1 or -1"):
        service.recommend(SEEDS, None, 5, feedback={1010: 0})


# --------------------------------------------------------------------------- seq2seq


def _random_encoder(tracks: list[int], seed: int):  # type: ignore[no-untyped-def]
    import torch

    from recsys.models.playlist_seq2seq import PlaylistSeq2Seq, Seq2SeqConfig, Seq2SeqEncoder
    from recsys.models.track_vocab import TrackVocab

    torch.manual_seed(seed)
    config = Seq2SeqConfig(embed_dim=8, hidden=8, min_count=1, sampled_negatives=0)
    vocab = TrackVocab.build([tracks], min_count=1)
    return Seq2SeqEncoder(config, vocab, PlaylistSeq2Seq(config, len(vocab)), device="cpu")


def _store_vectors(data_dir: Path, encoder, entries: pl.DataFrame) -> None:  # type: ignore[no-untyped-def]
    grouped = entries.group_by("playlist_id", maintain_order=True).agg("track_id")
    vectors = encoder.embed(grouped["track_id"].to_list())
    path = data_dir / "embeddings" / f"playlists_{encoder.name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(
        {"playlist_id": (grouped["playlist_id"] + 1).to_numpy(), "vector": vectors},
        schema={"playlist_id": pl.Int64, "vector": pl.Array(pl.Float32, vectors.shape[1])},
    ).write_parquet(path)


def test_seq2seq_is_a_method_where_an_encoder_and_its_vectors_exist(
    catalog_engine: sa.Engine, tmp_path: Path
) -> None:
    entries = write_catalog(catalog_engine)
    data_dir = tmp_path / "data"
    assert "seq2seq" not in continuation_service(catalog_engine, None, data_dir=data_dir).methods
    encoder = _random_encoder(sorted(set(entries["track_id"].to_list())), seed=1)
    path = data_dir / "models" / "encoder.pt"
    from recsys.models.playlist_seq2seq_store import save_encoder  # deferred: torch

    save_encoder(encoder, path)
    with catalog_engine.begin() as conn:
        conn.execute(
            sa.insert(ModelVersion).values(
                kind="seq2seq", version="v1", path=str(path), params={"label": encoder.name}
            )
        )
    service = continuation_service(catalog_engine, None, data_dir=data_dir)
    assert "seq2seq" not in service.methods and "no playlist vectors" in service.unavailable["seq2seq"]

    _store_vectors(data_dir, encoder, entries)
    service = continuation_service(catalog_engine, None, data_dir=data_dir)
    assert service.methods == [
        "hybrid",
        "knn",
        "playlist_knn",
        "title",
        "popularity",
        "artist_knn",
        "seed_artists",
        "seq2seq",
    ]
    assert service.versions == {"seq2seq": "v1"}
    assert continuation_versions(catalog_engine) == {
        "als": None,
        "seq2seq": "v1",
        "ranker": None,
        "catalog": None,
    }
    recs = service.recommend(SEEDS, None, 10, method="seq2seq")
    assert len(recs) == 10 and all(r.sources == ("seq2seq",) for r in recs)
    assert not set(ids(recs)) & set(SEEDS)
    # not fused into the hybrid by default
    assert all("seq2seq" not in r.sources for r in service.recommend(SEEDS, None, 50))

    # vectors another encoder wrote are not used
    _store_vectors(data_dir, _random_encoder(sorted(set(entries["track_id"].to_list())), seed=2), entries)
    stale = continuation_service(catalog_engine, None, data_dir=data_dir)
    assert "seq2seq" not in stale.methods
    assert "written by another encoder" in stale.unavailable["seq2seq"]
    with pytest.raises(InputError, match=r"'seq2seq' is not available .*another encoder"):
        stale.recommend(SEEDS, None, 5, method="seq2seq")


def test_the_twin_is_listed_exactly_where_the_disliked_track_is() -> None:
    entries = planted_entries()
    holders = set(entries.filter(pl.col("track_id") == DISLIKED)["playlist_id"].to_list())
    assert len(holders) > 10
    assert set(entries.filter(pl.col("track_id") == TWIN)["playlist_id"].to_list()) == holders


class FixedCloseness:
    """A similarity that gives each track a set closeness to the disliked track 99."""

    def __init__(self, closeness: dict[int, float]) -> None:
        self.closeness = closeness

    def closest(self, targets, others):  # type: ignore[no-untyped-def]
        import numpy as np

        best = np.array([self.closeness.get(int(t), 0.0) for t in targets])
        return best, np.where(best > 0, 99, -1)


@pytest.mark.parametrize(
    ("closeness", "order", "noted"),
    [
        ({1: 0.5, 2: 0.5}, [1, 2, 3, 4], set()),  # a neighbourhood lowered alike keeps its order: no note
        ({2: 0.9}, [1, 3, 2, 4], {2}),  # 2 falls behind 3
        ({1: 0.06}, [1, 2, 3, 4], set()),  # too slight to move anything
        ({1: 1.0, 2: 1.0, 3: 1.0}, [1, 2, 4, 3], {3}),  # all halved: only 3 falls, behind 4
    ],
)
def test_the_reason_notes_a_penalty_only_where_it_moved_the_track(
    closeness: dict[int, float], order: list[int], noted: set[int]
) -> None:
    import numpy as np

    from recsys.recommend.feedback import FeedbackPolicy, penalised

    ids_, scores, notes = penalised(
        np.array([99, 1, 2, 3, 4]),
        np.array([5.0, 4.0, 3.0, 1.9, 1.2]),
        frozenset({99}),
        FixedCloseness(closeness),  # type: ignore[arg-type]
        FeedbackPolicy(),
    )
    assert [t for t in ids_.tolist() if t != 99] == order
    assert set(notes) == noted and all(notes[t].disliked == 99 for t in noted)
    assert list(scores) == sorted(scores, reverse=True)


def test_item_knn_proposes_only_tracks_listed_with_a_seed(service: ContinuationService) -> None:
    # block 0's tracks are only ever listed with block 0's: a seed there has 30 neighbours at most
    recs = service.recommend([1000], None, 100, method="knn")
    assert 0 < len(recs) <= 30 and {block(r.track_id) for r in recs} == {0}
    assert all(r.because == (1000,) for r in recs)
    # the hybrid fills the rest from the other sources, never from kNN's zero scores
    hybrid = service.recommend([1000], None, 100)
    assert len(hybrid) == 100
    assert all("knn" not in r.sources for r in hybrid if block(r.track_id) != 0)
