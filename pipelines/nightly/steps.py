"""The nightly steps that pull and embed: ingest new inputs, embed audio, embed music.

Each step is an existing job behind three questions the runner asks: is there
anything for it to do at all (``idle``), what are its inputs (``fingerprint``, a
digest the runner compares with the step's last success) and what did it do
(``run``, which returns counts and metrics). The jobs are idempotent themselves
(ingest skips inputs it holds with the same bytes; the embedders embed only tracks
whose audio checksum or encoder version changed); the fingerprint only spares a run
the cost of finding out that nothing changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from pipelines.embed.audio import embed_audio
from pipelines.embed.encoders import Encoder, build_audio_embedder
from pipelines.embed.executors import Executor, make_executor
from pipelines.ingest.audio_dir import ingest_audio_dir
from pipelines.ingest.guards import InputLimits
from pipelines.ingest.listens import ingest_listens
from pipelines.ingest.mpd import ingest_mpd
from pipelines.ingest.report import IngestReport
from pipelines.ingest.tables import ingest_table
from pipelines.nightly.config import NightlyConfig
from recsys.catalog import runs
from recsys.catalog.schema import AudioAsset, IngestBatch, ModelVersion, Track
from recsys.config import Settings
from recsys.errors import InputError
from recsys.models.trimodal_bundle import bundle_version, load_bundle, model_file
from recsys.vectorstore import open_store
from recsys.vectorstore.base import VectorStore


@dataclass
class Context:
    """What every step of one run shares: settings, catalog, pipeline and the vector store (opened on first use)."""

    settings: Settings
    engine: Engine
    config: NightlyConfig
    echo: Callable[[str], None] = lambda line: None
    opened: list[VectorStore] = field(default_factory=list)

    @cached_property
    def store(self) -> VectorStore:
        store = open_store(self.settings)
        self.opened.append(store)
        return store

    def executor(self) -> Executor | None:
        """Where the embedding steps decode and embed (RECSYS_EXECUTOR, RECSYS_RAY_ADDRESS,
        RECSYS_RAY_ACTORS); None: in this process."""
        cfg = self.settings
        return make_executor(cfg.executor.strip().lower(), address=cfg.ray_address, actors=cfg.ray_actors)

    @property
    def models_dir(self) -> Path:
        return self.settings.data_dir / "models"

    def close(self) -> None:
        for store in self.opened:
            store.close()
        self.opened.clear()


@dataclass
class Outcome:
    """What a step did: counts (inputs seen, new, skipped, rejected, embedded, upserted, ...) and metrics."""

    counts: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    name: str
    cadence: Callable[[NightlyConfig], str]
    idle: Callable[[Context], str | None]  # why there is nothing to do, or None
    fingerprint: Callable[[Context], str]
    run: Callable[[Context], Outcome]
    # Why the step's last success is out of date whatever its cadence (an input it must follow
    # the same night, such as a newly published model), or None.
    overtaken: Callable[[Context, runs.Step], str | None] | None = None


def digest(*parts: Any) -> str:
    """A SHA-256 of JSON-able parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _always(config: NightlyConfig) -> str:
    return "always"


# --------------------------------------------------------------------------- ingest


def file_listing(path: Path) -> list[tuple[str, int, int]]:
    """(path, size, mtime) of a file or of every file below a folder; a missing path lists itself."""
    if path.is_file():
        stat = path.stat()
        return [(str(path), stat.st_size, stat.st_mtime_ns)]
    if not path.is_dir():
        return [(str(path), -1, -1)]
    return [
        (f, size, mtime)
        for file in sorted(path.rglob("*"))
        if file.is_file()
        for f, size, mtime in file_listing(file)
    ]


def _ingest_idle(ctx: Context) -> str | None:
    return "no sources in the pipeline" if ctx.config.sources.is_empty() else None


def _ingest_fingerprint(ctx: Context) -> str:
    src = ctx.config.sources
    listing = [
        file_listing(p)
        for p in src.mpd + src.audio + [t.path for t in src.tables] + [s.path for s in src.listens]
    ]
    # A Spotify playlist can change without a sign: with any configured, ingest always runs
    # (unchanged playlists are skipped by their checksum, as `recsys ingest spotify` does).
    remote = datetime.now(UTC).isoformat() if src.spotify_playlists else None
    return digest(src.model_dump(mode="json"), listing, remote)


def _ingest_run(ctx: Context) -> Outcome:
    cfg, engine, src = ctx.settings, ctx.engine, ctx.config.sources
    limits = InputLimits.from_settings(cfg)
    total = IngestReport(source="nightly")
    reports: list[IngestReport] = []
    if src.mpd:
        reports.append(ingest_mpd(engine, list(src.mpd), batch_rows=cfg.batch_rows, limits=limits))
    for root in src.audio:
        reports.append(ingest_audio_dir(engine, root, limits=limits))
    for table in src.tables:  # kind, id_prefix, namespace: the job's own option names
        options = table.model_dump(exclude={"path"})
        reports.append(
            ingest_table(engine, [table.path], batch_rows=cfg.batch_rows, limits=limits, **options)
        )
    for listens in src.listens:
        reports.append(
            ingest_listens(
                engine,
                [listens.path],
                fmt=listens.format,
                id_prefix=listens.id_prefix,
                batch_rows=cfg.batch_rows,
                limits=limits,
            )
        )
    if src.spotify_playlists:
        # deferred: spotipy (spotify extra), only for a pipeline that names Spotify playlists
        from pipelines.ingest.spotify import SpotifyInputs, ingest_spotify
        from pipelines.ingest.spotify_client import SpotifyApi

        inputs = SpotifyInputs(playlists=list(src.spotify_playlists))
        reports.append(ingest_spotify(engine, SpotifyApi(cfg), inputs, limits=limits))
    for report in reports:
        ctx.echo(report.summary())
        total.merge(report)
    if total.unreadable:
        raise InputError("; ".join(total.unreadable))
    counts = {
        "inputs": total.inputs,
        "skipped": total.skipped,
        "new": total.inputs - total.skipped,
        "loaded": dict(total.loaded),
        "rejected": total.rejected,
    }
    return Outcome(counts=counts, metrics={"reasons": dict(total.reasons)})


