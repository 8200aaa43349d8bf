"""The demo's main job: ``recsys demo`` builds everything from generated data.

The platform ships no third-party data; ``recsys demo`` generates all of it (the catalog
of :mod:`pipelines.demo.catalog`, demo audio, the synthetic video–music set), ingests it,
embeds it, trains on it and prints the catalog statistics.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import Engine

from pipelines.demo.catalog import DemoConfig, generate_mpd
from pipelines.evaluate.continuation import evaluate_continuation
from pipelines.ingest.mpd import ingest_mpd
from pipelines.ingest.report import Progress
from pipelines.nightly.config import NightlyConfig, default_path_in, to_toml
from pipelines.train.als import train_factorization
from pipelines.train.trimodal import TrainSettings, run_training
from recsys.catalog.queries import catalog_stats
from recsys.collaborative.factorization import MFConfig
from recsys.config import Settings
from recsys.embedders.dsp_audio import DspAudioEmbedder
from recsys.errors import ConfigError
from recsys.evaluation.reports import write_report
from recsys.models.trimodal_bundle import FeatureSpec, load_bundle, model_file
from recsys.vectorstore import open_store
from recsys.vectorstore.collections import PLAYLISTS

# The defaults of `recsys train als`.
DEMO_ALS = MFConfig(kind="als", factors=64, iterations=15, regularization=0.05, alpha=10.0, seed=7)


@dataclass(frozen=True)
class DemoPlan:
    """What ``recsys demo`` builds: a playlist catalog, its ALS model, demo audio, and the video–music set."""

    catalog: DemoConfig = field(default_factory=DemoConfig)
    als: MFConfig | None = DEMO_ALS  # None skips training ALS
    audio_clips_per_style: int = 4  # 0 skips demo audio
    video_clips: int = 300  # 0 skips the video–music model
    video_epochs: int = 30
    evaluation_playlists: int = 100  # held out for the continuation report; 0 skips it


def run_demo(
    settings: Settings, engine: Engine, plan: DemoPlan, *, echo: Callable[[str], None]
) -> dict[str, int]:
    """The main job on embedded defaults, every stage through the same library calls as its own command.

    1. generate MPD slices and ingest them (``recsys ingest mpd``), and train ALS on them
       (``recsys train als``) unless a model of the same settings was trained on the same
       playlists already, so that ``recsys recommend continue`` works at once; embed the
       playlists with SIF (``recsys embed playlists --model sif``) for similar playlists,
       and score continuation on held-out playlists once (``recsys evaluate continuation``,
       the report under ``<data dir>/reports``);
    2. generate synthetic clips in four styles, add them as tracks with audio and embed them
       with the weight-free DSP encoder into the vector store (``recsys embed demo-audio``);
    3. generate the synthetic video–music set, add its music to the catalog, train the
       trimodal model on it (its held-out retrieval report under ``<data dir>/reports``) and
       index its music (``recsys demo-video``, ``train trimodal``, ``embed music``).

    Each stage is idempotent, so re-running the job changes nothing. Returns the catalog counts.
    """
    data_dir = settings.ensure_data_dir()
    out = data_dir / "demo" / "mpd"
    paths = generate_mpd(out, plan.catalog)
    echo(f"demo catalog: {len(paths)} MPD slice(s) in {out}")
    echo(ingest_mpd(engine, [out], batch_rows=settings.batch_rows, progress=Progress.auto()).summary())
    if plan.als is not None:
        _demo_als(settings, engine, data_dir, plan.als, echo)
    _demo_playlist_vectors(settings, engine, echo)
    if plan.als is not None and plan.evaluation_playlists > 0:
        _demo_evaluation(engine, data_dir, plan, echo)
    if plan.audio_clips_per_style > 0:
        _demo_audio(settings, engine, data_dir, plan, echo)
    if plan.video_clips > 0:
        _demo_video(settings, engine, data_dir, plan, echo)
    write_nightly_config(data_dir, out, plan, echo)
    with engine.connect() as conn:
        counts = catalog_stats(conn)
    echo("catalog: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    return counts


def _demo_als(
    settings: Settings, engine: Engine, data_dir: Path, config: MFConfig, echo: Callable[[str], None]
) -> None:
    saved = train_factorization(
        engine, data_dir / "models", replace(config, device=settings.device), reuse=True
    )
    if saved.reused:
        echo(f"als model {saved.version}: already trained on these playlists ({saved.path})")
    else:
        m = saved.metrics
        echo(
            f"als model {saved.version}: trained on {m['rows']:,} playlists × {m['items']:,} tracks "
            f"in {m['fit_seconds']:.1f} s → {saved.path}"
        )


def _demo_playlist_vectors(settings: Settings, engine: Engine, echo: Callable[[str], None]) -> None:
    """SIF vectors of every playlist and track (``recsys embed playlists --model sif``), for
    similar playlists and the map; skipped when the store already holds one per playlist."""
    # deferred: torch, lightning, transformers
    from pipelines.embed.playlists import embed_catalog

    with engine.connect() as conn:
        playlists = catalog_stats(conn)["playlists"]
    with open_store(settings) as store:
        held = store.count(PLAYLISTS, vector="sif") if store.has_collection(PLAYLISTS) else 0
    if held == playlists:
        echo(f"playlist vectors: sif for all {playlists:,} playlists already in the vector store")
        return
    summary = embed_catalog(engine, settings, "sif")
    echo(f"playlist vectors: sif for {summary['playlists']:,} playlists and {summary['tracks']:,} tracks")


def _demo_evaluation(engine: Engine, data_dir: Path, plan: DemoPlan, echo: Callable[[str], None]) -> None:
    """A small continuation evaluation (``recsys evaluate continuation``) under
    ``<data dir>/reports``, once, for the UI's evaluation page."""

    path = data_dir / "reports" / "continuation.json"
    if path.is_file():
        echo(f"continuation evaluation: kept {path}")
        return
    report = evaluate_continuation(
        engine,
        methods="popularity,knn,als,hybrid",
        test_playlists=plan.evaluation_playlists,
        n=100,
        seed=plan.catalog.seed,
    )
    write_report(report, path)
    hybrid = report["results"]["hybrid"]["overall"]
    echo(
        f"continuation evaluation: {report['test_playlists']} held-out playlists, hybrid "
        f"R-precision {hybrid['r_precision']:.3f}, NDCG {hybrid['ndcg']:.3f} → {path}"
    )


