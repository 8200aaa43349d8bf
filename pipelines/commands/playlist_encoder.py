"""Commands of the playlist encoder: ``recsys train playlist-encoder``, ``embed playlists``,
``evaluate probing`` and ``evaluate seq2seq-continuation``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.commands import groups
from pipelines.commands.support import echo_json, engine_for, settings, translate_errors


@groups.train_app.command("playlist-encoder")
@translate_errors
def train_playlist_encoder(
    arch: Annotated[str, typer.Option(help="Encoder and decoder cell: gru or lstm.")] = "gru",
    bidirectional: Annotated[bool, typer.Option("--bidirectional", help="Bidirectional encoder.")] = False,
    epochs: Annotated[int, typer.Option(help="Passes over the playlists.")] = 5,
    hidden: Annotated[int, typer.Option(help="Hidden units per direction (vector size × directions).")] = 64,
    embed_dim: Annotated[int, typer.Option(help="Track embedding size.")] = 32,
    min_count: Annotated[int, typer.Option(help="Tracks seen fewer times become the unknown token.")] = 2,
    max_len: Annotated[
        int, typer.Option(help="Longer playlists are read in windows of this many tracks.")
    ] = 250,
    batch_size: Annotated[int, typer.Option(help="Sequences per batch.")] = 128,
    negatives: Annotated[int, typer.Option(help="Sampled-softmax negatives (0: full softmax).")] = 512,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    max_minutes: Annotated[
        float | None, typer.Option(help="Stop after this long; the report says how many epochs ran.")
    ] = None,
    threads: Annotated[int, typer.Option(help="CPU threads for torch (1 is fastest on a busy machine).")] = 1,
    devices: Annotated[int, typer.Option(help="Devices (GPUs, or CPU processes) per node.")] = 1,
    strategy: Annotated[
        str, typer.Option(help="Lightning strategy across devices: auto, ddp or ddp_spawn.")
    ] = "auto",
    num_nodes: Annotated[int, typer.Option(help="Machines taking part (ddp across nodes).")] = 1,
    namespace: Annotated[str, typer.Option(help="Playlist namespace to train on.")] = "catalog",
    as_json: Annotated[bool, typer.Option("--json", help="Print the training report as JSON.")] = False,
) -> None:
    """Train the seq2seq playlist autoencoder and record it as a model version."""
    # deferred: torch, lightning, transformers
    from pipelines.train.playlist_encoder import train_playlist_encoder as run
    from recsys.models.playlist_seq2seq import Seq2SeqConfig

    cfg = settings()
    try:
        config = Seq2SeqConfig(
            arch=arch,  # type: ignore[arg-type]
            bidirectional=bidirectional,
            epochs=epochs,
            hidden=hidden,
            embed_dim=embed_dim,
            min_count=min_count,
            max_len=max_len,
            batch_size=batch_size,
            sampled_negatives=negatives,
            seed=seed,
            strategy=strategy,
            devices=devices,
            num_nodes=num_nodes,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    result = run(
        engine_for(cfg),
        cfg.ensure_data_dir(),
        config,
        namespace=namespace,
        device=cfg.device,
        threads=threads,
        max_seconds=max_minutes * 60 if max_minutes else None,
        progress=not as_json and sys.stderr.isatty(),  # a bar on a terminal only
    )
    if result is None:  # another rank of a ddp run: rank 0 reports
        return
    if as_json:
        echo_json(result.as_dict())
        return
    r = result.report
    typer.echo(
        f"{config.label} {result.version}: {r.playlists:,} playlists, vocabulary {r.vocab_size:,} "
        f"({r.coverage:.1%} of entries), {r.epochs} epoch(s) in {r.seconds:.0f} s "
        f"({r.playlists_per_second:.0f} playlists/s), loss {r.epoch_losses[-1] if r.epoch_losses else float('nan'):.3f}; "
        f"{r.windowed_playlists} playlist(s) read in windows"
        f"{f'; {r.world_size} processes ({config.strategy})' if r.world_size > 1 else ''}; saved {result.path}"
    )


@groups.embed_app.command("playlists")
@translate_errors
def embed_playlists(
    model: Annotated[str, typer.Option(help="seq2seq, sif, mean-als or random.")] = "seq2seq",
    label: Annotated[
        str | None, typer.Option(help="Which seq2seq variant, e.g. seq2seq-gru-bi (default: the newest).")
    ] = None,
    threads: Annotated[int, typer.Option(help="CPU threads for torch.")] = 1,
    namespace: Annotated[str, typer.Option(help="Playlist namespace to embed.")] = "catalog",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Write a vector for every playlist (and every track) with one encoder."""
    # deferred: torch, lightning, transformers
    from pipelines.embed.playlists import embed_catalog

    cfg = settings()
    result = embed_catalog(engine_for(cfg), cfg, model, label=label, namespace=namespace, threads=threads)
    if as_json:
        echo_json(result)
    else:
        typer.echo(
            f"{result['encoder']}: {result['playlists']:,} playlist vectors ({result['dim']}-d) → "
            f"{result['playlists_path']}; {result['tracks']:,} track vectors → {result['tracks_path']}"
        )


