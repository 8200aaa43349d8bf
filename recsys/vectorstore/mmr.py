"""Maximal marginal relevance (Carbonell & Goldstein, 1998) over candidate vectors.

Both backends fetch candidates with their vectors and pick from them here, so the
diversity a caller gets does not depend on the backend.
"""

from __future__ import annotations

import numpy as np

from recsys.vectorstore.spec import Distance


def similarity_matrix(a: np.ndarray, b: np.ndarray, distance: Distance) -> np.ndarray:
    """Similarities (larger is closer) between the rows of ``a`` (n, d) and ``b`` (m, d): (n, m)."""
    if distance == Distance.COSINE:
        a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        return a @ b.T
    if distance == Distance.DOT:
        return a @ b.T
    # Euclid: negative distance, so that larger is closer as for the other two.
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)  # (n, m)
    return -np.sqrt(np.maximum(sq, 0.0))


def mmr_select(
    query: np.ndarray,
    candidates: np.ndarray,
    k: int,
    *,
    diversity: float = 0.5,
    distance: Distance = Distance.COSINE,
) -> list[int]:
    """Indices of ``k`` candidates chosen greedily by MMR, in the order they were picked.

    Each step picks the candidate maximising
    ``(1 - diversity) * sim(query, c) - diversity * max(sim(c, s) for s already picked)``.
    ``diversity`` 0 returns the candidates by relevance; ``query`` is (d,), ``candidates`` (n, d).
    """
    if not 0.0 <= diversity <= 1.0:
        raise ValueError(f"diversity must lie in [0, 1], got {diversity}")
    n = len(candidates)
    if n == 0 or k <= 0:
        return []
    relevance = similarity_matrix(query[None, :], candidates, distance)[0]  # (n,)
    pairwise = similarity_matrix(candidates, candidates, distance)  # (n, n)
    chosen: list[int] = []
    redundancy = np.full(n, -np.inf)  # max similarity to anything picked so far
    available = np.ones(n, dtype=bool)
    for _ in range(min(k, n)):
        penalty = np.where(np.isfinite(redundancy), redundancy, 0.0)
        score = (1.0 - diversity) * relevance - diversity * penalty
        score[~available] = -np.inf
        best = int(np.argmax(score))
        chosen.append(best)
        available[best] = False
        redundancy = np.maximum(redundancy, pairwise[best])
    return chosen
