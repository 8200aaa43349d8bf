"""The ``model_version`` rows: one function records a model version for every model family.

A family (the factorisation models in :mod:`recsys.collaborative.store`, the seq2seq
playlist encoder in :mod:`recsys.models.playlist_seq2seq_store`, the trimodal bundle in
:mod:`recsys.models.trimodal_bundle`, the audio embedders) saves its files beside its
own code and then calls :func:`record_model_version` with what it wrote: its kind, the
version (a content hash, or ``name@revision``), the path, parameters, the fingerprint
of the data it was fitted on and its metrics. ``(kind, version)`` is unique: a version
recorded again keeps its row, and only the fields the family names in ``refresh`` take
the new values.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from recsys.catalog.schema import ModelVersion

FIELDS = ("path", "params", "data_fingerprint", "metrics")


def record_model_version(
    conn: sa.Connection,
    kind: str,
    version: str,
    *,
    path: Path | str | None = None,
    params: dict[str, Any] | None = None,
    data_fingerprint: str | None = None,
    metrics: dict[str, Any] | None = None,
    refresh: Iterable[str] = (),
) -> int:
    """The id of the ``(kind, version)`` row, inserted with the given values when it is new.

    A field left as ``None`` stays NULL in a new row. On a row already there, each field
    named in ``refresh`` is overwritten by its new value unless that value is ``None`` or
    empty (an empty ``metrics`` keeps the metrics recorded before).
    """
    refresh = tuple(refresh)
    unknown = sorted(set(refresh) - set(FIELDS))
    if unknown:
        raise ValueError(f"cannot refresh {unknown}: a model version's refreshable fields are {FIELDS}")
    given = {
        "path": None if path is None else str(path),
        "params": params,
        "data_fingerprint": data_fingerprint,
        "metrics": metrics,
    }
    found = conn.execute(
        sa.select(ModelVersion.id).where(ModelVersion.kind == kind, ModelVersion.version == version)
    ).scalar()
    if found is None:
        values = {k: v for k, v in given.items() if v is not None}
        return int(
            conn.execute(
                sa.insert(ModelVersion)
                .values(kind=kind, version=version, **values)
                .returning(ModelVersion.id)
            ).scalar_one()
        )
    changes = {k: given[k] for k in refresh if given[k]}
    if changes:
        conn.execute(sa.update(ModelVersion).where(ModelVersion.id == found).values(**changes))
    return int(found)
