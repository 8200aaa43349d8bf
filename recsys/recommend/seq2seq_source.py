"""Continuation candidates from the playlists nearest to the seeds in a playlist-vector space.

The seeds, in their order, are embedded as a playlist with the same encoder that embedded
the catalog's playlists (the seq2seq encoder, or any :class:`PlaylistEncoder`); the
``neighbours`` most similar playlists (cosine) then vote for their tracks with their
similarity, so a track scores "how much of the nearest playlists holds it". Seeds are
never proposed. With no seed there is nothing to embed and the source proposes nothing
(the title and popularity sources of the service cover that case).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
from scipy import sparse
from sqlalchemy import Engine, select

from recsys.catalog.schema import ModelVersion
from recsys.errors import NotFoundError
from recsys.models.base import PlaylistEncoder
from recsys.recommend.candidates import Candidates


class PlaylistNeighbourSource:
    """A :class:`~recsys.recommend.candidates.CandidateSource` over nearest playlist vectors."""

    def __init__(
        self,
        encoder: PlaylistEncoder,
        playlists: Sequence[Sequence[int]],
        *,
        vectors: np.ndarray | None = None,
        neighbours: int = 50,
        name: str = "seq2seq",
        label: str = "in playlists that flow like this one (seq2seq)",
    ) -> None:
        """``playlists`` are the training playlists; ``vectors`` their embeddings when already computed."""
        self.encoder = encoder
        self.name = name
        self.label = label
        self.neighbours = neighbours
        raw = np.asarray(encoder.embed(playlists) if vectors is None else vectors, dtype=np.float32)  # (R, D)
        self.vectors = raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)
        track_ids = np.unique(np.concatenate([np.asarray(p, dtype=np.int64) for p in playlists if len(p)]))
        self.track_ids = track_ids  # (I,)
        rows = np.concatenate([np.full(len(set(p)), r) for r, p in enumerate(playlists)])
        cols = np.concatenate([np.searchsorted(track_ids, sorted(set(map(int, p)))) for p in playlists])
        self.members_t = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (cols, rows)), shape=(len(track_ids), len(playlists))
        )  # (I, R): track i is in playlist r

    def candidates(self, seeds: Sequence[int], title: str | None, n: int) -> Candidates:
        if not seeds or n <= 0:
            return Candidates.none()
        query = np.asarray(self.encoder.embed([list(seeds)])[0], dtype=np.float32)  # (D,)
        query /= max(float(np.linalg.norm(query)), 1e-12)
        similarity = self.vectors @ query  # (R,)
        k = min(self.neighbours, len(similarity))
        best = np.argpartition(-similarity, k - 1)[:k]
        weights = np.zeros_like(similarity)
        weights[best] = np.maximum(similarity[best], 0.0)
        scores = np.asarray(self.members_t @ weights).ravel()  # (I,)
        seed_ids = np.asarray(list(seeds), dtype=np.int64)
        at = np.minimum(np.searchsorted(self.track_ids, seed_ids), len(self.track_ids) - 1)
        scores[at[self.track_ids[at] == seed_ids]] = 0.0  # never propose a seed
        positive = np.flatnonzero(scores > 0)
        top = positive[np.argsort(-scores[positive], kind="stable")[:n]]
        return Candidates.build(self.track_ids[top], scores[top], self.label)


MODEL_KIND = "seq2seq"
PROBE_PLAYLISTS = 8  # playlists re-embedded to check that the stored vectors are the encoder's


def stored_neighbour_source(
    engine: Engine,
    data_dir: Path,
    entries: pl.DataFrame,
    *,
    device: str = "cpu",
    neighbours: int = 50,
    max_tries: int = 4,
) -> tuple[PlaylistNeighbourSource, str]:
    """The nearest-playlist source of the newest trained seq2seq encoder whose catalog vectors exist.

    ``entries`` are the namespace's playlist entries (``playlist_entries``); the vectors are
    those ``recsys embed playlists`` wrote to ``<data_dir>/embeddings/playlists_<label>.parquet``.
    They are used only when the encoder gives the same vectors again for a few stored
    playlists: vectors written by an older encoder of the same label would set the seeds
    against the wrong space. Returns the source and the encoder's version; raises
    ``NotFoundError`` saying why there is none.
    """
    with engine.connect() as conn:
        rows = conn.execute(
            select(ModelVersion.version, ModelVersion.path, ModelVersion.params)
            .where(ModelVersion.kind == MODEL_KIND)
            .order_by(ModelVersion.id.desc())
        ).all()
    if not rows:
        raise NotFoundError("no trained playlist encoder: run `recsys train playlist-encoder`")
    reasons: list[str] = []
    for version, path, params in rows:
        if len(reasons) >= max_tries:
            break
        label = (params or {}).get("label", "")
        vectors_path = data_dir / "embeddings" / f"playlists_{label}.parquet"
        if not vectors_path.is_file():
            reasons.append(f"{label} {version}: no playlist vectors (run `recsys embed playlists`)")
            continue
        if not path or not Path(path).is_file():
            reasons.append(f"{label} {version}: its file {path} is missing")
            continue
        try:
            source = _aligned_source(Path(path), vectors_path, entries, device, neighbours)
        except ValueError as exc:
            reasons.append(f"{label} {version}: {exc}")
            continue
        return source, str(version)
    raise NotFoundError("no usable seq2seq encoder: " + "; ".join(reasons))


def _aligned_source(
    encoder_path: Path, vectors_path: Path, entries: pl.DataFrame, device: str, neighbours: int
) -> PlaylistNeighbourSource:
    from recsys.models.playlist_seq2seq_store import load_encoder_file  # deferred: torch

    encoder = load_encoder_file(encoder_path, device=device)
    frame = pl.read_parquet(vectors_path)
    if frame.width != 2 or frame.columns[0] != "playlist_id":
        raise ValueError(f"{vectors_path.name} is not a file of playlist vectors")
    grouped = (
        entries.group_by("playlist_id", maintain_order=True)
        .agg("track_id")
        .join(
            frame.rename({frame.columns[1]: "vector"}), on="playlist_id", how="inner", maintain_order="left"
        )
    )
    if grouped.height == 0:
        raise ValueError(f"{vectors_path.name} holds none of the namespace's playlists")
    vectors = np.asarray(grouped["vector"].to_numpy(), dtype=np.float32)  # (R, D)
    if vectors.ndim != 2 or vectors.shape[1] != encoder.dim:
        raise ValueError(
            f"{vectors_path.name} holds vectors of another size than the encoder's {encoder.dim}"
        )
    playlists = grouped["track_id"].to_list()
    probe = np.linspace(0, len(playlists) - 1, min(PROBE_PLAYLISTS, len(playlists))).astype(np.int64)
    again = encoder.embed([playlists[i] for i in probe])  # (P, D)
    stored = vectors[probe]
    scale = max(1.0, float(np.abs(stored).max()))
    if float(np.abs(again - stored).max()) > 1e-3 * scale:
        raise ValueError(f"{vectors_path.name} was written by another encoder (run `recsys embed playlists`)")
    return PlaylistNeighbourSource(encoder, playlists, vectors=vectors, neighbours=neighbours)
