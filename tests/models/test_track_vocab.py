from __future__ import annotations

import numpy as np
import pytest

from recsys.models.track_vocab import (
    BOS,
    EOS,
    PAD,
    UNK,
    BucketDataset,
    TrackVocab,
    collate,
    pool_windows,
    split_windows,
)


def test_min_count_and_unknown_rule() -> None:
    vocab = TrackVocab.build([[10, 11, 10], [10, 12, 11], [13]], min_count=2)
    assert sorted(vocab.track_ids.tolist()) == [10, 11]
    assert len(vocab) == 6  # four specials and two tracks
    assert vocab.track_ids[0] == 10  # most frequent first
    encoded = vocab.encode([10, 12, 11, 999])
    assert encoded[1] == UNK and encoded[3] == UNK  # rare and unseen keep their places
    assert [vocab.track_of(t) for t in encoded] == [10, None, 11, None]
    assert vocab.counts[UNK] == 2  # tracks 12 and 13
    assert vocab.coverage([[10, 12, 11, 999]]) == pytest.approx(0.5)


def test_max_size_keeps_the_most_frequent() -> None:
    vocab = TrackVocab.build([[1, 1, 1, 2, 2, 3]], min_count=1, max_size=2)
    assert vocab.track_ids.tolist() == [1, 2]


def test_windows_cover_every_track_and_pool_by_length() -> None:
    windows = split_windows([[4] * 5, [5] * 2, []], max_len=2)
    assert [len(s) for s in windows.sequences] == [2, 2, 1, 2, 0]
    assert windows.owner.tolist() == [0, 0, 0, 1, 2]
    assert windows.windowed_playlists == 1
    vectors = np.asarray([[1.0], [1.0], [4.0], [2.0], [7.0]], dtype=np.float32)
    pooled = pool_windows(vectors, windows, 3)
    assert pooled[:, 0].tolist() == pytest.approx([(2 + 2 + 4) / 5, 2.0, 7.0])


def test_collate_builds_teacher_forcing_pairs() -> None:
    batch = collate([[5, 6, 7], [8]])
    assert batch.tokens.tolist() == [[5, 6, 7], [8, PAD, PAD]]
    assert batch.lengths.tolist() == [3, 1]
    assert batch.decoder_in.tolist() == [[BOS, 5, 6, 7], [BOS, 8, PAD, PAD]]
    assert batch.target.tolist() == [[5, 6, 7, EOS], [8, EOS, PAD, PAD]]


def test_buckets_hold_similar_lengths_and_every_sequence() -> None:
    sequences = [[4] * n for n in range(1, 41)]
    data = BucketDataset(sequences, 8, seed=1)
    assert sorted(len(s) for b in data.batches for s in b) == list(range(1, 41))
    assert all(max(map(len, b)) - min(map(len, b)) <= 8 for b in data.batches)
