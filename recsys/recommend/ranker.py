"""The learned ranker: candidates pooled from every source, re-ranked by a LightGBM ranking model.

A request's sources each propose up to ``pool`` tracks; reciprocal rank fusion
(:data:`POOL_WEIGHTS`) cuts their union to the ``pool`` best, the pool's features
(:mod:`recsys.recommend.ranker_features`) are computed, and the model's scores order it.
The model is trained on playlists carved from the training playlists (never the test
ones), shown as the challenge's seed categories show them: each playlist is one query,
its pooled candidates the documents, a candidate relevant when the playlist holds it.
The objective is XE-NDCG (``rank_xendcg``) by default: on the trimmed MPD it ranked as
well as lambdarank or better, and trained in a quarter of the time.

Files: ``model.txt`` (LightGBM's text format) and ``ranker.json`` (config, feature names,
importances) in ``<models dir>/ranker/<version>/``; the version is a content hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recsys.errors import InputError
from recsys.recommend.candidates import Candidates
from recsys.recommend.fusion import Fusion, reciprocal_rank_fusion
from recsys.recommend.ranker_features import FEATURES, PairFeatures, column_mask

MODEL_KIND = "ranker"
POOL_WEIGHTS: dict[str, float] = {
    "als": 1.0,
    "knn": 1.0,
    "playlist_knn": 1.0,
    "title": 0.5,
    "popularity": 0.1,
    "artist_knn": 0.5,
    "seed_artists": 0.5,
}


@dataclass(frozen=True)
class RankerConfig:
    """How candidates are pooled and how the model is trained."""

    pool: int = 1000  # candidates ranked per request
    objective: str = "rank_xendcg"  # or lambdarank, binary (each candidate on its own)
    trees: int = 300
    learning_rate: float = 0.05
    num_leaves: int = 63
    min_data_in_leaf: int = 50
    feature_fraction: float = 0.8
    truncation: int = 200  # lambdarank's truncation level (lambdarank only)
    seed: int = 7
    threads: int = 2
    drop_groups: tuple[str, ...] = ()  # feature groups left out (ablation)
    drop_sources: tuple[str, ...] = ()  # sources left out of the pool and the features (ablation)
    pool_weights: Mapping[str, float] = field(default_factory=lambda: dict(POOL_WEIGHTS))

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["drop_groups"], out["drop_sources"] = list(self.drop_groups), list(self.drop_sources)
        out["pool_weights"] = dict(self.pool_weights)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RankerConfig:
        values = dict(data)
        values["drop_groups"] = tuple(values.get("drop_groups", ()))
        values["drop_sources"] = tuple(values.get("drop_sources", ()))
        return cls(**values)

    def weights(self) -> dict[str, float]:
        return {s: (0.0 if s in self.drop_sources else w) for s, w in self.pool_weights.items()}


@dataclass
class Pool:
    """One request's pooled candidates: the fusion (for reasons), the pool ids and features."""

    fusion: Fusion
    track_ids: np.ndarray  # (C,) catalog ids
    features: np.ndarray  # (C, F)


def pool_candidates(
    lists: Mapping[str, Candidates],
    features: PairFeatures,
    seeds: Sequence[int],
    title: str | None,
    config: RankerConfig,
    size: int | None = None,
) -> Pool:
    """The union of ``lists`` cut to the ``size`` (default ``config.pool``) best by fusion, with features."""
    weights = config.weights()
    kept = {name: c for name, c in lists.items() if weights.get(name, 0.0) > 0}
    fusion = reciprocal_rank_fusion(kept, weights=weights)
    take = min(len(fusion), size or config.pool)
    ids = fusion.track_ids[:take]
    return Pool(fusion, ids, features.build(kept, ids, fusion.scores[:take], seeds, title))


