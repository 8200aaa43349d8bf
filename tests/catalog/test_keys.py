"""Normalisation and match keys: known answers and properties (hypothesis)."""

from __future__ import annotations

import unicodedata

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.ingest.normalize import RAW_TRACK, build_chunk
from recsys.catalog import keys as k

text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=0, max_size=40
)


def one(fn, *values):  # type: ignore[no-untyped-def]
    return k.apply_one(fn, *values)


@pytest.mark.parametrize(
    ("raw", "clean", "key"),
    [
        ("  The   Beatles ", "The Beatles", "beatles"),
        ("Beyonce\u0301", "Beyoncé", "beyoncé"),  # NFC: one code point for é
        ("Şivan Perwer", "Şivan Perwer", "şivan perwer"),  # accents carry meaning: kept
        ("ＡＢＣ", "ＡＢＣ", "abc"),  # NFKC only in the key
        ("Rock & Roll", "Rock & Roll", "rock and roll"),
        ("AC/DC", "AC/DC", "ac dc"),
        ("Guns N' Roses", "Guns N' Roses", "guns n roses"),
        ("line\tbreak\nhere", "line break here", "line break here"),
        ("Namorar pra Quê?\u200b", "Namorar pra Quê?", "namorar pra quê"),  # zero-width space (real MPD)
        ("Chay Ghar -\xad Access", "Chay Ghar - Access", "chay ghar access"),  # soft hyphen (real MPD)
        ("می\u200cخواهم", "می\u200cخواهم", "میخواهم"),  # the non-joiner spells Persian: kept for display
        ("\u200f", None, ""),
        ("", None, ""),
    ],
)
def test_clean_text_and_name_key(raw: str, clean: str | None, key: str) -> None:
    assert one(k.clean_text, raw) == clean
    assert one(k.name_key, raw) == key


@pytest.mark.parametrize(
    ("credit", "title", "primary", "featured"),
    [
        ("A feat. B & C", "Song", "A", ["B", "C"]),
        ("A ft. B", "Song (feat. D)", "A", ["B", "D"]),
        ("A", "Song [ft. X, Y]", "A", ["X", "Y"]),
        ("A featuring B", "Song feat. C", "A", ["B", "C"]),
        ("Jay-Z", "Song (with Kanye West)", "Jay-Z", ["Kanye West"]),
        ("A (feat. B)", "T", "A", ["B"]),
        ("Simon & Garfunkel", "Mrs. Robinson", "Simon & Garfunkel", []),
        # "with" in an artist credit is part of a band's name (all from the real MPD sample).
        ("Off With Their Heads", "Song", "Off With Their Heads", []),
        ("Sublime With Rome", "Song", "Sublime With Rome", []),
        ("Dance With the Dead", "Song", "Dance With the Dead", []),
    ],
)
def test_primary_and_featured_artists(credit: str, title: str, primary: str, featured: list[str]) -> None:
    assert one(k.primary_artist, credit) == primary
    assert list(one(k.featured_artists, credit, title)) == featured


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (("The Beatles", "Hey Jude - Remastered 2015"), ("Beatles", "Hey Jude"), True),
        (("Toto", "Africa (Radio Edit)"), ("TOTO", "Africa"), True),
        (("A feat. B", "Song"), ("A", "Song (feat. B)"), True),
        (("A", "Song [Single Version]"), ("A", "Song - 2011 Remaster"), True),
        (("A", "Song (Deluxe)"), ("A", "song"), True),
        (("A", "Song - Live"), ("A", "Song"), False),  # a live recording is another recording
        (("A", "Song (Remix)"), ("A", "Song"), False),
        (("A", "Song"), ("B", "Song"), False),
    ],
)
def test_recording_key(a: tuple[str, str], b: tuple[str, str], same: bool) -> None:
    assert (one(k.recording_key, *a) == one(k.recording_key, *b)) is same


