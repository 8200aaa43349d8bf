"""Saved models round-trip, and their version is recorded once in the catalog (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from recsys.catalog.schema import ModelVersion
from recsys.collaborative.factorization import MatrixFactorization, MFConfig
from recsys.collaborative.store import latest_model, load_model, save_model
from recsys.errors import ConfigError, NotFoundError
from tests.collaborative.planted import planted_matrix


@pytest.mark.parametrize("kind", ["als", "bpr"])
def test_save_load_and_version_row(catalog_engine: sa.Engine, tmp_path: Path, kind: str) -> None:
    matrix = planted_matrix()
    model = MatrixFactorization(MFConfig(kind=kind, factors=8, iterations=3, seed=2))  # type: ignore[arg-type]
    model.fit(matrix)
    saved = save_model(catalog_engine, tmp_path / "models", model, matrix, metrics={"fit_seconds": 0.1})
    assert saved.path == (tmp_path / "models" / kind / saved.version).resolve()
    again = save_model(catalog_engine, tmp_path / "models", model, matrix)
    assert again.version == saved.version
    with catalog_engine.connect() as conn:
        rows = conn.execute(
            sa.select(ModelVersion.kind, ModelVersion.version, ModelVersion.data_fingerprint)
        ).all()
    assert rows == [(kind, saved.version, matrix.fingerprint())]

    loaded = latest_model(catalog_engine, kind)
    assert loaded.version == saved.version
    np.testing.assert_array_equal(loaded.items.ids, matrix.items.ids)
    np.testing.assert_array_equal(loaded.model.item_factors, model.item_factors)
    seeds = matrix.items.indices([1000, 1005, 1010])
    np.testing.assert_allclose(loaded.model.scores(seeds), model.scores(seeds), rtol=1e-5)
    assert loaded.model.version() == saved.version


def test_missing_model_is_a_named_error(catalog_engine: sa.Engine, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no als model"):
        latest_model(catalog_engine, "als")
    with pytest.raises(NotFoundError, match=r"missing factors\.npz"):
        load_model(tmp_path)


def test_bad_config_and_device_are_named_errors() -> None:
    with pytest.raises(ConfigError, match="unknown factorisation"):
        MFConfig(kind="svd")  # type: ignore[arg-type]
    import implicit.gpu

    if not implicit.gpu.HAS_CUDA:
        with pytest.raises(ConfigError, match="without CUDA"):
            MatrixFactorization(MFConfig(device="cuda", factors=4, iterations=1)).fit(planted_matrix())


def test_a_model_trained_on_the_same_data_with_the_same_settings_is_found(
    catalog_engine: sa.Engine, tmp_path: Path
) -> None:
    from dataclasses import replace

    from recsys.collaborative.store import trained_model

    matrix = planted_matrix()
    config = MFConfig(kind="als", factors=8, iterations=3, seed=2, device="cpu")
    assert trained_model(catalog_engine, "als", config, matrix.fingerprint()) is None
    model = MatrixFactorization(config)
    model.fit(matrix)
    saved = save_model(catalog_engine, tmp_path / "models", model, matrix)
    found = trained_model(catalog_engine, "als", replace(config, device="auto"), matrix.fingerprint())
    assert found is not None and found.reused and found.version == saved.version
    assert not saved.reused
    # other settings, other data, another kind: not the same model
    assert trained_model(catalog_engine, "als", replace(config, factors=9), matrix.fingerprint()) is None
    assert trained_model(catalog_engine, "als", config, planted_matrix(seed=4).fingerprint()) is None
    assert trained_model(catalog_engine, "bpr", config, matrix.fingerprint()) is None
    # a recorded model whose folder is gone is trained again
    for name in ("factors.npz", "config.json"):
        (saved.path / name).unlink()
    assert trained_model(catalog_engine, "als", config, matrix.fingerprint()) is None


def test_a_bm25_model_keeps_its_weighting_when_loaded(catalog_engine: sa.Engine, tmp_path: Path) -> None:
    matrix = planted_matrix()
    model = MatrixFactorization(MFConfig(kind="als", factors=8, iterations=3, seed=2, weighting="bm25"))
    model.fit(matrix)
    saved = save_model(catalog_engine, tmp_path / "models", model, matrix)
    loaded = load_model(saved.path)
    assert loaded.model.idf is not None and loaded.model.avg_length == model.avg_length
    seeds = matrix.items.indices([1000, 1005, 1010])
    np.testing.assert_allclose(loaded.model.scores(seeds), model.scores(seeds), rtol=1e-5)
    with pytest.raises(ConfigError, match="needs the idf"):
        MatrixFactorization.from_factors(loaded.model.config, model.item_factors, model.user_factors)
    with pytest.raises(ConfigError, match="weighting 'bm25'"):
        MFConfig(kind="bpr", weighting="bm25")
