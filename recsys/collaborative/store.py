"""Saving and loading factorisation models, with the version recorded in the catalog.

A model lives in ``<models dir>/<kind>/<version>/``: ``factors.npz`` (item and row factors),
``item_ids.npy`` and ``row_keys.npy`` (the id maps) and ``config.json`` (hyperparameters,
data fingerprint, shape, metrics). The version is a content hash, so saving the same model
twice writes one folder and one ``model_version`` row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from recsys.catalog.model_versions import record_model_version
from recsys.catalog.schema import ModelVersion
from recsys.collaborative.factorization import MatrixFactorization, MFConfig
from recsys.collaborative.matrix import InteractionMatrix, ItemMap
from recsys.errors import NotFoundError

FILES = ("factors.npz", "item_ids.npy", "row_keys.npy", "config.json")


@dataclass(frozen=True)
class SavedModel:
    """A fitted factorisation model with its id maps, as saved or loaded."""

    model: MatrixFactorization
    items: ItemMap
    row_keys: np.ndarray
    version: str
    path: Path
    data_fingerprint: str
    metrics: dict[str, Any]
    reused: bool = False  # found already trained (``trained_model``), not fitted now


def save_model(
    engine: Engine,
    models_dir: Path,
    model: MatrixFactorization,
    matrix: InteractionMatrix,
    *,
    metrics: dict[str, Any] | None = None,
    kind: str | None = None,
) -> SavedModel:
    """Write the model under ``models_dir/<kind>/<version>/`` and record it in ``model_version``.

    ``kind`` defaults to the model's (``als``, ``bpr``); models of another matrix than the
    playlists' get their own (``als-listens``), so the latest ``als`` is always a playlist model.
    """
    kind = kind or model.config.kind
    version = model.version()
    fingerprint = matrix.fingerprint()
    path = (models_dir / kind / version).resolve()
    path.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {"item_factors": model.item_factors, "user_factors": model.user_factors}
    if model.idf is not None:  # BM25 weighting: what a new playlist's seeds are weighted with
        arrays |= {"idf": model.idf, "avg_length": np.array([model.avg_length])}
    np.savez(path / "factors.npz", **arrays)  # type: ignore[arg-type]
    np.save(path / "item_ids.npy", matrix.items.ids.astype(np.int64), allow_pickle=False)
    np.save(path / "row_keys.npy", np.asarray(matrix.row_keys).astype(str), allow_pickle=False)
    meta = {
        "config": model.config.as_dict(),
        "kind": kind,
        "version": version,
        "data_fingerprint": fingerprint,
        "shape": list(matrix.shape),
        "nnz": matrix.nnz,
        "metrics": metrics or {},
    }
    (path / "config.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    with engine.begin() as conn:
        record_model_version(
            conn,
            kind,
            version,
            path=path,
            params={**model.config.as_dict(), "shape": list(matrix.shape), "nnz": matrix.nnz},
            data_fingerprint=fingerprint,
            metrics=metrics or {},
            refresh=("path", "metrics"),
        )
    return SavedModel(
        model, matrix.items, np.asarray(matrix.row_keys), version, path, fingerprint, metrics or {}
    )


def load_model(path: Path) -> SavedModel:
    """Load a saved model folder; a missing or incomplete folder raises NotFoundError."""
    missing = [name for name in FILES if not (path / name).is_file()]
    if missing:
        raise NotFoundError(f"{path}: not a saved model (missing {', '.join(missing)})")
    meta = json.loads((path / "config.json").read_text())
    with np.load(path / "factors.npz") as factors:
        bm25 = "idf" in factors.files
        model = MatrixFactorization.from_factors(
            MFConfig(**meta["config"]),
            factors["item_factors"],
            factors["user_factors"],
            idf=factors["idf"] if bm25 else None,
            avg_length=float(factors["avg_length"][0]) if bm25 else 1.0,
        )
    return SavedModel(
        model=model,
        items=ItemMap(np.load(path / "item_ids.npy", allow_pickle=False)),
        row_keys=np.load(path / "row_keys.npy", allow_pickle=False),
        version=meta["version"],
        path=path,
        data_fingerprint=meta["data_fingerprint"],
        metrics=meta.get("metrics", {}),
    )


def latest_model(engine: Engine, kind: str = "als") -> SavedModel:
    """The most recently recorded model of ``kind`` in the catalog, loaded from its folder."""
    with engine.connect() as conn:
        row = conn.execute(
            select(ModelVersion.version, ModelVersion.path)
            .where(ModelVersion.kind == kind)
            .order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
            .limit(1)
        ).first()
    if row is None:
        raise NotFoundError(
            f"no {kind} model in the catalog: train one with `recsys train als --model {kind}`"
        )
    if not row.path:
        raise NotFoundError(f"{kind} model {row.version} has no path recorded")
    return load_model(Path(row.path))


def trained_model(engine: Engine, kind: str, config: MFConfig, data_fingerprint: str) -> SavedModel | None:
    """A recorded model of ``kind`` fitted with ``config`` on data of this fingerprint, if its
    folder is still there (the device it was fitted on does not matter); else None."""
    wanted = {k: v for k, v in config.as_dict().items() if k != "device"}
    with engine.connect() as conn:
        rows = conn.execute(
            select(ModelVersion.params, ModelVersion.path)
            .where(ModelVersion.kind == kind, ModelVersion.data_fingerprint == data_fingerprint)
            .order_by(ModelVersion.id.desc())
        ).all()
    for params, path in rows:
        if not path or {k: (params or {}).get(k) for k in wanted} != wanted:
            continue
        try:
            saved = load_model(Path(path))
        except NotFoundError:
            continue
        return replace(saved, reused=True)
    return None
