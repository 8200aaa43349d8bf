"""Playlists as sentences: the track vocabulary, the long-playlist rule and padded batches.

Tokens 0–3 are reserved: ``PAD`` (padding, ignored everywhere), ``BOS`` and ``EOS``
(start and end of a playlist for the decoder) and ``UNK``.

Out-of-vocabulary rule: a track seen fewer than ``min_count`` times in the training
playlists (or never seen) is read as ``UNK``. It keeps its position, so the length and
the order of the playlist survive; the encoder sees "some rare track here". A playlist
made only of unknown tracks still gets a vector (the vector of its length and shape).

Long-playlist rule (``windows``): a playlist longer than ``max_len`` is cut into
contiguous, non-overlapping windows of at most ``max_len`` tracks. Training uses every
window as its own sequence; the playlist's vector is the length-weighted mean of its
windows' vectors. Nothing is dropped, and :func:`split_windows` counts the playlists
that were windowed so a job can report it. The Million Playlist Dataset caps playlists
at 250 tracks, so with the default ``max_len`` of 250 no MPD playlist is windowed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")


@dataclass(frozen=True)
class TrackVocab:
    """Catalog track ids ↔ token ids, with the training frequency of every token."""

    track_ids: np.ndarray  # (V - 4,) int64: token 4 + i is track_ids[i]
    counts: np.ndarray  # (V,) int64: training occurrences per token (specials: 0, UNK: the rare ones)

    @classmethod
    def build(
        cls, playlists: Iterable[Sequence[int]], *, min_count: int = 2, max_size: int | None = None
    ) -> TrackVocab:
        """Keep the tracks seen at least ``min_count`` times (the ``max_size`` most frequent, ties by id)."""
        if min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {min_count}")
        counter: Counter[int] = Counter()
        for playlist in playlists:
            counter.update(int(t) for t in playlist)
        kept = sorted((t for t, c in counter.items() if c >= min_count), key=lambda t: (-counter[t], t))
        if max_size is not None:
            kept = kept[:max_size]
        kept_set = set(kept)
        rare = sum(c for t, c in counter.items() if t not in kept_set)
        counts = np.zeros(len(kept) + len(SPECIALS), dtype=np.int64)
        counts[UNK] = rare
        counts[len(SPECIALS) :] = [counter[t] for t in kept]
        return cls(track_ids=np.asarray(kept, dtype=np.int64), counts=counts)

    def __len__(self) -> int:
        return len(self.track_ids) + len(SPECIALS)

    @property
    def _index(self) -> dict[int, int]:
        index = self.__dict__.get("_index_cache")
        if index is None:
            index = {int(t): i + len(SPECIALS) for i, t in enumerate(self.track_ids)}
            object.__setattr__(self, "_index_cache", index)
        return index

    def encode(self, playlist: Sequence[int]) -> list[int]:
        """Token ids of a playlist; tracks outside the vocabulary become ``UNK`` in place."""
        index = self._index
        return [index.get(int(t), UNK) for t in playlist]

    def track_of(self, token: int) -> int | None:
        """The catalog track id of a token, or None for the special tokens."""
        return int(self.track_ids[token - len(SPECIALS)]) if token >= len(SPECIALS) else None

    def coverage(self, playlists: Iterable[Sequence[int]]) -> float:
        """Share of entries that are in the vocabulary."""
        index = self._index
        total = known = 0
        for playlist in playlists:
            total += len(playlist)
            known += sum(1 for t in playlist if int(t) in index)
        return known / total if total else 0.0


@dataclass(frozen=True)
class Windows:
    """Token sequences after the long-playlist rule, and which playlist each came from."""

    sequences: list[list[int]]
    owner: np.ndarray  # (W,) int64: index of the playlist each window belongs to
    windowed_playlists: int  # playlists longer than max_len


def split_windows(token_playlists: Sequence[Sequence[int]], max_len: int) -> Windows:
    """Apply the long-playlist rule: contiguous windows of at most ``max_len`` tokens.

    An empty playlist becomes one empty window (its vector is the encoder's empty-input
    state), so every playlist has at least one window.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    sequences: list[list[int]] = []
    owner: list[int] = []
    windowed = 0
    for i, playlist in enumerate(token_playlists):
        tokens = list(playlist)
        if len(tokens) > max_len:
            windowed += 1
        starts = range(0, max(len(tokens), 1), max_len)
        for start in starts:
            sequences.append(tokens[start : start + max_len])
            owner.append(i)
    return Windows(sequences, np.asarray(owner, dtype=np.int64), windowed)


