"""Vector store benchmark: Qdrant Edge (the embedded default) beside raw Qdrant Edge and
qdrant-client local mode.

For each data set (clustered, like real embeddings, and isotropic random) it measures
upsert throughput, index build time, single-query latency (p50/p99) with and without a
payload filter, and recall@10 against exact (brute-force) search. Two baselines, in
the same run:

* raw Qdrant Edge: the very version the store serves, opened with ``qdrant_edge`` and
  queried without the store (same search settings, same filter, same queries), in
  turns with the store's passes; ``wrapper_over_raw`` (store p50 / raw p50) is the
  store's overhead;
* qdrant-client's local mode, at ``--baseline-points`` (20,000 by default, its
  documented ceiling) on a prefix of the same data with the same queries
  (``--no-local-baseline`` skips it).

    python -m benchmarks.vectorstore                       # 100,000 × 768, writes benchmarks/results/vectorstore.json
    python -m benchmarks.vectorstore --data clustered --runs 5 --no-local-baseline
    python -m benchmarks.vectorstore --points 20000 --dim 128 --queries 100 --json /tmp/small.json

``--runs N`` repeats the timed passes N times over the same build and reports every
run, their median and the load average of each. Each timed pass follows as many
warm-up queries of the same kind (other held-out points), so the timed queries meet
the store as a serving process does; the warm-up latencies of the first run are
reported too, as ``cold``.

The filtered query asks for one genre (20 genres, one or two per point) and a year range
(30 of the 75 years), which keeps roughly 3 % of the points.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

from recsys.vectorstore import (
    CollectionSpec,
    FieldType,
    Filter,
    Match,
    Point,
    Range,
    VectorSpec,
    VectorStore,
)
from recsys.vectorstore.client import ClientStore
from recsys.vectorstore.edge import EdgeSearchSettings, EdgeStore

RESULTS = Path(__file__).resolve().parent / "results" / "vectorstore.json"
GENRES = [f"g{i:02d}" for i in range(20)]
NAME = "bench"


def make_data(kind: str, n: int, dim: int, n_queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points and ``n_queries`` held-out queries, float32, unit-normalised.

    clustered: 1,000 clusters of uneven size whose centres lie in a 64-d subspace, with
    per-cluster spread, plus a little isotropic noise (real embeddings look like this:
    low intrinsic dimension, uneven density). isotropic: standard normal in all ``dim``.
    """
    rng = np.random.default_rng(seed)
    total = n + n_queries
    if kind == "isotropic":
        x = rng.standard_normal((total, dim), dtype=np.float32)
    else:
        basis = np.linalg.qr(rng.standard_normal((dim, 64)))[0].astype(np.float32)  # (dim, 64)
        centres = rng.standard_normal((1000, 64)).astype(np.float32) @ basis.T  # (1000, dim)
        weights = rng.pareto(1.5, 1000) + 1.0
        labels = rng.choice(1000, size=total, p=weights / weights.sum())
        spread = rng.uniform(0.2, 0.6, 1000).astype(np.float32)[labels, None]
        local = rng.standard_normal((total, 64), dtype=np.float32) @ basis.T  # (total, dim)
        x = centres[labels] + spread * local + 0.05 * rng.standard_normal((total, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x[:n], x[n:]


def make_payloads(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    return {
        "artist": rng.integers(0, 5000, n),
        "year": rng.integers(1950, 2025, n),
        "genre1": rng.integers(0, 20, n),
        "genre2": np.where(rng.random(n) < 0.5, rng.integers(0, 20, n), -1),
        "duration_ms": rng.integers(60_000, 600_000, n),
    }


def payload(p: dict[str, np.ndarray], i: int) -> dict[str, Any]:
    genres = [GENRES[p["genre1"][i]]]
    if p["genre2"][i] >= 0 and p["genre2"][i] != p["genre1"][i]:
        genres.append(GENRES[p["genre2"][i]])
    return {
        "track_id": i,
        "artist": f"artist {p['artist'][i]}",
        "year": int(p["year"][i]),
        "genres": genres,
        "duration_ms": int(p["duration_ms"][i]),
    }


def filter_mask(p: dict[str, np.ndarray], genre: int, n: int) -> np.ndarray:
    year = p["year"][:n]
    return ((p["genre1"][:n] == genre) | (p["genre2"][:n] == genre)) & (year >= 1990) & (year < 2020)


def exact_top(x: np.ndarray, queries: np.ndarray, k: int, masks: list[np.ndarray] | None) -> list[set[int]]:
    """Ids of the exact top ``k`` by cosine (vectors are unit-normalised), optionally within masks."""
    out = []
    for qi, q in enumerate(queries):
        scores = x @ q  # (n,)
        if masks is not None:
            scores = np.where(masks[qi], scores, -np.inf)
        top = np.argpartition(-scores, k)[:k]
        out.append({int(i) for i in top if np.isfinite(scores[i])})
    return out


def spec(dim: int) -> CollectionSpec:
    return CollectionSpec(
        NAME,
        (VectorSpec("audio", dim),),
        {
            "artist": FieldType.KEYWORD,
            "year": FieldType.INTEGER,
            "genres": FieldType.KEYWORD,
            "duration_ms": FieldType.INTEGER,
        },
    )


def points(x: np.ndarray, p: dict[str, np.ndarray]) -> Iterator[Point]:
    for i in range(len(x)):
        yield Point(i, {"audio": x[i]}, payload(p, i))


def build(store: VectorStore, x: np.ndarray, p: dict[str, np.ndarray], batch: int) -> dict[str, float]:
    """Write a version through the store's rebuild steps, timing the writes and the indexing apart."""
    s = spec(x.shape[1])
    version = store._create_version(s)  # the steps of VectorStore.rebuild, timed one by one
    started = time.perf_counter()
    chunk: list[Point] = []
    for point in points(x, p):
        chunk.append(point)
        if len(chunk) == batch:
            store._write_version(NAME, version, chunk)
            chunk = []
    if chunk:
        store._write_version(NAME, version, chunk)
    upsert_s = time.perf_counter() - started
    started = time.perf_counter()
    store._seal_version(NAME, version)
    index_s = time.perf_counter() - started
    store._publish_version(NAME, version)
    return {"upsert_s": upsert_s, "upsert_points_per_s": len(x) / upsert_s, "index_build_s": index_s}


def interleaved_queries(
    runs: list[Callable[[int], list[int]]],
    n: int,
    warmups: list[Callable[[int], list[int]]],
    n_warmup: int,
) -> list[tuple[list[float], list[list[int]], list[float]]]:
    """Latencies and answers of ``n`` queries on each path, after ``n_warmup`` other queries.

    The warm-up queries are distinct from the timed ones, so the timed pass finds the
    store as a serving process finds it after a while (its pages in memory), not the
    answers of the same queries cached. The warm-up latencies are returned as well
    (``cold``: in the first run, the first queries after the index was built).

    Path ``p`` asks query ``(i + p·n/len(runs)) mod n`` at step ``i``, so every path asks
    every query once, neighbours in time never ask the same one (no path finds the
    previous one's pages of that query in the cache), and a burst of load from other
    processes falls on all paths alike. The order of the paths within a step alternates.
    """
    paths = len(runs)
    cold: list[list[float]] = [[] for _ in runs]
    latencies: list[list[float]] = [[0.0] * n for _ in runs]
    answers: list[list[list[int]]] = [[[] for _ in range(n)] for _ in runs]
    for steps, fns, timed in ((n_warmup, warmups, False), (n, runs, True)):
        for i in range(steps):
            order = range(paths) if i % 2 == 0 else range(paths - 1, -1, -1)
            for p in order:
                q = (i + p * steps // paths) % steps
                started = time.perf_counter()
                answer = fns[p](q)
                elapsed = (time.perf_counter() - started) * 1000.0
                if timed:
                    latencies[p][q], answers[p][q] = elapsed, answer
                else:
                    cold[p].append(elapsed)
    return [(latencies[p], answers[p], cold[p]) for p in range(paths)]


def recall(answers: list[list[int]], truth: list[set[int]], k: int) -> float:
    hits = [len(set(a[:k]) & t) / max(min(k, len(t)), 1) for a, t in zip(answers, truth, strict=True)]
    return float(np.mean(hits))


class RawEdge:
    """The version the store serves, opened and queried with ``qdrant_edge`` alone: no wrapper.

    It reads a private hard-linked copy of the published version's directory (a shard
    directory admits one open shard, so every reader of the store does the same) with the
    store's search settings spelt out in Qdrant Edge's own types, filters built once per
    genre, and neither payloads nor vectors asked for.
    """

    def __init__(self, store: EdgeStore, scratch: Path):
        version = store.current_version(NAME)
        assert version is not None
        self.path = scratch / f"raw-{NAME}-v{version}"
        shutil.copytree(store.dirs.version_dir(NAME, version), self.path, copy_function=os.link)
        self.shard = qe.EdgeShard.load(str(self.path))
        s = store.search_settings
        quantization = (
            qe.QuantizationSearchParams(rescore=True, oversampling=s.oversampling) if s.quantize else None
        )
        self.params = qe.SearchParams(hnsw_ef=s.hnsw_ef, quantization=quantization)
        years = qe.FieldCondition("year", range=qe.RangeFloat(gte=1990, lt=2020))
        # The conditions in the order the store sends them (numbers before strings).
        self.filters = [
            qe.Filter(must=[years, qe.FieldCondition("genres", match=qe.MatchValue(g))]) for g in GENRES
        ]

    def segments(self) -> int:
        return int(self.shard.info().segments_count)

    def search(self, vector: np.ndarray, genre: int | None, k: int) -> list[int]:
        request = qe.QueryRequest(
            query=qe.Query.Nearest(vector.tolist(), using="audio"),
            filter=None if genre is None else self.filters[genre],
            limit=k,
            params=self.params,
            with_payload=False,
            with_vector=False,
        )
        return [int(p.id) for p in self.shard.query(request)]  # type: ignore[arg-type]

    def close(self) -> None:
        self.shard.close()
        shutil.rmtree(self.path, ignore_errors=True)


def summary(
    lat: list[float], answers: list[list[int]], want: list[set[int]], cold: list[float], k: int
) -> dict[str, Any]:
    return {
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "mean_ms": float(np.mean(lat)),
        f"recall@{k}": recall(answers, want, k),
        "cold_p50_ms": float(np.percentile(cold, 50)) if cold else None,
        "cold_p99_ms": float(np.percentile(cold, 99)) if cold else None,
    }


def over_runs(runs: list[dict[str, Any]], k: int) -> dict[str, Any]:
    """The median over runs of each figure, and each figure's value in every run."""
    keys = ["p50_ms", "p99_ms", "mean_ms", f"recall@{k}"]
    out: dict[str, Any] = {key: float(np.median([r[key] for r in runs])) for key in keys}
    out["cold_p50_ms"], out["cold_p99_ms"] = runs[0]["cold_p50_ms"], runs[0]["cold_p99_ms"]
    out["runs"] = runs
    return out


def measure(
    store: VectorStore,
    x: np.ndarray,
    queries: np.ndarray,
    warm: np.ndarray,
    p: dict[str, np.ndarray],
    args: argparse.Namespace,
    *,
    runs: int = 1,
    scratch: Path | None = None,
) -> dict[str, Any]:
    """Build, then ``runs`` runs of timed query passes; beside an Edge store, the same queries
    on :class:`RawEdge` in the same passes, in turns with the store's (:func:`interleaved_queries`)."""
    n, k = len(x), 10
    result: dict[str, Any] = {"points": n, "dim": x.shape[1], "queries": len(queries), "warmup": len(warm)}
    result.update(build(store, x, p, args.batch))
    genres = np.random.default_rng(args.seed + 2).integers(0, 20, len(queries) + len(warm))
    masks = [filter_mask(p, int(g), n) for g in genres[: len(queries)]]
    result["filtered_fraction"] = float(np.mean([m.mean() for m in masks]))
    truth = exact_top(x, queries, k, None)
    truth_f = exact_top(x, queries, k, masks)
    raw = RawEdge(store, scratch) if isinstance(store, EdgeStore) and scratch is not None else None
    if raw is not None:
        result["segments"] = raw.segments()

    def plain(qs: np.ndarray) -> Callable[[int], list[int]]:
        return lambda i: [
            int(h.id) for h in store.search(NAME, qs[i], using="audio", limit=k, with_payload=False)
        ]

    def filtered(qs: np.ndarray, gs: np.ndarray) -> Callable[[int], list[int]]:
        def run(i: int) -> list[int]:
            flt = Filter.where(Match("genres", GENRES[gs[i]]), Range("year", gte=1990, lt=2020))
            hits = store.search(NAME, qs[i], using="audio", filter=flt, limit=k, with_payload=False)
            return [int(h.id) for h in hits]

        return run

    def raw_plain(qs: np.ndarray) -> Callable[[int], list[int]]:
        assert raw is not None
        return lambda i: raw.search(qs[i], None, k)

    def raw_filtered(qs: np.ndarray, gs: np.ndarray) -> Callable[[int], list[int]]:
        assert raw is not None
        return lambda i: raw.search(qs[i], int(gs[i]), k)

    warm_genres = genres[len(queries) :]
    kinds = {
        "unfiltered": (plain(queries), plain(warm), truth),
        "filtered": (filtered(queries, genres), filtered(warm, warm_genres), truth_f),
    }
    raw_kinds = (
        {
            "unfiltered": (raw_plain(queries), raw_plain(warm)),
            "filtered": (raw_filtered(queries, genres), raw_filtered(warm, warm_genres)),
        }
        if raw is not None
        else {}
    )
    per_run: dict[str, dict[str, list[dict[str, Any]]]] = {"wrapper": {}, "raw": {}}
    try:
        for _ in range(runs):
            for label, (fn, warm_fn, want) in kinds.items():
                paths = [("wrapper", fn, warm_fn)]
                if raw is not None:
                    raw_fn, raw_warm = raw_kinds[label]
                    paths.append(("raw", raw_fn, raw_warm))
                gc.collect()  # each pass starts from the same heap, not from the last one's garbage
                passes = interleaved_queries(
                    [run_fn for _, run_fn, _ in paths], len(queries), [w for _, _, w in paths], len(warm)
                )
                for (path, _, _), (lat, answers, cold) in zip(paths, passes, strict=True):
                    figures = summary(lat, answers, want, cold, k)
                    figures["load_average"] = list(os.getloadavg())
                    per_run[path].setdefault(label, []).append(figures)
    finally:
        if raw is not None:
            raw.close()
    for label, run_figures in per_run["wrapper"].items():
        result[label] = over_runs(run_figures, k)
    if raw is not None:
        result["raw_edge"] = {label: over_runs(f, k) for label, f in per_run["raw"].items()}
        ratios: dict[str, Any] = {}
        for label in kinds:
            each = [
                w["p50_ms"] / r_["p50_ms"]
                for w, r_ in zip(per_run["wrapper"][label], per_run["raw"][label], strict=True)
            ]
            ratios[label] = {"p50_ratio": float(np.median(each)), "p50_ratio_runs": each}
        result["wrapper_over_raw"] = ratios
    return result


def run_dataset(kind: str, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    x, all_queries = make_data(kind, args.points, args.dim, 2 * args.queries, args.seed)
    queries, warm = all_queries[: args.queries], all_queries[args.queries :]
    p = make_payloads(args.points, args.seed)
    out: dict[str, Any] = {}
    settings = EdgeSearchSettings(hnsw_ef=args.hnsw_ef)
    edge = EdgeStore(scratch / f"edge-{kind}", search=settings)
    print(f"[{kind}] Qdrant Edge: {args.points:,} × {args.dim}, {args.runs} run(s) …", flush=True)
    out["edge"] = measure(edge, x, queries, warm, p, args, runs=args.runs, scratch=scratch)
    edge.close()
    shutil.rmtree(scratch / f"edge-{kind}", ignore_errors=True)
    report(kind, "edge", out["edge"])
    if args.local_baseline:
        base_n = min(args.baseline_points, args.points)
        local = ClientStore(":memory:")
        print(f"[{kind}] qdrant-client local mode: {base_n:,} × {args.dim} …", flush=True)
        nb = args.baseline_queries
        out["client_local"] = measure(local, x[:base_n], queries[:nb], warm[:nb], p, args)
        local.close()
        report(kind, "client_local", out["client_local"])
    return out


def line(name: str, f: dict[str, Any]) -> str:
    return f"{name} p50 {f['p50_ms']:.2f} p99 {f['p99_ms']:.2f} ms recall {f['recall@10']:.3f}"


def report(kind: str, backend: str, r: dict[str, Any]) -> None:
    u, f = r["unfiltered"], r["filtered"]
    segments = f"  {r['segments']} segment(s)" if "segments" in r else ""
    print(
        f"  {kind:<9} {backend:<12} {r['points']:>7,} pts  upsert {r['upsert_points_per_s']:>8,.0f} pts/s  "
        f"index {r['index_build_s']:>6.1f} s{segments}  (cold: p50 {u['cold_p50_ms']:.2f} / {f['cold_p50_ms']:.2f} ms)",
        flush=True,
    )
    raw = r.get("raw_edge")
    for i in range(len(f["runs"])):
        text = f"    run {i + 1}: {line('unfiltered', u['runs'][i])}  {line('filtered', f['runs'][i])}"
        if raw is not None:
            ratio = r["wrapper_over_raw"]
            text += (
                f"  | raw Edge: {line('unfiltered', raw['unfiltered']['runs'][i])}  "
                f"{line('filtered', raw['filtered']['runs'][i])}  | wrapper/raw p50 "
                f"{ratio['unfiltered']['p50_ratio_runs'][i]:.2f} / {ratio['filtered']['p50_ratio_runs'][i]:.2f}"
            )
        text += f"  (load {f['runs'][i]['load_average'][0]:.2f})"
        print(text, flush=True)
    if len(f["runs"]) > 1:
        print(
            f"    median of {len(f['runs'])} runs: {line('unfiltered', u)}  {line('filtered', f)}", flush=True
        )
    if raw is not None:
        ratio = r["wrapper_over_raw"]
        print(
            f"    wrapper / raw Edge p50 (median over runs): unfiltered {ratio['unfiltered']['p50_ratio']:.3f}, "
            f"filtered {ratio['filtered']['p50_ratio']:.3f}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument(
        "--runs", type=int, default=1, help="Timed query passes over the same build (each after a warm-up)."
    )
    parser.add_argument(
        "--local-baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Measure qdrant-client local mode too (about a minute per data set).",
    )
    parser.add_argument("--baseline-points", type=int, default=20_000)
    parser.add_argument("--baseline-queries", type=int, default=100)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--hnsw-ef", type=int, default=EdgeSearchSettings().hnsw_ef)
    parser.add_argument("--data", default="clustered,isotropic")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--scratch", type=Path, default=None, help="Directory for the Edge shards (default: a temp dir)."
    )
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="recsys-bench-", dir=args.scratch))
    settings = EdgeSearchSettings(hnsw_ef=args.hnsw_ef)
    results: dict[str, Any] = {
        "benchmark": "vectorstore",
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_start": list(os.getloadavg()),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "edge_settings": {**settings.__dict__, "full_scan_kb": settings.full_scan_kb},
        "args": {k: str(v) for k, v in vars(args).items()},
        "datasets": {},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    try:
        for kind in args.data.split(","):
            results["datasets"][kind] = run_dataset(kind, args, scratch)
            results["machine"]["load_average_at_end"] = list(os.getloadavg())
            args.json.write_text(
                json.dumps(results, indent=2)
            )  # after each data set: a long run keeps its figures
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
