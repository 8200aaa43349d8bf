"""Commands of the music-for-video area: the synthetic set, training, the music vectors, scoring, evaluation.

``recsys demo-video``, ``recsys train trimodal``, ``recsys embed music``, ``recsys score-video``
and ``recsys evaluate video-retrieval``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from pipelines.commands import groups
from pipelines.commands.support import (
    ExecutorOption,
    RayActorsOption,
    RayAddressOption,
    echo_json,
    engine_for,
    executor_for,
    fail,
    settings,
    translate_errors,
)


def _parse_filters(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, wanted = value.partition("=")
        if not sep or not key.strip() or not wanted.strip():
            raise fail(f"--filter {value!r}: expected FIELD=VALUE, e.g. culture=indian")
        out[key.strip()] = wanted.strip()
    return out


@groups.top_app.command("demo-video")
@translate_errors
def demo_video(
    clips: Annotated[int, typer.Option(help="How many synthetic clips to generate.")] = 800,
    seed: Annotated[int, typer.Option(help="Random seed of the generator.")] = 11,
) -> None:
    """Generate the synthetic video+music set under <data dir>/demo/video and add its music to the catalog."""
    # deferred: av, soundfile, pyarrow
    from pipelines.demo.video import SynthConfig, generate
    from pipelines.embed.music import register_synthetic_music

    cfg = settings()
    engine = engine_for(cfg, migrate=True)
    out = cfg.ensure_data_dir() / "demo" / "video"
    rows = generate(out, SynthConfig(clips=clips, seed=seed))
    added = register_synthetic_music(engine, out, rows)
    typer.echo(f"synthetic set: {len(rows)} clips in {out}; {added} new catalog tracks with audio")


@groups.train_app.command("trimodal")
@translate_errors
def train_trimodal(
    videos: Annotated[Path, typer.Option(help="Folder of videos with soundtracks.")],
    descriptions: Annotated[
        Path | None, typer.Option(help="Descriptions by video name (JSON object, JSON lines or CSV).")
    ] = None,
    frames: Annotated[
        str, typer.Option(help="Frame encoder: descriptor (weight-free) or clip.")
    ] = "descriptor",
    clip_model: Annotated[
        str | None, typer.Option(help="CLIP id or local directory (with --frames clip).")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 40,
    text_dropout: Annotated[float, typer.Option(help="Share of clips trained without their text.")] = 0.5,
    devices: Annotated[int, typer.Option(help="Devices (GPUs, or CPU processes) per node.")] = 1,
    strategy: Annotated[
        str, typer.Option(help="Lightning strategy across devices: auto, ddp or ddp_spawn.")
    ] = "auto",
    num_nodes: Annotated[int, typer.Option(help="Machines taking part (ddp across nodes).")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Train the video–text–music model on (video, its soundtrack, description) triples."""
    # deferred: numpy
    from pipelines.train.trimodal import TrainSettings, run_training
    from recsys.models.trimodal_bundle import FeatureSpec, model_file

    cfg = settings()
    model_path = model_file(cfg.ensure_data_dir())
    spec = FeatureSpec(frame_encoder=frames, clip_model=clip_model)
    try:
        train_settings = TrainSettings(
            epochs=epochs, device=cfg.device, strategy=strategy, devices=devices, num_nodes=num_nodes
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    report = run_training(
        videos,
        model_path,
        spec=spec,
        descriptions_file=descriptions,
        settings=train_settings,
        config_overrides={"text_dropout": text_dropout},
        cache=model_path.parent / "cache" / spec.key(),
    )
    if report is None:  # another rank of a ddp run: rank 0 reports
        return
    if as_json:
        echo_json(report.as_dict())
        return
    for line in report.skipped:
        typer.echo(f"skipped: {line}", err=True)
    typer.echo(
        f"trained on {report.train} clips ({report.test} held out) in {report.seconds['train']:.0f} s "
        f"({report.seconds['train_cpu']:.0f} s CPU) "
        f"(features {report.seconds['extract']:.0f} s): model {report.version} at {report.model_path}"
        + (
            f" ({report.training['world_size']} processes, {report.training['strategy']})"
            if report.training["world_size"] > 1
            else ""
        )
    )
    retrieval = report.metrics.get("retrieval")
    if retrieval:
        for mode in ("video", "text", "video+text"):
            m = retrieval[mode]
            typer.echo(
                f"  {mode:<10} R@10 {m.get('recall@10', float('nan')):.3f}  median rank {m['median_rank']:.0f} "
                f"of {retrieval['candidates']}"
            )


@groups.embed_app.command("music")
@translate_errors
def embed_music(
    resize: Annotated[
        bool,
        typer.Option(
            "--resize", help="Drop stored `music` vectors of another size (a model of another size)."
        ),
    ] = False,
    executor: ExecutorOption = None,
    ray_address: RayAddressOption = None,
    ray_actors: RayActorsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Write the trimodal `music` vector of every catalog track with audio to the vector store (only what changed)."""
    # deferred: soundfile, pyarrow, polars
    from pipelines.embed.music import embed_music as run
    from recsys.models.trimodal_bundle import load_bundle, model_file
    from recsys.vectorstore import open_store

    cfg = settings()
    engine = engine_for(cfg)
    chosen = executor_for(cfg, executor, ray_address, ray_actors)
    model_path = model_file(cfg.data_dir)
    bundle = load_bundle(model_path)
    with open_store(cfg) as store:
        report = run(engine, bundle, model_path, store, resize=resize, executor=chosen)
    if as_json:
        echo_json(report.__dict__)
    else:
        for line in report.failed:
            typer.echo(f"error: {line}", err=True)
        typer.echo(report.summary())


@groups.top_app.command("score-video")
@translate_errors
def score_video(
    video: Annotated[Path, typer.Argument(help="The video file.")],
    prompt: Annotated[
        str | None, typer.Option(help="Words that guide the music, e.g. 'warm acoustic'.")
    ] = None,
    n: Annotated[int, typer.Option("--n", help="How many tracks.")] = 20,
    filters: Annotated[
        list[str] | None,
        typer.Option("--filter", help="FIELD=VALUE on the track payload, e.g. culture=indian."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Rank the catalog's music for a video (and a prompt), with what each contributed."""
    # deferred: numpy
    from recsys.models.trimodal_bundle import model_file
    from recsys.recommend.video_scoring import score_video as run
    from recsys.vectorstore import open_store

    cfg = settings()
    wanted = _parse_filters(filters or [])
    with open_store(cfg) as store:
        result = run(
            video,
            bundle_path=model_file(cfg.data_dir),
            store=store,
            prompt=prompt,
            n=n,
            filters=wanted,
            device=cfg.device,
            frame_precision=cfg.video_precision,
        )
    if as_json:
        echo_json(
            {
                "video": str(video),
                "prompt": prompt,
                "frames": result.frames,
                "seconds": result.seconds,
                "soundtrack": result.soundtrack,
                "truncated": result.truncated,
                "frame_encoder": result.frame_encoder,
                "timings": result.timings,
                "tracks": [t.__dict__ for t in result.tracks],
            }
        )
        return
    typer.echo(
        f"{video}: {result.frames} frames over {result.seconds:.0f} s; soundtrack: {result.soundtrack}"
    )
    typer.echo(f"{'rank':>4}  {'score':>6}  {'video':>6}  {'text':>6}  track")
    for rank, t in enumerate(result.tracks, 1):
        label = f"{t.payload.get('artist', '')} – {t.payload.get('title', '')}".strip(" –")
        typer.echo(f"{rank:>4}  {t.score:6.3f}  {t.video:6.3f}  {t.text:6.3f}  {t.track_id}  {label}")


@groups.evaluate_app.command("video-retrieval")
@translate_errors
def evaluate_video_retrieval(
    out: Annotated[
        Path | None, typer.Option("--json", help="Also write the metrics as JSON to this file.")
    ] = None,
    candidates: Annotated[
        int, typer.Option(help="Candidates per query (the true soundtrack among them).")
    ] = 100,
    ablation: Annotated[
        str, typer.Option(help="Comma-separated text-dropout rates to retrain and compare ('' for none).")
    ] = "0,0.5,0.9",
    epochs: Annotated[int, typer.Option(help="Epochs for each ablation model.")] = 40,
) -> None:
    """Recall@1/5/10 and median rank of the true soundtrack: video, text, video+text; text-dropout ablation."""
    # deferred: numpy
    from pipelines.evaluate.video_retrieval import ablation as run_ablation
    from recsys.evaluation.retrieval import retrieval_metrics, twin_metrics
    from recsys.models.trimodal_batches import load_features
    from recsys.models.trimodal_bundle import load_bundle, model_file
    from recsys.models.trimodal_training import TrainSettings

    cfg = settings()
    model_path = model_file(cfg.data_dir)
    bundle = load_bundle(model_path)
    train, test = load_features(model_path.with_name("features.npz"))
    count = min(candidates, len(test))
    result: dict[str, Any] = {
        "model": bundle.version,
        "retrieval": retrieval_metrics(bundle.model, test, count),
    }
    twins = twin_metrics(bundle.model, test)
    if twins is not None:
        result["twins"] = twins
    rates = [float(r) for r in ablation.split(",") if r.strip()]
    if rates:
        trained = bundle.model.config.text_dropout
        result["ablation"] = run_ablation(
            train,
            test,
            bundle.model.config,
            TrainSettings(epochs=epochs, device=cfg.device),
            [r for r in rates if r != trained],
            count,
        )
        if trained in rates:  # the model under evaluation is that variant: no need to train it again
            result["ablation"][f"text_dropout={trained:g}"] = {
                "retrieval": result["retrieval"],
                **({"twins": twins} if twins is not None else {}),
            }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
    _print_metrics(result)


def _print_metrics(result: dict[str, Any]) -> None:
    def rows(title: str, block: dict[str, Any]) -> None:
        typer.echo(title)
        for mode in ("video", "text", "video+text"):
            m = block[mode]
            recalls = "  ".join(f"{k} {v:.3f}" for k, v in m.items() if k.startswith("recall@"))
            typer.echo(f"  {mode:<10} {recalls}  median rank {m['median_rank']:.1f}")

    retrieval = result["retrieval"]
    rows(
        f"model {result['model']}: true soundtrack among {retrieval['candidates']} ({retrieval['queries']} queries)",
        retrieval,
    )
    if "twins" in result:
        rows(
            f"among its {result['twins']['pool'] - 1} music-only twins (video ambiguous by construction)",
            result["twins"],
        )
    for name, entry in result.get("ablation", {}).items():
        rows(f"ablation {name}", entry["retrieval"])
        if "twins" in entry:
            rows(f"ablation {name}, twins", entry["twins"])