@groups.evaluate_app.command("probing")
@translate_errors
def evaluate_probing(
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the probe table as JSON to this file.")
    ] = None,
    folds: Annotated[int, typer.Option(help="Cross-validation folds.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the probe tasks and folds.")] = 0,
    threads: Annotated[int, typer.Option(help="CPU threads for torch.")] = 1,
    namespace: Annotated[str, typer.Option(help="Playlist namespace to probe.")] = "catalog",
) -> None:
    """Linear probes (length, content, order, artist diversity, title words) for every encoder."""
    # deferred: torch, lightning, transformers
    from pipelines.embed.playlists import probe_catalog

    cfg = settings()
    table, missing = probe_catalog(
        engine_for(cfg), cfg, folds=folds, seed=seed, namespace=namespace, threads=threads
    )
    for line in missing:
        typer.echo(f"not probed: {line}", err=True)
    typer.echo(table.to_markdown())
    typer.echo("title words: " + ", ".join(table.title_vocabulary))
    if json_out is not None:
        _write_json(json_out, {**table.as_dict(), "not_probed": missing})
        typer.echo(f"wrote {json_out}")


@groups.evaluate_app.command("seq2seq-continuation")
@translate_errors
def evaluate_seq2seq_continuation(
    test_playlists: Annotated[int, typer.Option(help="Playlists held out of the catalog.")] = 300,
    arch: Annotated[str, typer.Option(help="Encoder cell: gru or lstm.")] = "gru",
    bidirectional: Annotated[bool, typer.Option("--bidirectional", help="Bidirectional encoder.")] = False,
    epochs: Annotated[int, typer.Option(help="Encoder training epochs.")] = 3,
    neighbours: Annotated[int, typer.Option(help="Nearest playlists that vote for tracks.")] = 50,
    weight: Annotated[float, typer.Option(help="Fusion weight of the seq2seq source in the hybrid.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the split and the encoder.")] = 0,
    threads: Annotated[int, typer.Option(help="CPU threads for torch.")] = 1,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON here.")] = None,
    markdown: Annotated[Path | None, typer.Option(help="Write the report as Markdown here.")] = None,
    namespace: Annotated[str, typer.Option(help="Playlist namespace.")] = "catalog",
) -> None:
    """Continuation with the seq2seq candidate source in the hybrid, against without it."""
    # deferred: torch, lightning, transformers
    from pipelines.evaluate.seq2seq_continuation import evaluate_seq2seq_continuation as run
    from recsys.evaluation.reports import continuation_markdown, write_report
    from recsys.models.playlist_seq2seq import Seq2SeqConfig

    cfg = settings()
    config = Seq2SeqConfig(
        arch=arch,  # type: ignore[arg-type]
        bidirectional=bidirectional,
        epochs=epochs,
        hidden=64,
        embed_dim=32,
        batch_size=128,
        sampled_negatives=512,
        seed=seed,
    )
    report = run(
        engine_for(cfg),
        config,
        test_playlists=test_playlists,
        namespace=namespace,
        seed=seed,
        neighbours=neighbours,
        weight=weight,
        threads=threads,
    )
    write_report(report, json_out, markdown)
    typer.echo(continuation_markdown(report))


def _write_json(path: Path, payload: Any) -> None:

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
