"""Continuation latency for 500 results: the learned ranker beside the fusion, in one run.

    python -m benchmarks.continuation --mpd ../shared/data/mpd_trimmed [--json OUT]
    python -m benchmarks.continuation --catalog sqlite:///data/catalog.db [--ranker MODEL_DIR]

Fits the candidate sources (ALS with 128 factors and BM25 weighting, item- and
playlist-kNN, title, popularity, the artist sources) on the whole catalog, and a ranker (fitted as `recsys train ranker` fits it, on
validation playlists carved out of the catalog, unless ``--ranker`` names a saved one).
Then single requests for 500 tracks (seeds: the first 1–25 tracks of a random catalog
playlist, and its title) go to each method in turn, request by request, so that the
machine's load weighs on all alike: popularity alone (the floor), the fusion, and the
ranker. Prints wall-clock and CPU-time p50/p99 per method and writes them as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from recsys.catalog.queries import playlist_entries, playlists_frame, tracks_frame
from recsys.collaborative.factorization import MFConfig
from recsys.collaborative.matrix import playlist_matrix
from recsys.evaluation.continuation import MethodsConfig
from recsys.evaluation.ranker import fit_all_sources
from recsys.recommend.continuation import ContinuationService
from recsys.recommend.diversify import TrackTable
from recsys.recommend.ranker import Ranker, RankerConfig, RankerStage


def services(
    engine: Engine, ranker_dir: Path | None, validation: int, folds: int
) -> dict[str, ContinuationService]:
    from pipelines.evaluate.continuation import train_rankers

    entries = playlist_entries(engine)
    playlists = playlists_frame(engine)
    tracks = TrackTable(tracks_frame(engine))
    als = MFConfig(kind="als", factors=128, iterations=15, alpha=3.0, weighting="bm25", device="cpu")
    config = MethodsConfig(als=als, validation=validation, folds=folds)
    start = time.perf_counter()
    fitted = fit_all_sources(playlist_matrix(entries), playlists, tracks, config)
    print(f"sources fitted in {time.perf_counter() - start:.1f} s")
    if ranker_dir is not None:
        ranker = Ranker.load(ranker_dir)
    else:
        start = time.perf_counter()
        rankers, _ = train_rankers(entries, playlists, tracks, [], {"ranker": RankerConfig()}, config, 0)
        ranker = rankers["ranker"]
        seconds = time.perf_counter() - start
        print(f"ranker fitted on {folds} fold(s) of {validation} validation playlists in {seconds:.1f} s")
    sources = list(fitted.sources.values())
    return {
        "popularity": ContinuationService([fitted.sources["popularity"]], tracks),
        "fusion": ContinuationService(sources, tracks, weights=config.hybrid_weights),
        "ranker": ContinuationService(
            sources, tracks, weights=config.hybrid_weights, ranker=RankerStage(ranker, fitted.features)
        ),
    }


def latency(engine: Engine, chosen: dict[str, ContinuationService], requests: int) -> dict[str, object]:
    entries = playlist_entries(engine)
    lists = dict(
        entries.sort("playlist_id", "position")
        .group_by("playlist_id", maintain_order=True)
        .agg("track_id")
        .iter_rows()
    )
    names = dict(playlists_frame(engine).select("playlist_id", "name").iter_rows())
    rng = np.random.default_rng(0)
    picks = rng.choice(sorted(lists), size=min(requests, len(lists)), replace=False)
    wall: dict[str, list[float]] = {m: [] for m in chosen}
    cpu: dict[str, list[float]] = {m: [] for m in chosen}
    for pid in picks:
        seeds = lists[pid][: int(rng.integers(1, 26))]
        for method, service in chosen.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            recs = service.recommend(seeds, names[pid], 500)
            wall[method].append((time.perf_counter() - start) * 1000)
            cpu[method].append((time.process_time() - start_cpu) * 1000)
            if len(recs) != 500:
                raise RuntimeError(f"{method}: {len(recs)} results for playlist {pid}, not 500")
    out: dict[str, object] = {"requests": len(picks)}
    for method in chosen:
        p50, p99 = (float(np.percentile(wall[method], q)) for q in (50, 99))
        c50, c99 = (float(np.percentile(cpu[method], q)) for q in (50, 99))
        print(
            f"{method:>10}: wall p50 {p50:.1f} ms, p99 {p99:.1f} ms; CPU p50 {c50:.1f} ms, p99 {c99:.1f} ms"
        )
        out[method] = {"p50_ms": p50, "p99_ms": p99, "cpu_p50_ms": c50, "cpu_p99_ms": c99}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", help="SQLAlchemy URL of a catalog holding the playlists")
    parser.add_argument("--mpd", type=Path, help="MPD folder to ingest into a temporary SQLite catalog")
    parser.add_argument("--ranker", type=Path, help="a saved ranker's folder (default: fit one here)")
    parser.add_argument(
        "--validation", type=int, default=500, help="validation playlists of the ranker fitted here"
    )
    parser.add_argument(
        "--folds",
        type=int,
        default=1,
        help="validation folds of the ranker fitted here (latency does not depend on it)",
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "continuation.json")
    args = parser.parse_args()
    if not (args.catalog or args.mpd):
        parser.error("give --catalog URL or --mpd FOLDER")

    from recsys.catalog import db

    result: dict[str, object] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load": os.getloadavg()},
    }
    with tempfile.TemporaryDirectory() as tmp:
        engine = db.make_engine(args.catalog or f"sqlite:///{tmp}/catalog.db")
        if args.mpd:
            from pipelines.ingest.mpd import ingest_mpd

            db.upgrade(engine)
            print(ingest_mpd(engine, [args.mpd]).summary())
        chosen = services(engine, args.ranker, args.validation, args.folds)
        result["latency"] = latency(engine, chosen, args.requests)
        engine.dispose()
    result["machine"]["load_after"] = os.getloadavg()  # type: ignore[index]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
