"""ALS wrapper overhead against raw implicit, and continuation latency over a real catalog.

    python -m benchmarks.als --mpd ../shared/data/mpd_trimmed [--json OUT]
    python -m benchmarks.als --catalog sqlite:///data/catalog.db

Part 1 fits the project's ALS wrapper (``MatrixFactorization``) and raw
``implicit.cpu.als.AlternatingLeastSquares`` on the same synthetic matrix (power-law item
popularity, at least 1M non-zeros), alternating, with BLAS limited to one thread for both
(the wrapper's setting); raw implicit with BLAS threads left alone is printed too. Part 2
trains on the whole catalog and times single continuation requests for 500 tracks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import sparse
from threadpoolctl import threadpool_limits

from recsys.collaborative.factorization import MatrixFactorization, MFConfig
from recsys.collaborative.matrix import InteractionMatrix, ItemMap

CONFIG = MFConfig(
    kind="als", factors=64, iterations=15, regularization=0.05, alpha=10.0, seed=7, device="cpu"
)


def synthetic(rows: int, items: int, nnz: int, seed: int = 0) -> InteractionMatrix:
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, items + 1) ** 0.8
    cols = rng.choice(items, size=nnz, p=popularity / popularity.sum())
    rws = rng.integers(0, rows, size=nnz)
    m = sparse.csr_matrix((np.ones(nnz, dtype=np.float32), (rws, cols)), shape=(rows, items))
    m.data[:] = 1.0  # duplicates summed: back to binary
    m.sort_indices()
    return InteractionMatrix(m, np.arange(rows), ItemMap(np.arange(items, dtype=np.int64)))


def raw_fit(matrix: InteractionMatrix, limit_blas: bool) -> float:
    from implicit.cpu.als import AlternatingLeastSquares

    start = time.perf_counter()
    if limit_blas:
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=CONFIG.factors,
                regularization=CONFIG.regularization,
                alpha=CONFIG.alpha,
                iterations=CONFIG.iterations,
                random_state=CONFIG.seed,
            )
            model.fit(matrix.matrix, show_progress=False)
    else:
        model = AlternatingLeastSquares(
            factors=CONFIG.factors,
            regularization=CONFIG.regularization,
            alpha=CONFIG.alpha,
            iterations=CONFIG.iterations,
            random_state=CONFIG.seed,
        )
        model.fit(matrix.matrix, show_progress=False)
    return time.perf_counter() - start


def wrapper_fit(matrix: InteractionMatrix) -> float:
    start = time.perf_counter()
    MatrixFactorization(CONFIG).fit(matrix)
    return time.perf_counter() - start


def fit_overhead(repeats: int, rows: int, items: int, nnz: int) -> dict[str, object]:
    matrix = synthetic(rows, items, nnz)
    print(f"matrix {matrix.shape[0]:,} × {matrix.shape[1]:,}, {matrix.nnz:,} non-zeros; {CONFIG}")
    raw, wrapped = [], []
    for i in range(repeats):
        raw.append(raw_fit(matrix, limit_blas=True))
        wrapped.append(wrapper_fit(matrix))
        print(f"  round {i + 1}: raw implicit {raw[-1]:.2f} s, wrapper {wrapped[-1]:.2f} s")
    unlimited = raw_fit(matrix, limit_blas=False)
    raw_med, wrap_med = statistics.median(raw), statistics.median(wrapped)
    overhead = wrap_med / raw_med - 1.0
    print(f"fit: raw implicit {raw_med:.2f} s, wrapper {wrap_med:.2f} s → overhead {overhead:+.1%}")
    print(f"     raw implicit without the BLAS limit: {unlimited:.2f} s")
    return {
        "shape": list(matrix.shape),
        "nnz": matrix.nnz,
        "raw_implicit_s": raw,
        "wrapper_s": wrapped,
        "raw_median_s": raw_med,
        "wrapper_median_s": wrap_med,
        "overhead": overhead,
        "raw_implicit_unlimited_blas_s": unlimited,
    }


def latency(engine, requests: int, iterations: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    from recsys.catalog.queries import playlist_entries, playlists_frame, tracks_frame
    from recsys.collaborative.matrix import playlist_matrix
    from recsys.evaluation.continuation import MethodsConfig, build_methods, fit_sources
    from recsys.recommend.diversify import TrackTable

    entries = playlist_entries(engine)
    playlists = playlists_frame(engine)
    matrix = playlist_matrix(entries)
    config = MethodsConfig(als=MFConfig(kind="als", factors=64, iterations=iterations, alpha=10.0))
    sources, _ = fit_sources(matrix, playlists, ["als", "knn", "title", "popularity"], config)
    tracks = TrackTable(tracks_frame(engine))
    services = build_methods(sources, tracks, ["als", "knn", "hybrid"], config)
    lists = dict(entries.group_by("playlist_id").agg("track_id").iter_rows())
    names = dict(playlists.select("playlist_id", "name").iter_rows())
    rng = np.random.default_rng(0)
    picks = rng.choice(sorted(lists), size=requests, replace=False)
    out: dict[str, object] = {"catalog_tracks": len(tracks), "catalog_items_in_matrix": matrix.shape[1]}
    for method, service in services.items():
        times = []
        for pid in picks:
            seeds = lists[pid][: int(rng.integers(1, 26))]
            start = time.perf_counter()
            recs = service.recommend(seeds, names[pid], 500)
            times.append((time.perf_counter() - start) * 1000)
            assert len(recs) == 500
        p50, p99 = float(np.percentile(times, 50)), float(np.percentile(times, 99))
        print(f"continuation {method:>7}: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({requests} requests of 500)")
        out[method] = {"p50_ms": p50, "p99_ms": p99}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", help="SQLAlchemy URL of a catalog holding the playlists")
    parser.add_argument("--mpd", type=Path, help="MPD folder to ingest into a temporary SQLite catalog")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--nnz", type=int, default=1_300_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--iterations", type=int, default=15, help="ALS iterations for the latency part")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "als.json")
    args = parser.parse_args()

    from recsys.catalog import db

    result: dict[str, object] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load": os.getloadavg()},
        "fit": fit_overhead(args.repeats, args.rows, args.items, args.nnz),
    }
    if args.catalog or args.mpd:
        with tempfile.TemporaryDirectory() as tmp:
            url = args.catalog or f"sqlite:///{tmp}/catalog.db"
            engine = db.make_engine(url)
            if args.mpd:
                from pipelines.ingest.mpd import ingest_mpd

                db.upgrade(engine)
                print(ingest_mpd(engine, [args.mpd]).summary())
            result["latency"] = latency(engine, args.requests, args.iterations)
            engine.dispose()
    result["machine"]["load_after"] = os.getloadavg()  # type: ignore[index]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