@settings(max_examples=200, deadline=None)
@given(value=text)
def test_clean_text_properties(value: str) -> None:
    out = one(k.clean_text, value)
    if out is None:
        assert value.strip() == "" or all(not c.isprintable() or c.isspace() for c in value)
        return
    assert unicodedata.is_normalized("NFC", out)
    assert out == out.strip() and "  " not in out
    assert not any(unicodedata.category(c) == "Cc" for c in out)
    assert one(k.clean_text, out) == out  # idempotent


@settings(max_examples=200, deadline=None)
@given(value=text)
def test_name_key_ignores_what_cleaning_changes(value: str) -> None:
    key = one(k.name_key, value)
    assert key == key.strip() and "  " not in key and key == key.lower()
    assert one(k.name_key, one(k.clean_text, value) or "") == key


def raw_tracks(rows: list[tuple[str, str]]) -> pl.DataFrame:
    """Raw track rows (artist credit, title) in the loader's raw schema, the other columns null."""
    return pl.DataFrame(
        {
            "source_key": [f"t{i}" for i in range(len(rows))],
            "artist_credit": [a for a, _ in rows],
            "title": [t for _, t in rows],
        }
    ).select(
        [
            pl.col(c).cast(d) if c in ("source_key", "artist_credit", "title") else pl.lit(None, d).alias(c)
            for c, d in RAW_TRACK.items()
        ]
    )


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(text, text), min_size=1, max_size=30))
def test_normalised_tracks_use_the_keys_recording_key(rows: list[tuple[str, str]]) -> None:
    """build_chunk computes the recording key from parts it already has: it must equal keys.recording_key."""
    raw = raw_tracks(rows)
    tracks = build_chunk(raw).tracks
    cleaned = raw.select(
        k.clean_text(pl.col("artist_credit")).fill_null("").alias("a"),
        k.clean_text(pl.col("title")).fill_null("").alias("t"),
    )
    expected = cleaned.select(k.recording_key(pl.col("a"), pl.col("t")))
    assert tracks["recording_key"].to_list() == expected.to_series().to_list()


# Printable ASCII, and names built from the pieces the rules look for.
printable = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
pieces = st.lists(
    st.sampled_from(
        [
            *(
                "The",
                "the",
                "THE",
                "&",
                " & ",
                "feat.",
                "ft.",
                "(with",
                "(feat. B)",
                ")",
                "  ",
                "AC/DC",
                "N'",
            ),
            *("_", "-", "Remastered 2011", "- Radio Edit", "x", "[Live]", "1999", "Beyonce", "~", "\\", '"'),
        ]
    ),
    max_size=8,
).map(" ".join)
names = printable | pieces
# Longer than a match key may be (MAX_KEY_BYTES): cut alike.
long_names = names | st.just("Long " * 300)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(long_names, min_size=1, max_size=30))
def test_ascii_forms_give_what_the_general_ones_give(values: list[str]) -> None:
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    assert frame.select(pl.col("v").str.contains(k.PRINTABLE_ASCII).all()).item()
    for fn in (k.clean_text, k.name_key):
        general = frame.select(fn(pl.col("v"))).to_series().to_list()
        assert frame.select(fn(pl.col("v"), ascii=True)).to_series().to_list() == general


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(names | text, names | text), min_size=1, max_size=30))
def test_normalised_tracks_of_ascii_and_other_names_take_the_general_keys(
    rows: list[tuple[str, str]],
) -> None:
    """build_chunk normalises printable ASCII names apart: every key is still the general one."""
    raw = raw_tracks(rows)
    tracks = build_chunk(raw).tracks
    title = k.clean_text(pl.col("title")).fill_null("")
    expected = raw.select(
        pl.col("source_key"),
        title.alias("title"),
        k.name_key(title).alias("title_key"),
        ("name:" + k.name_key(k.primary_artist(k.clean_text(pl.col("artist_credit"))))).alias("artist_key"),
        k.recording_key(k.clean_text(pl.col("artist_credit")).fill_null(""), title).alias("recording_key"),
    )
    assert tracks.select(expected.columns).sort("source_key").equals(expected.sort("source_key"))
