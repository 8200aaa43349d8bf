"""ALS and BPR matrix factorisation through ``implicit``, behind the project's scorer contract.

The wrapper fits with BLAS limited to one thread (OpenBLAS's own threads slow implicit's
solver down), on the GPU when implicit was built with CUDA and the device asks for it, and
always serves from CPU factors. A new playlist's seeds are folded in without refitting:
ALS solves the user's least-squares problem (``recalculate_user``); BPR, which has no
closed-form fold-in, averages the seed item factors.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from threadpoolctl import threadpool_limits

from recsys.collaborative.base import seed_weights
from recsys.collaborative.matrix import InteractionMatrix
from recsys.errors import ConfigError

Kind = Literal["als", "bpr"]


@dataclass(frozen=True)
class MFConfig:
    """Hyperparameters of a factorisation model."""

    kind: Kind = "als"
    factors: int = 64
    iterations: int = 15
    regularization: float = 0.05
    alpha: float = 1.0  # ALS confidence of a held item: alpha·weight (implicit's convention)
    learning_rate: float = 0.01  # BPR
    seed: int = 7
    device: str = "auto"  # auto, cpu, cuda
    weighting: str = "none"  # ALS confidence weighting of the matrix: none or bm25
    bm25_k1: float = 100.0
    bm25_b: float = 0.8

    def __post_init__(self) -> None:
        if self.kind not in ("als", "bpr"):
            raise ConfigError(f"unknown factorisation model {self.kind!r}: use 'als' or 'bpr'")
        if self.weighting not in ("none", "bm25") or (self.weighting == "bm25" and self.kind != "als"):
            raise ConfigError(f"weighting {self.weighting!r}: use 'none', or 'bm25' with ALS")
        if self.factors < 1 or self.iterations < 1:
            raise ConfigError("factors and iterations must be at least 1")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def use_gpu(device: str) -> bool:
    """Whether to fit on the GPU: "auto" → when implicit has CUDA; "cuda…" requires it."""
    import implicit.gpu

    has_cuda = bool(implicit.gpu.HAS_CUDA)
    if device == "auto":
        return has_cuda
    if device.startswith("cuda"):
        if not has_cuda:
            raise ConfigError(f"device {device!r} asked for, but implicit was built without CUDA")
        return True
    if device == "cpu":
        return False
    raise ConfigError(f"unknown device {device!r}: use auto, cpu or cuda")


def _load_implicit() -> None:
    """Import implicit (and the BLAS it loads) before limiting threads: threadpoolctl only
    limits libraries already loaded."""
    import implicit.als
    import implicit.bpr  # noqa: F401


def _build(config: MFConfig, gpu: bool) -> Any:
    if config.kind == "als":
        from implicit.als import AlternatingLeastSquares

        return AlternatingLeastSquares(
            factors=config.factors,
            regularization=config.regularization,
            alpha=config.alpha,
            iterations=config.iterations,
            random_state=config.seed,
            use_gpu=gpu,
        )
    from implicit.bpr import BayesianPersonalizedRanking

    return BayesianPersonalizedRanking(
        factors=config.factors,
        learning_rate=config.learning_rate,
        regularization=config.regularization,
        iterations=config.iterations,
        random_state=config.seed,
        use_gpu=gpu,
    )


class MatrixFactorization:
    """ALS or BPR (``config.kind``) with fold-in scoring and per-seed explanations."""

    def __init__(self, config: MFConfig | None = None) -> None:
        self.config = config or MFConfig()
        self.name: str = self.config.kind
        self.model: Any = None
        # BM25 weighting: each item's idf and the mean row length of the matrix fitted on
        self.idf: np.ndarray | None = None
        self.avg_length = 1.0

    # ------------------------------------------------------------------ fitting

    def fit(self, matrix: InteractionMatrix, *, show_progress: bool = False) -> None:
        gpu = use_gpu(self.config.device)
        _load_implicit()
        weighted = matrix.matrix
        if self.config.weighting == "bm25":
            from implicit.nearest_neighbours import bm25_weight

            x = matrix.matrix.tocsr()
            rows = max(x.shape[0], 1)
            held = np.bincount(x.indices, minlength=x.shape[1])
            self.idf = (np.log(rows) - np.log1p(held)).astype(np.float32)
            self.avg_length = float(max(np.diff(x.indptr).mean(), 1.0)) if x.shape[0] else 1.0
            weighted = bm25_weight(x, K1=self.config.bm25_k1, B=self.config.bm25_b).tocsr()
        with threadpool_limits(1, "blas"):
            model = _build(self.config, gpu)
            model.fit(weighted, show_progress=show_progress)
        self.model = model.to_cpu() if gpu else model
        # serving folds one playlist in at a time: one thread beats a pool fighting for cores
        self.model.num_threads = 1

    def _fitted(self) -> Any:
        if self.model is None:
            raise RuntimeError(f"{self.name}: fit() or from_factors() first")
        return self.model

    @property
    def item_factors(self) -> np.ndarray:
        return np.asarray(self._fitted().item_factors)

    @property
    def user_factors(self) -> np.ndarray:
        return np.asarray(self._fitted().user_factors)

    def _seed_weights(self, seeds: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        """The seeds' weights; under BM25 weighting, a seed row's BM25 weights when none are given
        (the same weighting as the rows fitted on: (K1 + 1) / (K1 · length norm + 1) · idf)."""
        if weights is not None or self.idf is None:
            return seed_weights(seeds, weights)
        k1, b = self.config.bm25_k1, self.config.bm25_b
        norm = (1.0 - b) + b * len(seeds) / self.avg_length
        return ((k1 + 1.0) / (k1 * norm + 1.0) * self.idf[seeds]).astype(np.float32)

    @classmethod
    def from_factors(
        cls,
        config: MFConfig,
        item_factors: np.ndarray,
        user_factors: np.ndarray,
        *,
        idf: np.ndarray | None = None,
        avg_length: float = 1.0,
    ) -> MatrixFactorization:
        """Rebuild a fitted model from saved factors (no refit); ``idf`` and ``avg_length`` for BM25."""
        if config.weighting == "bm25" and idf is None:
            raise ConfigError("a BM25-weighted model needs the idf it was fitted with")
        self = cls(config)
        self.idf = None if idf is None else np.asarray(idf, dtype=np.float32)
        self.avg_length = avg_length
        _load_implicit()
        with threadpool_limits(1, "blas"):
            model = _build(config, gpu=False)
        model.num_threads = 1
        model.item_factors = np.ascontiguousarray(item_factors, dtype=np.float32)
        model.user_factors = np.ascontiguousarray(user_factors, dtype=np.float32)
        self.model = model
        return self

    def version(self) -> str:
        """Content hash of the config and the factors: the model version."""
        digest = hashlib.sha256(json.dumps(self.config.as_dict(), sort_keys=True).encode())
        digest.update(np.ascontiguousarray(self.item_factors).tobytes())
        digest.update(np.ascontiguousarray(self.user_factors).tobytes())
        return digest.hexdigest()[:16]

    # ------------------------------------------------------------------ fold-in and scoring

    def user_vector(self, seeds: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """The factor vector of a row holding ``seeds``, computed without refitting."""
        model = self._fitted()
        seeds = np.asarray(seeds, dtype=np.int64)
        w = self._seed_weights(seeds, weights)
        if self.config.kind == "als":
            from scipy import sparse

            order = np.argsort(seeds)
            row = sparse.csr_matrix(
                (w[order], seeds[order], np.array([0, len(seeds)])),
                shape=(1, model.item_factors.shape[0]),
                dtype=np.float32,
            )
            return np.asarray(model.recalculate_user(0, row), dtype=np.float32)
        factors = model.item_factors  # (I, F+1): the last column is the item bias
        if len(seeds) == 0:
            vector = np.zeros(factors.shape[1], dtype=np.float32)
        else:
            vector = (w[:, None] * factors[seeds]).sum(axis=0) / max(float(w.sum()), 1e-12)
        vector[-1] = 1.0  # multiplies the item bias, as in implicit's fitted user factors
        return vector.astype(np.float32)

    def scores(self, seeds: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        if len(seeds) == 0:
            return np.zeros(self.item_factors.shape[0], dtype=np.float32)
        return self.item_factors @ self.user_vector(seeds, weights)  # (I,)

    def explain(
        self, seeds: np.ndarray, targets: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """Contribution of each seed to each target's score; rows sum to the scores.

        ALS (c_i = alpha·w_i): score_j = y_jᵀ W Σ_i c_i y_i with W = (YᵀY + Yₛᵀ(C−I)Yₛ + λI)⁻¹, so seed i contributes
        c_i · y_jᵀ W y_i (Hu, Koren and Volinsky, section 5). BPR: the fold-in is the mean of the
        seed factors, so seed i contributes w_i · y_jᵀ y_i / Σw (the item bias is left out).
        """
        model = self._fitted()
        seeds = np.asarray(seeds, dtype=np.int64)
        targets = np.asarray(targets, dtype=np.int64)
        w = self._seed_weights(seeds, weights)
        y = model.item_factors
        if len(seeds) == 0:
            return np.zeros((len(targets), 0), dtype=np.float32)
        if self.config.kind == "als":
            confidence = self.config.alpha * w  # (S,)
            ys = y[seeds]  # (S, F)
            a = model.YtY + (ys.T * (confidence - 1.0)) @ ys
            a[np.diag_indices_from(a)] += self.config.regularization
            weighted = y[targets] @ np.linalg.inv(a).astype(np.float32)  # (T, F): y_jᵀ W, W symmetric
            return (weighted @ ys.T * confidence[None, :]).astype(np.float32)  # (T, S)
        return (y[targets, :-1] @ y[seeds, :-1].T * (w / max(float(w.sum()), 1e-12))[None, :]).astype(
            np.float32
        )
