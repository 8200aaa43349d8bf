"""The VectorStore contract, run against every backend (Qdrant Edge and qdrant-client local mode)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from recsys.errors import DimensionMismatchError, NotFoundError
from recsys.vectorstore import Filter, Match, MatchAny, Point, Range, VectorSpec, VectorStore
from recsys.vectorstore.ids import POINT_NAMESPACE, point_id
from tests.vectorstore.conftest import SPEC, planted_points

POINTS = planted_points()
BY_ID = {p.id: p for p in POINTS}


def ids(hits) -> list:
    return [h.id for h in hits]


def test_ensure_collection_is_idempotent_and_checks_sizes(store: VectorStore) -> None:
    assert not store.has_collection("items")
    store.ensure_collection(SPEC)
    store.ensure_collection(SPEC)
    assert store.collections() == ["items"]
    assert store.current_version("items") == 1
    assert store.spec("items").sizes == {"a": 8, "b": 4}
    resized = SPEC.with_vector("a", 9)
    with pytest.raises(DimensionMismatchError, match="'a'"):
        store.ensure_collection(resized)


def test_upsert_twice_changes_nothing(filled: VectorStore) -> None:
    before = filled.retrieve("items", [0, 1, 33], with_vectors=True)
    assert filled.count("items") == 60
    filled.upsert("items", planted_points())
    assert filled.count("items") == 60
    after = filled.retrieve("items", [0, 1, 33], with_vectors=True)
    assert [(r.id, r.payload) for r in after] == [(r.id, r.payload) for r in before]
    for old, new in zip(before, after, strict=True):
        assert old.vectors.keys() == new.vectors.keys()
        for name in old.vectors:
            np.testing.assert_allclose(old.vectors[name], new.vectors[name], rtol=1e-6)


def test_retrieve_keeps_order_skips_missing_and_normalises_cosine(filled: VectorStore) -> None:
    records = filled.retrieve("items", [33, 999, 2], with_vectors=["a"])
    assert [r.id for r in records] == [33, 2]
    assert records[0].payload["title"] == "song 33"
    assert set(records[0].vectors) == {"a"}
    assert np.linalg.norm(records[0].vectors["a"]) == pytest.approx(1.0, abs=1e-5)
    assert filled.retrieve("items", [5])[0].vectors == {}


def test_delete_removes(filled: VectorStore) -> None:
    filled.delete("items", [3, 4, 12345])
    assert filled.count("items") == 58
    assert filled.retrieve("items", [3, 4]) == []
    query = np.asarray(POINTS[3].vectors["a"])
    assert 3 not in ids(filled.search("items", query, using="a", limit=60))


def test_nearest_finds_the_planted_point_and_its_cluster(filled: VectorStore) -> None:
    hits = filled.search("items", POINTS[25].vectors["a"], using="a", limit=10)
    assert hits[0].id == 25 and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert all(20 <= h.id < 40 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_search_without_payloads_gives_the_same_hits(filled: VectorStore) -> None:
    flt = Filter.where(Match("genres", "jazz"), Range("year", gte=1975))
    query = POINTS[25].vectors["a"]
    full = filled.search("items", query, using="a", filter=flt, limit=10)
    bare = filled.search("items", query, using="a", filter=flt, limit=10, with_payload=False)
    assert len(full) == 10 and ids(bare) == ids(full)
    assert all("jazz" in h.payload["genres"] and h.payload["year"] >= 1975 for h in full)
    assert all(h.payload == {} for h in bare)
    assert [h.score for h in bare] == pytest.approx([h.score for h in full], abs=1e-5)


def test_search_only_sees_points_having_the_vector(filled: VectorStore) -> None:
    hits = filled.search("items", np.ones(4), using="b", limit=100)
    assert sorted(ids(hits)) == [i for i in range(60) if i % 5]
    assert filled.count("items", vector="b") == 48
    assert filled.count("items", vector="a") == 60


def test_limit_offset_and_score_threshold(filled: VectorStore) -> None:
    query = POINTS[45].vectors["a"]
    full = filled.search("items", query, using="a", limit=30)
    page = filled.search("items", query, using="a", limit=5, offset=10)
    assert ids(page) == ids(full)[10:15]
    cut = (full[19].score + full[20].score) / 2
    above = filled.search("items", query, using="a", limit=60, score_threshold=cut)
    assert ids(above) == ids(full)[:20]


FILTERS = [
    (Filter.where(Match("artist", "ben")), lambda p: p["artist"] == "ben"),
    (Filter.where(Match("genres", "jazz")), lambda p: "jazz" in p["genres"]),
    (Filter.where(MatchAny("artist", ("ana", "dee"))), lambda p: p["artist"] in {"ana", "dee"}),
    (Filter.where(Range("year", gte=1970, lt=1990)), lambda p: 1970 <= p["year"] < 1990),
    (
        Filter(must=(Range("year", gt=1965),), must_not=(Match("genres", "rock"),)),
        lambda p: p["year"] > 1965 and "rock" not in p["genres"],
    ),
    (
        Filter(should=(Match("artist", "cai"), Range("year", lte=1962))),
        lambda p: p["artist"] == "cai" or p["year"] <= 1962,
    ),
]


@pytest.mark.parametrize(
    ("flt", "expected"), FILTERS, ids=["keyword", "list", "any", "range", "not", "should"]
)
def test_filters_match_a_brute_force_scan(filled: VectorStore, flt: Filter, expected) -> None:
    want = {p.id for p in POINTS if expected(p.payload)}
    assert want and len(want) < 60
    hits = filled.search("items", POINTS[0].vectors["a"], using="a", filter=flt, limit=100)
    assert set(ids(hits)) == want
    assert filled.count("items", filter=flt) == len(want)


def test_recommend_excludes_its_examples(filled: VectorStore) -> None:
    hits = filled.recommend("items", using="a", positive=[41, 42], limit=10)
    assert len(hits) == 10
    assert not {41, 42} & set(ids(hits))
    assert all(40 <= h.id < 60 for h in hits)


def test_recommend_with_vectors_negatives_and_filter(filled: VectorStore) -> None:
    centre = np.zeros(8)
    centre[1] = 1.0
    hits = filled.recommend(
        "items",
        using="a",
        positive=[centre, 21],
        negative=[5],
        filter=Filter.where(Match("artist", "cai")),
        limit=5,
        strategy="sum_scores",
    )
    assert hits and 21 not in ids(hits) and 5 not in ids(hits)
    assert all(h.payload["artist"] == "cai" and 20 <= h.id < 40 for h in hits)


def test_recommend_missing_example_is_named(filled: VectorStore) -> None:
    with pytest.raises(NotFoundError, match="777"):
        filled.recommend("items", using="a", positive=[777])


def test_dimension_mismatch_raises_the_named_error(filled: VectorStore) -> None:
    with pytest.raises(DimensionMismatchError, match="expected 8 dimensions, got 7"):
        filled.upsert("items", [Point(1000, {"a": np.ones(7)})])
    with pytest.raises(DimensionMismatchError, match="expected 4 dimensions"):
        filled.search("items", np.ones(8), using="b")
    assert filled.count("items") == 60


def test_missing_collection_is_not_found(store: VectorStore) -> None:
    with pytest.raises(NotFoundError, match="nope"):
        store.search("nope", np.ones(8), using="a")
    with pytest.raises(NotFoundError, match="nope"):
        store.count("nope")


def test_string_ids_map_to_stable_uuids(store: VectorStore) -> None:
    store.ensure_collection(SPEC)
    store.upsert("items", [Point("spotify:track:abc", {"a": np.ones(8)}, {"k": 1})])
    [record] = store.retrieve("items", ["spotify:track:abc"])
    assert record.id == point_id("spotify:track:abc")
    assert record.id == str(uuid.uuid5(POINT_NAMESPACE, "spotify:track:abc"))
    assert record.payload == {"k": 1}


def test_mmr_diversifies_near_duplicates(store: VectorStore) -> None:
    store.ensure_collection(SPEC)
    rng = np.random.default_rng(1)
    base = np.zeros(8)
    base[0] = 1.0
    dupes = [Point(i, {"a": base + rng.normal(0, 0.01, 8)}) for i in range(10)]
    others = [Point(100 + i, {"a": base + np.eye(8)[1 + i % 7] * 0.8}) for i in range(7)]
    store.upsert("items", dupes + others)
    plain = store.search("items", base, using="a", limit=5)
    diverse = store.diverse("items", base, using="a", limit=5, candidates=17, diversity=0.7)
    assert all(h.id < 10 for h in plain)
    assert sum(h.id < 10 for h in diverse) == 1
    assert len({h.id for h in diverse}) == 5


def test_scroll_reads_every_point(filled: VectorStore) -> None:
    records = list(filled.scroll("items", batch_size=7))
    assert sorted(r.id for r in records) == list(range(60))
    assert all("a" in r.vectors for r in records)


def test_first_points_by_id_holding_a_vector(filled: VectorStore) -> None:
    # every fifth planted point (0, 5, 10, ...) lacks the ``b`` vector
    assert [r.id for r in filled.first("items", 4)] == [0, 1, 2, 3]
    got = filled.first("items", 4, vector="b")
    assert [r.id for r in got] == [1, 2, 3, 4]
    assert got[0].payload == planted_points()[1].payload and got[0].vectors == {}
    with pytest.raises(NotFoundError, match="no vector 'nope'"):
        filled.first("items", 4, vector="nope")


def test_describe_counts_per_vector(filled: VectorStore) -> None:
    info = filled.describe("items")
    # upserts write the live collection on a server, a new version of the embedded store
    assert (info.name, info.version, info.points) == ("items", filled.current_version("items"), 60)
    assert {v.name: (v.size, v.count) for v in info.vectors} == {"a": (8, 60), "b": (4, 48)}
    assert set(info.indexes) == {"artist", "genres", "year"}


def test_rebuild_switches_versions_and_keeps_two(filled: VectorStore) -> None:
    filled_at = filled.current_version("items") or 0
    fresh = [Point(i, {"a": np.ones(8) + i}, {"gen": 2}) for i in range(5)]
    assert filled.rebuild(SPEC, fresh) == filled_at + 1
    assert filled.count("items") == 5
    assert filled.retrieve("items", [0])[0].payload == {"gen": 2}
    assert filled.rebuild(SPEC, fresh) == filled_at + 2
    assert filled.current_version("items") == filled_at + 2
    assert filled.versions("items") == [filled_at + 1, filled_at + 2]


def test_failed_rebuild_leaves_the_old_version_serving(filled: VectorStore) -> None:
    def broken():
        yield from planted_points()[:30]
        raise RuntimeError("source died")

    filled_at = filled.current_version("items") or 0
    before = filled.versions("items")
    with pytest.raises(RuntimeError, match="source died"):
        filled.rebuild(SPEC, broken(), batch_size=8)
    assert filled.current_version("items") == filled_at
    assert filled.versions("items") == before
    assert filled.count("items") == 60
    assert filled.rebuild(SPEC, planted_points()[:10]) == filled_at + 1


def test_rebuild_rejects_a_wrong_dimension_and_keeps_serving(filled: VectorStore) -> None:
    filled_at = filled.current_version("items")
    bad = [*planted_points()[:3], Point(99, {"b": np.ones(5)})]
    with pytest.raises(DimensionMismatchError):
        filled.rebuild(SPEC, bad)
    assert filled.current_version("items") == filled_at and filled.count("items") == 60


def test_rebuild_with_a_new_vector_size(filled: VectorStore) -> None:
    spec = SPEC.with_vector("b", 6)
    filled.rebuild(spec, [Point(1, {"b": np.ones(6)})])
    assert filled.spec("items").vector("b") == VectorSpec("b", 6)
    assert filled.search("items", np.ones(6), using="b")[0].id == 1