def write_nightly_config(data_dir: Path, slices: Path, plan: DemoPlan, echo: Callable[[str], None]) -> None:
    """``<data dir>/nightly.toml`` for ``recsys nightly`` over the demo's own sources (a file
    already there is the user's and is kept)."""
    path = default_path_in(data_dir)
    if path.is_file():
        echo(f"nightly pipeline: kept {path}")
        return
    als = plan.als or DEMO_ALS
    config = NightlyConfig.model_validate(
        {
            "sources": {"mpd": [slices.resolve()]},  # demo audio and music are registered, not walked
            "encoders": {
                "audio": ["dsp"] if plan.audio_clips_per_style > 0 else [],
                "music": plan.video_clips > 0,
            },
            "als": {
                "factors": als.factors,
                "iterations": als.iterations,
                "regularization": als.regularization,
                "alpha": als.alpha,
                "seed": als.seed,
            },
        }
    )
    path.write_text(to_toml(config))
    echo(f"nightly pipeline: {path} (run it with `recsys nightly`)")


def _write_json(path: Path, payload: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str))


def _demo_audio(
    settings: Settings, engine: Engine, data_dir: Path, plan: DemoPlan, echo: Callable[[str], None]
) -> None:
    # deferred: soundfile
    from pipelines.demo.audio import DemoAudioConfig, generate_demo_audio, register_demo_audio
    from pipelines.embed.audio import embed_audio

    out = data_dir / "demo" / "audio"
    clips = generate_demo_audio(out, DemoAudioConfig(clips_per_style=plan.audio_clips_per_style))
    register_demo_audio(engine, clips)
    with open_store(settings) as store:
        report = embed_audio(
            engine, store, DspAudioEmbedder(), batch_size=settings.audio_batch_size, progress=Progress.auto()
        )
    echo(f"demo audio: {len(clips)} clip(s) in {out}; {report.summary()}")


def _demo_video(
    settings: Settings, engine: Engine, data_dir: Path, plan: DemoPlan, echo: Callable[[str], None]
) -> None:
    # deferred: av, soundfile
    from pipelines.demo.video import SynthConfig, generate
    from pipelines.embed.music import embed_music, register_synthetic_music

    out = data_dir / "demo" / "video"
    rows = generate(out, SynthConfig(clips=plan.video_clips))
    added = register_synthetic_music(engine, out, rows)
    echo(f"demo video: {len(rows)} synthetic clip(s) in {out}; {added} new catalog track(s) with audio")
    model_path = model_file(data_dir)
    spec = FeatureSpec()
    if not model_path.is_file():
        report = run_training(
            out,
            model_path,
            spec=spec,
            settings=TrainSettings(epochs=plan.video_epochs, device=settings.device),
            cache=model_path.parent / "cache" / spec.key(),
        )
        if report is None:  # a rank other than 0 of a multi-process run: the demo trains in one process
            raise ConfigError("recsys demo runs in one process: unset RANK, NODE_RANK and LOCAL_RANK")
        _write_json(data_dir / "reports" / "video_retrieval.json", report.as_dict())
        retrieval = report.metrics.get("retrieval", {}).get("video+text", {})
        echo(
            f"trimodal model trained on {report.train} clips in {report.seconds['train']:.0f} s; "
            f"held-out video+text Recall@10 {retrieval.get('recall@10', float('nan')):.3f}"
        )
    with open_store(settings) as store:
        echo(embed_music(engine, load_bundle(model_path), model_path, store).summary())
