"""Train the seq2seq playlist encoder on the catalog's playlists and record the model version.

On several devices or nodes (the config's ``strategy``, ``devices`` and ``num_nodes``)
only global rank 0 records the run and saves the model version; the other ranks of a
``ddp`` run (the same command, started again by Lightning) train their share and return None.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from sqlalchemy import Engine

from recsys.catalog import runs
from recsys.catalog.queries import playlist_entries
from recsys.catalog.schema import DEFAULT_NAMESPACE
from recsys.errors import NotFoundError
from recsys.models.distributed import distribution_record, is_global_zero
from recsys.models.playlist_seq2seq import Seq2SeqConfig
from recsys.models.playlist_seq2seq_store import save_encoder_version
from recsys.models.playlist_seq2seq_training import FitReport, fit_seq2seq


@dataclass(frozen=True)
class CatalogPlaylists:
    """The playlists of a namespace as ordered track-id lists, and a fingerprint of them."""

    playlist_ids: list[int]
    playlists: list[list[int]]
    fingerprint: str


def load_playlists(engine: Engine, *, namespace: str = DEFAULT_NAMESPACE) -> CatalogPlaylists:
    """Every playlist of ``namespace`` in playlist-id order; fails clearly when there is none."""
    entries = playlist_entries(engine, namespace=namespace)
    if entries.height == 0:
        raise NotFoundError(
            f"no playlists in namespace {namespace!r}: ingest some first (recsys ingest mpd …)"
        )
    grouped = entries.group_by("playlist_id", maintain_order=True).agg("track_id")
    ids = grouped["playlist_id"].to_list()
    playlists = grouped["track_id"].to_list()
    digest = hashlib.sha256()
    for pid, tracks in zip(ids, playlists, strict=True):
        digest.update(f"{pid}:{','.join(map(str, tracks))};".encode())
    return CatalogPlaylists(ids, playlists, digest.hexdigest()[:16])


@dataclass(frozen=True)
class TrainResult:
    model_version_id: int
    version: str
    path: Path
    report: FitReport

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_version_id": self.model_version_id,
            "version": self.version,
            "path": str(self.path),
            **self.report.as_dict(),
        }


def train_playlist_encoder(
    engine: Engine,
    data_dir: Path,
    config: Seq2SeqConfig,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    device: str = "auto",
    threads: int | None = None,
    max_seconds: float | None = None,
    progress: bool = False,
) -> TrainResult | None:
    """Train on the playlists of ``namespace``, save under ``<data dir>/models``, record a model version.

    ``threads`` sets torch's CPU threads (one thread is the fastest on a busy machine:
    the RNN steps are small and threads wait on each other). Returns None on a rank
    other than global rank 0, which writes nothing.
    """
    from pipelines.train.workers import WorkerLogging  # deferred: lightning

    if threads:
        torch.set_num_threads(threads)
    data = load_playlists(engine, namespace=namespace)
    if not is_global_zero():
        fit_seq2seq(data.playlists, config, device=device, max_seconds=max_seconds)
        return None
    with engine.begin() as conn:
        run_id = runs.start_run(
            conn, "train playlist-encoder", {"config": asdict(config), "namespace": namespace}
        )
    try:
        encoder, report = fit_seq2seq(
            data.playlists,
            config,
            device=device,
            max_seconds=max_seconds,
            progress=progress,
            callbacks=[WorkerLogging()],
        )
        distribution = distribution_record(config.strategy, config.devices, config.num_nodes)
        saved = save_encoder_version(
            engine,
            data_dir,
            encoder,
            params={**asdict(config), **distribution, "label": config.label, "namespace": namespace},
            data_fingerprint=data.fingerprint,
            metrics=report.as_dict(),
        )
    except Exception as exc:
        _finish_run(engine, run_id, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    _finish_run(
        engine, run_id, status="done", counts={"playlists": report.playlists}, metrics=report.as_dict()
    )
    return TrainResult(saved.model_version_id, saved.version, saved.path, report)


def _finish_run(engine: Engine, run_id: int, *, status: str, **values: Any) -> None:
    with engine.begin() as conn:
        if status == "done":
            runs.finish_run(conn, run_id, **values)
        else:
            runs.fail_run(conn, run_id, values.pop("error", status), **values)