INGEST = Step("ingest", _always, _ingest_idle, _ingest_fingerprint, _ingest_run)


# --------------------------------------------------------------------------- embed audio


def _audio_state(conn: sa.Connection) -> list[Any]:
    """What the audio embedders read: the assets (how many, newest) and the audio ingests."""
    assets = conn.execute(sa.select(sa.func.count(), sa.func.max(AudioAsset.id))).one()
    batches = conn.execute(
        sa.select(sa.func.count(), sa.func.max(IngestBatch.id)).where(IngestBatch.source == "audio-dir")
    ).one()
    return [list(assets), list(batches)]


def _embedders(ctx: Context) -> list[Any]:
    return [build_audio_embedder(ctx.settings, Encoder(name)) for name in ctx.config.encoders.audio]


def holds_any(ctx: Context, column: Any) -> bool:
    """Whether the catalog table of ``column`` holds a row."""
    with ctx.engine.connect() as conn:
        return conn.execute(sa.select(column).limit(1)).first() is not None


def _audio_idle(ctx: Context) -> str | None:
    if not ctx.config.encoders.audio:
        return "no audio encoder in the pipeline"
    return None if holds_any(ctx, AudioAsset.id) else "the catalog holds no audio"


def _audio_fingerprint(ctx: Context) -> str:
    with ctx.engine.connect() as conn:
        state = _audio_state(conn)
    # The encoders' versions: a new version (other weights or settings) embeds everything again.
    versions = [(e.kind, e.version) for e in _embedders(ctx)]
    return digest(state, versions, ctx.settings.vector_target)


def _audio_run(ctx: Context) -> Outcome:
    counts: dict[str, Any] = {"pending": 0, "embedded": 0, "rejected": 0, "skipped_rejected": 0}
    metrics: dict[str, Any] = {}
    for embedder in _embedders(ctx):
        report = embed_audio(
            ctx.engine,
            ctx.store,
            embedder,
            batch_size=ctx.settings.audio_batch_size,
            max_duration_s=ctx.settings.audio_max_duration_s,
            executor=ctx.executor(),
        )
        ctx.echo(report.summary())
        for key in counts:
            counts[key] += getattr(report, key)
        metrics[embedder.name] = {
            "version": report.version,
            "seconds_of_audio": round(report.seconds_of_audio, 3),
        }
    return Outcome(counts=counts, metrics=metrics)


EMBED_AUDIO = Step(
    "embed-audio", lambda c: c.encoders.audio_cadence, _audio_idle, _audio_fingerprint, _audio_run
)


# --------------------------------------------------------------------------- embed music


def _music_bundle(ctx: Context) -> Path:
    return model_file(ctx.settings.data_dir)


def _music_idle(ctx: Context) -> str | None:
    if not ctx.config.encoders.music:
        return "music vectors not in the pipeline"
    if (no_audio := _audio_idle(ctx)) == "the catalog holds no audio":
        return no_audio
    if not _music_bundle(ctx).is_file():
        return f"no video–music model at {_music_bundle(ctx)} (train one with `recsys train trimodal`)"
    return None


def _music_fingerprint(ctx: Context) -> str:
    bundle = _music_bundle(ctx)
    with ctx.engine.connect() as conn:
        state = _audio_state(conn)
        tracks = list(conn.execute(sa.select(sa.func.count(), sa.func.max(Track.id))).one())
    # The bundle's version (its content) as well as its listing: a model published over the
    # old one may have the same size, and its file keeps the time it was written.
    return digest(state, tracks, file_listing(bundle), bundle_version(bundle), ctx.settings.vector_target)


def _music_overtaken(ctx: Context, last: runs.Step) -> str | None:
    """A model other than the one the last success embedded serves: its vectors are due at once."""
    bundle = _music_bundle(ctx)
    if not bundle.is_file():
        return None
    version, embedded = bundle_version(bundle), last.metrics.get("model")
    return (
        None if version == embedded else f"the model {version} serves, the store holds {embedded}'s vectors"
    )


def _music_run(ctx: Context) -> Outcome:
    from pipelines.embed.music import embed_music  # deferred: torch (ml extra)

    path = _music_bundle(ctx)
    report = embed_music(ctx.engine, load_bundle(path), path, ctx.store, executor=ctx.executor())
    ctx.echo(report.summary())
    counts = {"embedded": report.embedded, "unchanged": report.unchanged, "rejected": len(report.failed)}
    return Outcome(
        counts=counts, metrics={"model": report.model_version, "seconds": round(report.seconds, 3)}
    )


EMBED_MUSIC = Step(
    "embed-music",
    lambda c: c.encoders.music_cadence,
    _music_idle,
    _music_fingerprint,
    _music_run,
    overtaken=_music_overtaken,
)


def serving_version(conn: sa.Connection, kind: str) -> str | None:
    """The version of the newest recorded model of ``kind`` (the one the services load)."""
    return conn.execute(
        sa.select(ModelVersion.version)
        .where(ModelVersion.kind == kind)
        .order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
        .limit(1)
    ).scalar()
