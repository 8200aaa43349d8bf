"""One function records a model version for every family: a new row, or the refreshed fields of one already there."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from recsys.catalog.model_versions import record_model_version
from recsys.catalog.schema import ModelVersion


def row(engine: sa.Engine, row_id: int) -> sa.Row:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(
                ModelVersion.kind,
                ModelVersion.version,
                ModelVersion.path,
                ModelVersion.params,
                ModelVersion.data_fingerprint,
                ModelVersion.metrics,
                ModelVersion.params.is_(None).label("params_null"),
            ).where(ModelVersion.id == row_id)
        ).one()


def test_a_new_version_gets_one_row_with_what_was_given(catalog_engine: sa.Engine, tmp_path: Path) -> None:
    with catalog_engine.begin() as conn:
        first = record_model_version(
            conn, "als", "abc", path=tmp_path / "m", params={"factors": 8}, data_fingerprint="f1", metrics={}
        )
        bare = record_model_version(conn, "dsp", "v1")
    got = row(catalog_engine, first)
    assert (got.kind, got.version, got.path, got.params, got.data_fingerprint, got.metrics) == (
        "als",
        "abc",
        str(tmp_path / "m"),
        {"factors": 8},
        "f1",
        {},
    )
    empty = row(catalog_engine, bare)
    assert (
        empty.path is None and empty.params_null and empty.data_fingerprint is None
    )  # SQL NULL, not JSON null
    assert first != bare


def test_a_version_recorded_again_refreshes_only_the_fields_named(catalog_engine: sa.Engine) -> None:
    with catalog_engine.begin() as conn:
        first = record_model_version(conn, "seq2seq", "v", path="/a", params={"x": 1}, metrics={"loss": 2.0})
    with catalog_engine.begin() as conn:
        again = record_model_version(
            conn, "seq2seq", "v", path="/b", params={"x": 9}, metrics={}, refresh=("path", "metrics")
        )
        kept = record_model_version(conn, "seq2seq", "v", path="/c", params={"x": 7})
    assert first == again == kept
    got = row(catalog_engine, first)
    # path refreshed; params not named; empty metrics keep the earlier ones; no refresh changes nothing
    assert (got.path, got.params, got.metrics) == ("/b", {"x": 1}, {"loss": 2.0})
    with catalog_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ModelVersion)).scalar_one() == 1


def test_only_the_recorded_fields_can_be_refreshed(catalog_engine: sa.Engine) -> None:
    with catalog_engine.begin() as conn, pytest.raises(ValueError, match="kind"):
        record_model_version(conn, "als", "v", refresh=("kind",))
