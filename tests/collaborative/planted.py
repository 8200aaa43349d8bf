"""A planted block structure: playlists drawn from one block of items each."""

from __future__ import annotations

import numpy as np
import polars as pl

from recsys.collaborative.matrix import InteractionMatrix, from_frame

BLOCKS = 4
BLOCK_ITEMS = 30
PER_BLOCK = 60
PLAYLIST_LEN = 15


def block_of(item_id: int) -> int:
    return (item_id - 1000) // BLOCK_ITEMS


def planted_frame(seed: int = 3) -> pl.DataFrame:
    """(playlist_id, position, track_id): item ids 1000.. in blocks of 30; 60 playlists per block."""
    rng = np.random.default_rng(seed)
    rows = []
    pid = 0
    for block in range(BLOCKS):
        items = 1000 + block * BLOCK_ITEMS + np.arange(BLOCK_ITEMS)
        for _ in range(PER_BLOCK):
            for pos, item in enumerate(rng.choice(items, PLAYLIST_LEN, replace=False)):
                rows.append((pid, pos, int(item)))
            pid += 1
    return pl.DataFrame(
        rows, schema={"playlist_id": pl.Int64, "position": pl.Int32, "track_id": pl.Int64}, orient="row"
    )


def planted_matrix(seed: int = 3) -> InteractionMatrix:
    return from_frame(planted_frame(seed), row="playlist_id", item="track_id")
