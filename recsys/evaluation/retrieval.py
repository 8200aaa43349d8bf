"""Retrieval metrics of the trimodal model: the true soundtrack among N candidates.

For each test clip the candidates are its own soundtrack and ``candidates - 1``
soundtracks of other test clips (drawn once with a fixed seed); the query is the
video alone, the text alone, or both fused. Reported: Recall@1/5/10, the median
rank of the true soundtrack (1 = first) and the chance level of each.

On a set with music-only *twins* (the synthetic set renders, for some test clips,
the same music with another instrument or culture: what its video cannot show),
:func:`twin_metrics` ranks the true soundtrack among itself and its twins: the video
alone is ambiguous there by construction, so any gain is the text's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recsys.models.trimodal_batches import Features, pad, to_batch

MODES = ("video", "text", "video+text")


def embed_all(model: Any, features: Features) -> dict[str, np.ndarray]:
    """Unit query vectors per mode (N, E) and music vectors (N, E)."""
    import torch  # deferred: torch, only when a model is evaluated

    batch = to_batch(features)
    with torch.inference_mode():
        v = model.video(batch["video"], batch["video_mask"])
        t = model.text(batch["text"], batch["text_mask"])
        out = {
            "video": model.fuse(v, None).vector,
            "text": model.fuse(None, t).vector,
            "video+text": model.fuse(v, t).vector,
            "music": model.music(batch["music"], batch["music_mask"]),
        }
    return {k: x.numpy() for k, x in out.items()}


def ranks_among(queries: np.ndarray, music: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Rank (1-based) of music[i] for query i among the rows ``candidates[i]`` (whose first is i)."""
    ranks = np.empty(len(queries), dtype=np.int64)
    for i, rows in enumerate(candidates):
        scores = music[rows] @ queries[i]  # (C,)
        ranks[i] = 1 + int((scores > scores[0]).sum())
    return ranks


def summarise(ranks: np.ndarray, pool: int) -> dict[str, float]:
    out = {f"recall@{k}": float((ranks <= k).mean()) for k in (1, 5, 10) if k <= pool}
    out["median_rank"] = float(np.median(ranks))
    out["chance_recall@10" if pool >= 10 else "chance_recall@1"] = (
        min(10, pool) / pool if pool >= 10 else 1 / pool
    )
    return out


def candidate_rows(n: int, candidates: int, seed: int = 0) -> np.ndarray:
    """(n, C) rows: row i starts with i, then C-1 distinct other rows."""
    if n < candidates:
        raise ValueError(f"{candidates} candidates need at least {candidates} test clips, have {n}")
    rng = np.random.default_rng(seed)
    out = np.empty((n, candidates), dtype=np.int64)
    for i in range(n):
        others = rng.choice(n - 1, size=candidates - 1, replace=False)
        out[i, 0], out[i, 1:] = i, others + (others >= i)
    return out


def retrieval_metrics(model: Any, features: Features, candidates: int = 100, seed: int = 0) -> dict[str, Any]:
    """Recall@1/5/10 and median rank of each clip's own soundtrack among ``candidates``, per query mode."""
    vectors = embed_all(model, features)
    rows = candidate_rows(len(features), candidates, seed)
    result: dict[str, Any] = {"candidates": candidates, "queries": len(features)}
    for mode in MODES:
        result[mode] = summarise(ranks_among(vectors[mode], vectors["music"], rows), candidates)
    return result


def twin_metrics(model: Any, features: Features) -> dict[str, Any] | None:
    """True soundtrack among itself and its music-only twins; ``None`` when the set has no twins."""
    import torch  # deferred: torch, only when a model is evaluated

    with_twins = [i for i, t in enumerate(features.twins or []) if t]
    if not with_twins:
        return None
    vectors = embed_all(model, features.subset(with_twins))
    result: dict[str, Any] = {"queries": len(with_twins)}
    pool = 1 + len(features.twins[with_twins[0]])
    for mode in MODES:
        ranks = []
        for j, i in enumerate(with_twins):
            seqs = [features.music[i][features.music_mask[i]], *features.twins[i]]
            music, mask = pad(seqs)
            with torch.inference_mode():
                m = model.music(torch.from_numpy(music), torch.from_numpy(mask)).numpy()  # (1 + twins, E)
            scores = m @ vectors[mode][j]
            ranks.append(1 + int((scores > scores[0]).sum()))
        result[mode] = summarise(np.asarray(ranks), pool)
    result["pool"] = pool
    return result
