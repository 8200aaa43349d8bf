"""The embedded store's query path: filter translation, shipped search settings, the spec a
reader checks queries against."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys.errors import DimensionMismatchError
from recsys.vectorstore import CollectionSpec, FieldType, Filter, Match, MatchAny, Point, Range, VectorSpec
from recsys.vectorstore.edge import EdgeStore
from recsys.vectorstore.edge_convert import EdgeSearchSettings, edge_filter


def keys(conditions: list) -> list[str]:
    return [c.key for c in conditions]


def test_numeric_conditions_are_checked_before_keyword_ones() -> None:
    flt = Filter.where(
        Match("genres", "jazz"),
        Range("year", gte=1990, lt=2020),
        MatchAny("culture", ("greek", "turkish")),
        Match("explicit", False),
        MatchAny("decade", (1990, 2000)),
    )
    translated = edge_filter(flt)
    assert translated is not None
    # numbers first (in the order given), then strings (in the order given)
    assert keys(translated.must) == ["year", "explicit", "decade", "genres", "culture"]
    assert translated.must[0].range.gte == 1990 and translated.must[0].range.lt == 2020
    assert translated.must[3].match.value == "jazz"
    assert translated.should is None and translated.must_not is None


def test_has_vector_stays_last_and_should_keeps_its_order() -> None:
    flt = Filter(
        must=(Match("genres", "jazz"), Range("year", lt=2000)),
        should=(Match("artist", "ana"), Range("year", gte=1990)),
    )
    translated = edge_filter(flt, has_vector="a")
    assert translated is not None
    assert [getattr(c, "key", None) for c in translated.must] == ["year", "genres", None]
    assert keys(translated.should) == ["artist", "year"]


def test_a_filter_is_translated_once_and_reused() -> None:
    first = edge_filter(Filter.where(Match("genres", "folk"), Range("year", gte=1970)))
    again = edge_filter(Filter.where(Match("genres", "folk"), Range("year", gte=1970)))
    other = edge_filter(Filter.where(Match("genres", "rock"), Range("year", gte=1970)))
    assert again is first
    assert other is not first and other.must[1].match.value == "rock"
    assert edge_filter(None) is None


def test_a_bool_and_an_integer_match_are_cached_apart() -> None:
    # True == 1 and both hash alike: the cache keys on the values' types too, so a match
    # on True never reuses the translation made for 1 (what the binding then sends for
    # each is its own affair).
    as_int = edge_filter(Filter.where(Match("flag", 1)))
    as_bool = edge_filter(Filter.where(Match("flag", True)))
    assert as_int is not None and as_bool is not None
    assert as_int is not as_bool
    assert edge_filter(Filter.where(Match("flag", True))) is as_bool


def test_an_unhashable_condition_is_still_translated() -> None:
    flt = Filter.where(MatchAny("genres", ["jazz", "folk"]))  # type: ignore[arg-type]  # a list, not a tuple
    translated = edge_filter(flt)
    assert translated is not None and translated.must[0].match.value == ["jazz", "folk"]


def test_a_quantised_shard_scans_filters_of_up_to_36000_kb() -> None:
    spec = CollectionSpec("t", (VectorSpec("v", 768),), {"genre": FieldType.KEYWORD})
    assert EdgeSearchSettings().full_scan_kb == 36_000
    assert EdgeSearchSettings().shard_config(spec).hnsw_config.full_scan_threshold == 36_000
    assert EdgeSearchSettings(quantize=False).full_scan_kb == 10_000  # Qdrant's own for float32
    assert (
        EdgeSearchSettings(full_scan_threshold_kb=500).shard_config(spec).hnsw_config.full_scan_threshold
        == 500
    )


def test_a_reader_checks_queries_against_the_version_it_reads(fast_dir: Path) -> None:
    root = fast_dir / "vectors"
    writer, reader = EdgeStore(root), EdgeStore(root)
    spec = CollectionSpec("t", (VectorSpec("v", 4),), {"year": FieldType.INTEGER})
    try:
        writer.rebuild(
            spec, [Point(i, {"v": np.eye(4)[i % 4] + 0.01 * i}, {"year": 1990 + i}) for i in range(8)]
        )
        assert reader.search("t", np.eye(4)[1], using="v", limit=1)[0].id == 1
        wider = spec.with_vector("v", 6)
        writer.rebuild(wider, [Point(i, {"v": np.eye(6)[i % 6]}, {"year": 1990 + i}) for i in range(6)])
        # the reader's next query moves to the new version and checks against its spec
        with pytest.raises(DimensionMismatchError, match="expected 6"):
            reader.search("t", np.eye(4)[1], using="v", limit=1)
        hits = reader.search("t", np.eye(6)[5], using="v", limit=1, with_payload=False)
        assert hits[0].id == 5 and hits[0].payload == {}
        with pytest.raises(ValueError, match="NaN or infinity"):
            reader.search("t", [0.0, float("nan"), 0, 0, 0, 0], using="v")
        with pytest.raises(ValueError, match="NaN or infinity"):
            reader.search("t", [float("inf"), float("-inf"), 0, 0, 0, 0], using="v")
        reader.search("t", [1e308, 1e308, 0, 0, 0, 0], using="v", limit=1)  # huge but finite: accepted
    finally:
        reader.close()
        writer.close()
