"""The playlist encoder, when due: retrain the seq2seq encoder on the catalog's playlists and
publish its playlist and track vectors (``recsys train playlist-encoder``, then
``recsys embed playlists --model seq2seq``).

Its cadence is the file's ``[seq2seq]`` (``weekly`` by default, off unless ``enabled``);
its inputs are the playlists (as for the ALS refit) and its settings.
"""

from __future__ import annotations

from dataclasses import asdict

from pipelines.nightly.gate import interactions, train_idle
from pipelines.nightly.steps import Context, Outcome, Step, digest
from recsys.errors import ConfigError
from recsys.models.playlist_seq2seq import Seq2SeqConfig


def _config(ctx: Context) -> Seq2SeqConfig:
    return Seq2SeqConfig.from_dict(ctx.config.seq2seq.model_dump(exclude={"enabled", "cadence"}))


def _idle(ctx: Context) -> str | None:
    off = None if ctx.config.seq2seq.enabled else "the playlist encoder is not in the pipeline"
    return off or train_idle(ctx)


def _fingerprint(ctx: Context) -> str:
    return digest(interactions(ctx), asdict(_config(ctx)))


def _run(ctx: Context) -> Outcome:
    # deferred: torch, lightning (ml extra)
    from pipelines.embed.playlists import embed_catalog
    from pipelines.train.playlist_encoder import train_playlist_encoder

    config = _config(ctx)
    trained = train_playlist_encoder(ctx.engine, ctx.settings.data_dir, config, device=ctx.settings.device)
    if trained is None:  # a rank other than 0 of a multi-process run: nightly trains in one process
        raise ConfigError("recsys nightly runs in one process: unset RANK, NODE_RANK and LOCAL_RANK")
    summary = embed_catalog(ctx.engine, ctx.settings, "seq2seq", label=config.label)
    ctx.echo(f"{config.label} {trained.version}: {summary['playlists']:,} playlists embedded")
    counts = {"playlists": summary["playlists"], "tracks": summary["tracks"]}
    return Outcome(counts=counts, metrics={"version": trained.version, **trained.report.as_dict()})


TRAIN_SEQ2SEQ = Step("train-seq2seq", lambda c: c.seq2seq.cadence, _idle, _fingerprint, _run)