def pool_windows(vectors: np.ndarray, windows: Windows, n_playlists: int) -> np.ndarray:
    """Length-weighted mean of window vectors per playlist: (W, D) → (N, D)."""
    weights = np.asarray([max(len(s), 1) for s in windows.sequences], dtype=np.float64)  # (W,)
    out = np.zeros((n_playlists, vectors.shape[1]), dtype=np.float64)  # (N, D)
    np.add.at(out, windows.owner, vectors.astype(np.float64) * weights[:, None])
    total = np.zeros(n_playlists, dtype=np.float64)
    np.add.at(total, windows.owner, weights)
    return (out / total[:, None]).astype(np.float32)


class Batch(NamedTuple):
    """A padded batch: encoder input, decoder input (BOS + tokens) and target (tokens + EOS)."""

    tokens: torch.Tensor  # (B, T) int64, PAD-padded
    lengths: torch.Tensor  # (B,) int64, ≥ 1 (an empty sequence is read as one PAD step)
    decoder_in: torch.Tensor  # (B, T + 1) int64
    target: torch.Tensor  # (B, T + 1) int64, PAD where there is nothing to predict
    rows: torch.Tensor | None = None  # (B,) int64: which training sequences the rows are, when known


def collate(sequences: Sequence[Sequence[int]], index: Sequence[int] | None = None) -> Batch:
    """Pad a list of token sequences into a :class:`Batch` (``index``: the sequences' numbers)."""
    lengths = [max(len(s), 1) for s in sequences]
    width = max(lengths)
    tokens = torch.full((len(sequences), width), PAD, dtype=torch.long)
    decoder_in = torch.full((len(sequences), width + 1), PAD, dtype=torch.long)
    target = torch.full((len(sequences), width + 1), PAD, dtype=torch.long)
    for i, seq in enumerate(sequences):
        n = len(seq)
        if n:
            row = torch.as_tensor(list(seq), dtype=torch.long)
            tokens[i, :n] = row
            decoder_in[i, 1 : n + 1] = row
            target[i, :n] = row
        decoder_in[i, 0] = BOS
        target[i, n] = EOS
    rows = torch.as_tensor(list(index), dtype=torch.long) if index is not None else None
    return Batch(tokens, torch.as_tensor(lengths, dtype=torch.long), decoder_in, target, rows)


def collate_bucket(item: tuple[list[int], list[list[int]]]) -> Batch:
    """A :class:`BucketDataset` item (sequence numbers, sequences) as a padded :class:`Batch`."""
    index, sequences = item
    return collate(sequences, index)


class BucketDataset(torch.utils.data.Dataset[tuple[list[int], list[list[int]]]]):
    """Batches of sequences of similar length, one batch per item: (sequence numbers, sequences).

    Sorting by length before batching keeps padding (and so RNN time on the CPU) close
    to the real number of tracks. Each item is a whole batch, so a standard
    ``DataLoader(batch_size=None, shuffle=True, collate_fn=collate_bucket)`` shuffles the
    batch order every epoch and Lightning's distributed sampler deals whole batches to the
    devices. Ties in length are broken by a seeded random key, so batch contents vary with
    the seed.

    ``shards``: the number of processes that share the batches. The batch count is made a
    multiple of it (the sequences spread evenly over that many batches, at most
    ``batch_size`` each where there are enough sequences), so the distributed sampler, which pads a count that does not
    divide to repeat batches, deals every sequence to exactly one process once per epoch.
    """

    def __init__(
        self, sequences: Sequence[Sequence[int]], batch_size: int, *, seed: int = 0, shards: int = 1
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if shards < 1:
            raise ValueError(f"shards must be at least 1, got {shards}")
        if len(sequences) < shards:
            raise ValueError(f"{len(sequences)} training sequence(s) cannot be shared by {shards} processes")
        rng = np.random.default_rng(seed)
        lengths = np.asarray([len(s) for s in sequences], dtype=np.float64)
        order = np.argsort(lengths + rng.random(len(lengths)), kind="stable")
        count = -(-len(order) // batch_size)
        if count % shards == 0:
            groups = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
        else:
            rounded = -(-count // shards) * shards
            if rounded > len(order):  # batches of one: fewer, slightly larger batches instead of empty ones
                rounded -= shards
            groups = np.array_split(order, rounded)
        self.indices = [[int(i) for i in group] for group in groups]
        self.batches = [[list(sequences[i]) for i in group] for group in self.indices]

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple[list[int], list[list[int]]]:
        return self.indices[index], self.batches[index]
