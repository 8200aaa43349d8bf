"""The title source's TF-IDF scores are those of the textbook formula, on planted names.

The reference below is the formula the source used before it took scikit-learn's
``TfidfVectorizer``: raw counts of the project's match tokens (words and the whole key),
smoothed idf ``ln((1 + n) / (1 + df)) + 1``, rows and query scaled to unit length,
tokens the names never use ignored.
"""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import polars as pl
import pytest

from recsys.collaborative.matrix import from_frame
from recsys.recommend.candidates import TitleSource, key_tokens, title_key

WORDS = ["rock", "jazz", "chill", "night", "road", "trip", "summer", "party", "sad", "gym", "best", "of"]


def reference_similarity(names: list[str], title: str) -> np.ndarray:
    docs = [key_tokens(name) for name in names]
    df = Counter(token for doc in docs for token in set(doc))
    vocab = {token: i for i, token in enumerate(sorted(df))}
    idf = {t: math.log((1 + len(docs)) / (1 + df[t])) + 1.0 for t in df}
    rows = np.zeros((len(docs), len(vocab)))
    for r, doc in enumerate(docs):
        for token, count in Counter(doc).items():
            rows[r, vocab[token]] = count * idf[token]
    rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    query = np.zeros(len(vocab))
    for token, count in Counter(t for t in key_tokens(title_key(title)) if t in vocab).items():
        query[vocab[token]] = count * idf[token]
    query /= max(float(np.linalg.norm(query)), 1e-12)
    return rows @ query


def planted(seed: int) -> tuple[TitleSource, list[str]]:
    rng = random.Random(seed)
    names = [" ".join(rng.choices(WORDS, k=rng.randint(1, 4))) for _ in range(60)]
    names[7] = ""  # a playlist without a usable name
    names[8] = names[9] = "rock night"  # repeated names and repeated words
    names[10] = "rock rock rock"
    rows = [(pid, pos, 1000 + rng.randrange(40)) for pid in range(len(names)) for pos in range(5)]
    frame = pl.DataFrame(
        rows, schema={"playlist_id": pl.Int64, "position": pl.Int32, "track_id": pl.Int64}, orient="row"
    )
    matrix = from_frame(frame, row="playlist_id", item="track_id")
    playlists = pl.DataFrame(
        {"playlist_id": list(range(len(names))), "name_key": [title_key(n) for n in names]}
    )
    ordered = [names[int(key)] for key in matrix.row_keys.tolist()]
    return TitleSource(matrix, playlists), ordered


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    "title", ["Rock Night", "rock rock", "JAZZ & chill!", "best of summer", "polka", "gym"]
)
def test_title_similarity_is_the_reference_tfidf(seed: int, title: str) -> None:
    source, names = planted(seed)
    got = source.playlist_similarity(title)
    want = reference_similarity(names, title)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    if title == "polka":
        assert not got.any()
    else:
        assert got.max() > 0.3  # the planted names share the title's words


def test_names_without_words_resemble_no_title() -> None:
    frame = pl.DataFrame(
        {"playlist_id": [1, 2], "position": [0, 0], "track_id": [10, 11]},
        schema={"playlist_id": pl.Int64, "position": pl.Int32, "track_id": pl.Int64},
    )
    matrix = from_frame(frame, row="playlist_id", item="track_id")
    source = TitleSource(matrix, pl.DataFrame({"playlist_id": [1, 2], "name_key": ["", title_key("🔥🔥")]}))
    assert source.playlist_similarity("rock").tolist() == [0.0, 0.0]
    assert len(source.candidates([], "rock", 10)) == 0