class Ranker:
    """A trained LightGBM ranking model over :data:`FEATURES` (less the dropped columns)."""

    def __init__(self, booster: Any, config: RankerConfig, *, version: str | None = None) -> None:
        self.booster = booster
        self.config = config
        self.mask = column_mask(config.drop_groups, config.drop_sources)
        self.version = version or self._digest()

    @property
    def feature_names(self) -> list[str]:
        return [name for name, keep in zip(FEATURES, self.mask, strict=True) if keep]

    def score(self, features: np.ndarray) -> np.ndarray:
        """(C,) scores of a pool's rows (higher first)."""
        if len(features) == 0:
            return np.empty(0, dtype=np.float64)
        return np.asarray(self.booster.predict(features[:, self.mask], num_threads=1), dtype=np.float64)

    def rank(self, pool: Pool) -> tuple[np.ndarray, np.ndarray]:
        """The pool's ids and scores, best first (ties: the fusion's order)."""
        scores = self.score(pool.features)
        order = np.lexsort((np.arange(len(scores)), -scores))
        return pool.track_ids[order], scores[order]

    def importances(self) -> dict[str, float]:
        """Total gain of each feature, as shares summing to 1, largest first."""
        gain = np.asarray(self.booster.feature_importance(importance_type="gain"), dtype=np.float64)
        total = float(gain.sum()) or 1.0
        pairs = sorted(zip(self.feature_names, gain / total, strict=True), key=lambda p: -p[1])
        return {name: round(float(v), 5) for name, v in pairs}

    def _digest(self) -> str:
        digest = hashlib.sha256(json.dumps(self.config.as_dict(), sort_keys=True).encode())
        digest.update(self.booster.model_to_string().encode())
        return digest.hexdigest()[:16]

    def save(self, folder: Path) -> Path:
        path = (folder / self.version).resolve()
        path.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(path / "model.txt"))
        (path / "ranker.json").write_text(
            json.dumps(
                {
                    "config": self.config.as_dict(),
                    "features": self.feature_names,
                    "importances": self.importances(),
                },
                indent=1,
            )
        )
        return path

    @classmethod
    def load(cls, path: Path) -> Ranker:
        import lightgbm  # deferred: lightgbm (ml extra), loaded only where a ranker is used

        try:
            meta = json.loads((path / "ranker.json").read_text())
            booster = lightgbm.Booster(model_file=str(path / "model.txt"))
        except (OSError, ValueError, lightgbm.basic.LightGBMError) as exc:
            raise InputError(f"ranker at {path}: cannot be read: {exc}") from exc
        ranker = cls(booster, RankerConfig.from_dict(meta["config"]), version=path.name)
        if ranker.feature_names != meta["features"]:
            raise InputError(f"ranker at {path}: its features {meta['features']} are not this version's")
        return ranker


@dataclass(frozen=True)
class Example:
    """One training query: a playlist as shown (seeds, title) and the tracks it really holds."""

    seeds: tuple[int, ...]
    title: str | None
    holdout: tuple[int, ...]


def training_matrix(
    pools: Iterable[tuple[Pool, Sequence[int]]],
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Stack pools into (X, y, group sizes); a pool without a relevant candidate teaches
    a ranking objective nothing and is left out."""
    blocks, labels, groups = [], [], []
    for pool, holdout in pools:
        y = np.isin(pool.track_ids, np.asarray(holdout, dtype=np.int64)).astype(np.float32)
        if len(y) == 0 or y.sum() == 0:
            continue
        blocks.append(pool.features)
        labels.append(y)
        groups.append(len(y))
    if not blocks:
        raise InputError("no validation playlist had a relevant track among its candidates: nothing to learn")
    return np.vstack(blocks), np.concatenate(labels), groups


def fit_ranker(x: np.ndarray, y: np.ndarray, groups: Sequence[int], config: RankerConfig) -> Ranker:
    """Train the ranking model on stacked pools (all :data:`FEATURES`; dropped ones are masked here)."""
    import lightgbm  # deferred: lightgbm (ml extra), loaded only where a ranker is trained

    mask = column_mask(config.drop_groups, config.drop_sources)
    names = [name for name, keep in zip(FEATURES, mask, strict=True) if keep]
    params = {
        "objective": config.objective,
        "learning_rate": config.learning_rate,
        "num_leaves": config.num_leaves,
        "min_data_in_leaf": config.min_data_in_leaf,
        "feature_fraction": config.feature_fraction,
        "lambdarank_truncation_level": config.truncation,
        "seed": config.seed,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": config.threads,
        "verbosity": -1,
    }
    if config.objective not in ("lambdarank", "rank_xendcg", "binary"):
        raise InputError(f"ranker objective {config.objective!r}: use lambdarank, rank_xendcg or binary")
    grouped = None if config.objective == "binary" else list(groups)
    data = lightgbm.Dataset(x[:, mask], label=y, group=grouped, feature_name=names, free_raw_data=True)
    booster = lightgbm.train(params, data, num_boost_round=config.trees)
    return Ranker(booster, config)


@dataclass
class RankerStage:
    """A trained ranker with the feature builder of the catalog it serves."""

    ranker: Ranker
    features: PairFeatures

    def rerank(
        self, lists: Mapping[str, Candidates], seeds: Sequence[int], title: str | None, size: int
    ) -> tuple[Fusion, np.ndarray, np.ndarray]:
        """The fusion of ``lists`` (for reasons), and the pool's ids with positive scores
        (``exp(score − best)``, so that feedback's multiplicative penalty keeps its meaning), best first."""
        pool = pool_candidates(lists, self.features, seeds, title, self.ranker.config, size)
        ids, scores = self.ranker.rank(pool)
        if len(scores):
            scores = np.exp(scores - scores[0])
        return pool.fusion, ids, scores
