"""Saving and loading the seq2seq playlist encoder, with its version recorded in the catalog.

An encoder is one file (``torch.save`` of its config, vocabulary and weights; read back
with ``weights_only``, so no pickled code runs) under
``<data dir>/models/playlist_seq2seq/<label>-<version>.pt``. The version is the first 16
hex digits of the file's SHA-256, and the ``model_version`` row (kind ``seq2seq``) names
the file, the hyperparameters with the label, the data fingerprint and the fit report.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from sqlalchemy import Engine, select

from recsys.catalog.db import session_scope
from recsys.catalog.model_versions import record_model_version
from recsys.catalog.schema import ModelVersion
from recsys.errors import NotFoundError
from recsys.models.playlist_seq2seq import PlaylistSeq2Seq, Seq2SeqConfig, Seq2SeqEncoder
from recsys.models.track_vocab import TrackVocab

FORMAT_VERSION = 1
MODEL_KIND = "seq2seq"


def encoder_state(encoder: Seq2SeqEncoder) -> dict[str, Any]:
    """Config, vocabulary and weights as plain tensors and values."""
    return {
        "format": FORMAT_VERSION,
        "config": asdict(encoder.config),
        "track_ids": torch.from_numpy(encoder.vocab.track_ids),
        "counts": torch.from_numpy(encoder.vocab.counts),
        "state_dict": {k: v.detach().cpu() for k, v in encoder.model.state_dict().items()},
    }


def encoder_bytes(encoder: Seq2SeqEncoder) -> bytes:
    """The encoder's file as bytes (what :func:`save_encoder` writes)."""
    buffer = io.BytesIO()
    torch.save(encoder_state(encoder), buffer)
    return buffer.getvalue()


def save_encoder(encoder: Seq2SeqEncoder, path: Path) -> None:
    """Write config, vocabulary and weights to one file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(encoder_state(encoder), path)


def encoder_from_state(state: dict[str, Any], *, device: str = "auto") -> Seq2SeqEncoder:
    if state.get("format") != FORMAT_VERSION:
        raise ValueError(f"unsupported playlist encoder format {state.get('format')!r}")
    config = Seq2SeqConfig.from_dict(state["config"])
    vocab = TrackVocab(track_ids=state["track_ids"].numpy(), counts=state["counts"].numpy())
    model = PlaylistSeq2Seq(config, len(vocab))
    model.load_state_dict(state["state_dict"])
    return Seq2SeqEncoder(config, vocab, model, device=device)


def load_encoder_file(path: Path, *, device: str = "auto") -> Seq2SeqEncoder:
    """The encoder saved in ``path`` (:func:`save_encoder`)."""
    return encoder_from_state(torch.load(path, map_location="cpu", weights_only=True), device=device)


# --------------------------------------------------------------------------- model versions


@dataclass(frozen=True)
class SavedEncoder:
    """Where an encoder was written and the ``model_version`` row that records it."""

    model_version_id: int
    version: str
    path: Path


def save_encoder_version(
    engine: Engine,
    data_dir: Path,
    encoder: Seq2SeqEncoder,
    *,
    params: dict[str, Any],
    data_fingerprint: str,
    metrics: dict[str, Any],
) -> SavedEncoder:
    """Write the encoder under ``<data dir>/models/playlist_seq2seq`` and record (or refresh) its version."""
    blob = encoder_bytes(encoder)
    version = hashlib.sha256(blob).hexdigest()[:16]
    path = data_dir / "models" / "playlist_seq2seq" / f"{encoder.config.label}-{version}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    with engine.begin() as conn:
        row_id = record_model_version(
            conn,
            MODEL_KIND,
            version,
            path=path.resolve(),
            params=params,
            data_fingerprint=data_fingerprint,
            metrics=metrics,
            refresh=("path", "params", "data_fingerprint", "metrics"),
        )
    return SavedEncoder(row_id, version, path)


def find_encoder(engine: Engine, *, label: str | None = None, version: str | None = None) -> ModelVersion:
    """The newest seq2seq model version (optionally of one ``label`` such as seq2seq-gru-bi, or one version)."""
    with session_scope(engine) as session:
        stmt = select(ModelVersion).where(ModelVersion.kind == MODEL_KIND).order_by(ModelVersion.id.desc())
        if version is not None:
            stmt = stmt.where(ModelVersion.version == version)
        for row in session.scalars(stmt):
            if label is None or (row.params or {}).get("label") == label:
                session.expunge(row)
                return row
    wanted = f" {label}" if label else ""
    wanted += f" version {version}" if version else ""
    raise NotFoundError(f"no trained playlist encoder{wanted}: run `recsys train playlist-encoder` first")


def load_encoder(row: ModelVersion, *, device: str = "auto") -> Seq2SeqEncoder:
    """The encoder a model version points at; a clear error when its file is gone."""
    path = Path(row.path or "")
    if not path.is_file():
        raise NotFoundError(f"model version {row.kind}/{row.version}: file {path} is missing")
    return load_encoder_file(path, device=device)
