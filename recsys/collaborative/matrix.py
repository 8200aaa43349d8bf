"""Interaction matrices with their id maps: playlist×track from the catalog, user×item from listens.

Rows are the "users" of implicit (playlists or listeners), columns the items (tracks or
artists). The maps turn catalog ids into matrix indices and back; everything downstream
(models, baselines, services) works on indices and translates at the edge.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import sparse


@dataclass(frozen=True)
class ItemMap:
    """Catalog ids of the matrix columns, in column order, and the reverse lookup."""

    ids: np.ndarray  # (I,) int64 catalog ids

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {int(v): i for i, v in enumerate(self.ids.tolist())})

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def index(self, item_id: int) -> int | None:
        return self._index.get(int(item_id))  # type: ignore[attr-defined]

    def indices(self, item_ids: Iterable[int]) -> np.ndarray:
        """Matrix indices of the ids that are known, in order; unknown ids are left out."""
        lookup = self._index  # type: ignore[attr-defined]
        return np.fromiter((lookup[i] for i in (int(v) for v in item_ids) if i in lookup), dtype=np.int64)


@dataclass(frozen=True)
class InteractionMatrix:
    """A CSR matrix of (rows × items) weights with the catalog ids of both axes."""

    matrix: sparse.csr_matrix  # (R, I) float32
    row_keys: np.ndarray  # (R,) row keys: playlist ids (int) or user keys (str)
    items: ItemMap

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    @property
    def nnz(self) -> int:
        return int(self.matrix.nnz)

    def fingerprint(self) -> str:
        """A content hash of the matrix and its id maps (the model's data fingerprint)."""
        digest = hashlib.sha256()
        for array in (self.matrix.indptr, self.matrix.indices, self.matrix.data, self.items.ids):
            digest.update(np.ascontiguousarray(array).tobytes())
        digest.update("\x1f".join(map(str, self.row_keys.tolist())).encode())
        return digest.hexdigest()

    def seed_row(self, item_indices: Sequence[int] | np.ndarray) -> sparse.csr_matrix:
        """A one-row matrix with weight 1 on the given item indices (a new playlist's seeds)."""
        cols = np.unique(np.asarray(item_indices, dtype=np.int64))
        data = np.ones(cols.shape[0], dtype=np.float32)
        return sparse.csr_matrix(
            (data, cols, np.array([0, cols.shape[0]])), shape=(1, self.shape[1]), dtype=np.float32
        )

    def item_counts(self) -> np.ndarray:
        """How many rows hold each item: (I,) float64."""
        binary = self.matrix.copy()
        binary.data = np.ones_like(binary.data)
        return np.asarray(binary.sum(axis=0)).ravel()


def from_frame(frame: pl.DataFrame, *, row: str, item: str, weight: str | None = None) -> InteractionMatrix:
    """Build the matrix from a long frame of (row, item[, weight]); repeated pairs are summed.

    Without ``weight`` every pair counts 1 however often it repeats (a playlist that lists a
    track twice still holds it once).
    """
    if frame.height == 0:
        return InteractionMatrix(
            sparse.csr_matrix((0, 0), dtype=np.float32), np.array([]), ItemMap(np.array([], np.int64))
        )
    if weight is None:
        pairs = frame.select(row, item).unique().with_columns(pl.lit(1.0).alias("_w"))
    else:
        pairs = frame.group_by(row, item).agg(pl.col(weight).sum().alias("_w"))
    row_keys = pairs.get_column(row).unique().sort()
    item_ids = pairs.get_column(item).unique().sort()
    indexed = pairs.join(pl.DataFrame({row: row_keys, "_r": np.arange(row_keys.len())}), on=row).join(
        pl.DataFrame({item: item_ids, "_c": np.arange(item_ids.len())}), on=item
    )
    matrix = sparse.csr_matrix(
        (
            indexed.get_column("_w").to_numpy().astype(np.float32),
            (indexed.get_column("_r").to_numpy(), indexed.get_column("_c").to_numpy()),
        ),
        shape=(row_keys.len(), item_ids.len()),
        dtype=np.float32,
    )
    matrix.sort_indices()
    return InteractionMatrix(matrix, row_keys.to_numpy(), ItemMap(item_ids.to_numpy().astype(np.int64)))


def playlist_matrix(entries: pl.DataFrame, *, exclude: Iterable[int] = ()) -> InteractionMatrix:
    """Playlist×track from ``playlist_entries`` (playlist_id, position, track_id), without ``exclude``.

    Held-out test playlists go in ``exclude`` so that they never reach a training matrix.
    """
    held_out = pl.Series("playlist_id", list(exclude), dtype=pl.Int64)
    kept = entries.filter(~pl.col("playlist_id").is_in(held_out.implode()))
    return from_frame(kept, row="playlist_id", item="track_id")


def listen_matrix(
    listens: pl.DataFrame, *, item: str = "item_id", log_scale: bool = True
) -> InteractionMatrix:
    """User×item from listens (user_key, item, weight): play counts summed per pair, then
    log(1 + count) when ``log_scale`` (play counts are heavy-tailed)."""
    pairs = listens.group_by("user_key", item).agg(pl.col("weight").sum())
    if log_scale:
        pairs = pairs.with_columns(pl.col("weight").log1p())
    return from_frame(pairs, row="user_key", item=item, weight="weight")
