"""A load's memory of the rows it met: the latest of each, at most ``limit`` of them."""

from __future__ import annotations

import polars as pl
import pytest

from recsys.catalog import frames, load_memory


def test_known_rows_replace_what_is_met_again_and_keep_the_latest() -> None:
    memory = load_memory.KnownRows(frames.KNOWN_ALBUMS, limit=4)
    for batch in (
        {"source_key": ["a", "b"], "id": [1, 2]},
        {"source_key": ["c", "a"], "id": [3, 10]},  # a met again: its row is replaced, not repeated
        {"source_key": ["d"], "id": [4]},
    ):
        memory.add(pl.DataFrame(batch, schema=frames.KNOWN_ALBUMS))
    assert memory.frame.rows() == [("b", 2), ("c", 3), ("a", 10), ("d", 4)] and not memory.evicted
    memory.add(pl.DataFrame({"source_key": ["e", "e"], "id": [5, 6]}, schema=frames.KNOWN_ALBUMS))
    assert memory.frame.rows() == [("c", 3), ("a", 10), ("d", 4), ("e", 6)] and memory.evicted
    assert memory.find(pl.Series(["a", "x", "a"])).rows() == [("a", 10)]


class Colliding(load_memory.KnownTracks):
    """Every key shares one hash: each match must be confirmed on the key itself."""

    @staticmethod
    def key_hash(keys: pl.Expr) -> pl.Expr:
        return keys.hash(seed=0) * 0


@pytest.mark.parametrize("memory_type", [load_memory.KnownTracks, Colliding], ids=["hashed", "colliding"])
def test_keys_sharing_a_hash_are_never_taken_for_one_another(
    memory_type: type[load_memory.KnownTracks],
) -> None:
    memory = memory_type(limit=10)
    held = {name: [True, False, True] for name in frames.HELD}
    memory.add(
        pl.DataFrame({"source_key": ["a", "b", "c"], "id": [1, 2, 3], **held}, schema=frames.KNOWN_TRACKS)
    )
    memory.add(
        pl.DataFrame(
            {"source_key": ["b"], "id": [20], **{n: [True] for n in frames.HELD}}, schema=frames.KNOWN_TRACKS
        )
    )
    assert memory.frame.select("source_key", "id").rows() == [("a", 1), ("c", 3), ("b", 20)]
    assert sorted(memory.find(pl.Series(["c", "x", "b"])).select("source_key", "id").rows()) == [
        ("b", 20),
        ("c", 3),
    ]
    wanted = load_memory.brought(
        pl.DataFrame(
            {"source_key": ["a", "b", "x"], "album_title": ["T", None, "T"], "duration_ms": [1, 1, 1]},
            schema={"source_key": pl.String, "album_title": pl.String, "duration_ms": pl.Int64},
        )
        .with_columns(pl.lit(None, pl.String).alias(c) for c in ("album_uri", "isrc", "artist_uri"))
        .with_columns(pl.lit(None, pl.Int32).alias("release_year"))
    )
    assert sorted(memory.survey(wanted).settled.rows()) == [("a", 1), ("b", 20)]
    cached, lacking, unknown = memory.classify(memory.survey(wanted))
    assert sorted(cached.rows()) == [("a", 1), ("b", 20)]
    assert lacking.to_list() == [] and unknown.to_list() == ["x"]


def _tracks(keys: list[str], ids: list[int], holds: list[bool]) -> pl.DataFrame:
    return pl.DataFrame(
        {"source_key": keys, "id": ids, **{name: holds for name in frames.HELD}}, schema=frames.KNOWN_TRACKS
    )


def _wanted(keys: list[str]) -> pl.DataFrame:
    """Each key brings every value."""
    return pl.DataFrame({"source_key": keys, **{name: [True] * len(keys) for name in frames.HELD}})


def _classified(result: tuple[pl.DataFrame, pl.Series, pl.Series]) -> tuple[list, list, list]:
    cached, lacking, unknown = result
    return sorted(cached.rows()), sorted(lacking.to_list()), sorted(unknown.to_list())


@pytest.mark.parametrize("memory_type", [load_memory.KnownTracks, Colliding], ids=["hashed", "colliding"])
def test_a_survey_brought_up_to_date_classifies_as_a_fresh_look(
    memory_type: type[load_memory.KnownTracks],
) -> None:
    memory = memory_type(limit=100)
    memory.add(_tracks(["a", "b", "c"], [1, 2, 3], [True, False, False]))
    wanted = _wanted(["a", "b", "c", "d", "e"])
    survey = memory.survey(wanted)
    assert sorted(survey.settled.rows()) == [("a", 1)]
    assert sorted(survey.rest["source_key"].to_list()) == ["b", "c", "d", "e"]
    # Since the survey: b gains its values, d is written, an unrelated track comes, c stays lacking.
    memory.add(_tracks(["b"], [2], [True]), among=pl.Series(["b"]))
    memory.add(_tracks(["d", "z"], [4, 26], [True, True]), among=pl.Series([], dtype=pl.String))
    expected = ([("a", 1), ("b", 2), ("d", 4)], ["c"], ["e"])
    assert _classified(memory.classify(memory.survey(wanted))) == expected  # a fresh look
    assert _classified(memory.classify(survey)) == expected
    assert memory.frame.select("source_key", "id").rows() == [
        ("a", 1),
        ("c", 3),
        ("b", 2),
        ("d", 4),
        ("z", 26),
    ]


def test_a_survey_outlives_eviction() -> None:
    memory = load_memory.KnownTracks(limit=3)
    memory.add(_tracks(["a", "b", "c"], [1, 2, 3], [True, False, True]))
    wanted = _wanted(["a", "b", "c", "d"])
    survey = memory.survey(wanted)
    memory.add(_tracks(["d", "e", "f"], [4, 5, 6], [True, True, True]))  # a, b and c are let go
    assert memory.evicted and memory.frame["source_key"].to_list() == ["d", "e", "f"]
    # What was settled stays settled; b, lacking when surveyed, is still to be looked up; d was added since.
    assert _classified(memory.classify(survey)) == ([("a", 1), ("c", 3), ("d", 4)], ["b"], [])


def test_rows_are_replaced_only_among_the_keys_named() -> None:
    memory = load_memory.KnownRows(frames.KNOWN_ALBUMS, limit=10)
    memory.add(pl.DataFrame({"source_key": ["a", "b"], "id": [1, 2]}, schema=frames.KNOWN_ALBUMS))
    memory.add(
        pl.DataFrame({"source_key": ["b", "c"], "id": [20, 3]}, schema=frames.KNOWN_ALBUMS),
        among=pl.Series(["b"]),
    )
    assert memory.frame.rows() == [("a", 1), ("b", 20), ("c", 3)]
