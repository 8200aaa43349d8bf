"""The HTTP API under load on 127.0.0.1, beside the same library calls made directly.

    python -m benchmarks.api_load [--data-dir DIR] [--duration 60] [--clients 50] [--think-ms 0]
                                  [--max-requests 200000] [--json docs/evaluation/benchmark_api.json]

Without ``--data-dir`` it builds the trimmed-MPD catalog in a scratch dir as the UI
benchmark does (``benchmarks.ui.build_catalog``: ingest, ALS, SIF and mean-ALS vectors,
so that tracks hold ``cf`` vectors). Then, in one run:

1. **Direct calls** (the baseline, in this process): the continuation of sample playlists
   (``playlist_seeds`` + ``ContinuationService.recommend``, 25 tracks) and similar tracks
   of sample tracks (``similar_tracks`` by ``cf``, 10), one after another, each timed.
2. **The server**: ``recsys serve`` (one worker) on a free port of 127.0.0.1, with a key
   made for the run (its rate limit on but set far above what the run offers, so that
   the key check and the limiter are measured without refusing anything).
3. **One client**: the same requests as the direct calls, one at a time over HTTP: the
   HTTP overhead as a ratio to the direct call.
4. **Load**: ``--clients`` asyncio clients (httpx), each alternating continue and similar
   requests on random sample playlists and tracks, for ``--duration`` seconds or
   ``--max-requests`` requests, whichever comes first, after a warm-up. With
   ``--think-ms T`` each client waits between its requests a time drawn uniformly from
   T/2 to 3T/2 (a paced client, as locust's ``wait_time = between(…)``), the clients
   starting spread over T: the offered rate is at most clients / T. Server RSS
   (the process and its children) is read when the measured run starts and ends.

Prints throughput, p50, p99 and errors per request kind against the targets (no
errors, continue p99 < 150 ms, RSS growth < 10%) and writes them as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks.ui import build_catalog
from tests.servers import ROOT, recsys_server

TARGETS = {"errors": 0, "continue_p99_ms": 150.0, "rss_growth_pct": 10.0}
WARMUP_S = 5.0


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0–1) of ``values``, nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def summary(latencies_s: list[float], errors: int, seconds: float | None = None) -> dict[str, Any]:
    ms = [1000 * v for v in latencies_s]
    out = {
        "requests": len(ms) + errors,
        "errors": errors,
        "p50_ms": percentile(ms, 0.50),
        "p99_ms": percentile(ms, 0.99),
        "max_ms": max(ms) if ms else float("nan"),
        "mean_ms": statistics.fmean(ms) if ms else float("nan"),
    }
    if seconds:
        out["throughput_per_s"] = (len(ms) + errors) / seconds
    return out


def samples(data_dir: Path, n: int, seed: int) -> dict[str, Any]:
    """Sample playlists and tracks holding a ``cf`` vector, and the direct library calls on them."""
    from recsys.catalog import db
    from recsys.catalog.browse import playlist_page
    from recsys.config import load_settings
    from recsys.recommend.service import playlist_seeds, serving_service
    from recsys.recommend.similar import similar_tracks, tracks_holding
    from recsys.vectorstore import open_store

    settings = load_settings(data_dir=data_dir)
    engine = db.make_engine(settings.catalog_url)
    rng = random.Random(seed)
    started = time.perf_counter()
    service = serving_service(engine, data_dir=data_dir)
    build_s = time.perf_counter() - started
    playlists = [h.playlist_id for h in playlist_page(engine, "", page_size=200).hits]
    total = playlist_page(engine, "").total
    picked = [rng.choice(playlists) for _ in range(n)]
    continue_s = []
    for playlist in picked:
        started = time.perf_counter()
        seeds = playlist_seeds(engine, str(playlist))
        service.recommend(seeds.track_ids, seeds.title, 25)
        continue_s.append(time.perf_counter() - started)
    with open_store(settings) as store:
        holding = [t.track_id for t in tracks_holding(store, "cf", limit=2000)]
        tracks = [rng.choice(holding) for _ in range(n)]
        similar_s = []
        for track in tracks:
            started = time.perf_counter()
            similar_tracks(store, track, by="cf", n=10)
            similar_s.append(time.perf_counter() - started)
    engine.dispose()
    return {
        "catalog_playlists": total,
        "service_build_s": build_s,
        "playlists": playlists,
        "tracks": holding,
        "picked_playlists": picked,
        "picked_tracks": tracks,
        "direct_continue_s": continue_s[1:],  # the first call warms caches
        "direct_similar_s": similar_s[1:],
    }


def make_key(data_dir: Path) -> str:
    from recsys.catalog import db
    from recsys.catalog.api_keys import create_key

    engine = db.make_engine(f"sqlite:///{data_dir / 'catalog.db'}")
    try:
        return create_key(engine, f"bench-{os.getpid()}-{int(time.time())}")
    finally:
        engine.dispose()


def rss_mb(pid: int) -> float:
    process = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20


def request_args(kind: str, target: int) -> tuple[str, str, dict[str, Any]]:
    if kind == "continue":
        return "POST", "/v1/continue", {"json": {"playlist_id": target, "n": 25}}
    return "GET", f"/v1/tracks/{target}/similar", {"params": {"by": "cf", "n": 10}}


def one_client(url: str, key: str, picked: dict[str, list[int]]) -> dict[str, list[float]]:
    """The same requests as the direct calls, one at a time."""
    out: dict[str, list[float]] = {"continue": [], "similar": []}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        for kind, targets in (("continue", picked["continue"]), ("similar", picked["similar"])):
            for i, target in enumerate(targets):
                method, path, kwargs = request_args(kind, target)
                started = time.perf_counter()
                answer = client.request(method, path, **kwargs)
                seconds = time.perf_counter() - started
                answer.raise_for_status()
                if i:  # the first request of each kind warms caches, as the direct calls' first does
                    out[kind].append(seconds)
    return out


async def load(
    url: str,
    key: str,
    targets: dict[str, list[int]],
    *,
    clients: int,
    duration_s: float,
    max_requests: int,
    think_s: float,
    seed: int,
) -> dict[str, Any]:
    """``clients`` clients alternating continue and similar until the deadline or the request budget."""
    latencies: dict[str, list[float]] = {"continue": [], "similar": []}
    errors: dict[str, int] = {"continue": 0, "similar": 0}
    statuses: dict[str, int] = {}
    budget = max_requests
    # idle connections are dropped by the client before the server drops them (recsys serve keeps
    # them 30 s), so that no request is sent on a connection the server is closing
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients, keepalive_expiry=20)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30, limits=limits
    ) as client:

        async def run(index: int, until: float, record: bool) -> None:
            nonlocal budget
            rng = random.Random(seed * 1000 + index)
            turn = index % 2
            if think_s:  # clients start spread over one think time, not all at once
                await asyncio.sleep(rng.uniform(0, think_s))
            while time.monotonic() < until and (budget > 0 or not record):
                kind = ("continue", "similar")[turn]
                turn ^= 1
                method, path, kwargs = request_args(kind, rng.choice(targets[kind]))
                if record:
                    budget -= 1
                started = time.perf_counter()
                try:
                    answer = await client.request(method, path, **kwargs)
                    ok = answer.status_code == 200
                    status = str(answer.status_code)
                except httpx.HTTPError as exc:
                    ok, status = False, type(exc).__name__
                seconds = time.perf_counter() - started
                if record:
                    statuses[status] = statuses.get(status, 0) + 1
                    if ok:
                        latencies[kind].append(seconds)
                    else:
                        errors[kind] += 1
                if (
                    think_s
                ):  # uniform between half and one and a half times the think time (locust's `between`)
                    await asyncio.sleep(rng.uniform(0.5 * think_s, 1.5 * think_s))

        warm_until = time.monotonic() + WARMUP_S
        await asyncio.gather(*(run(i, warm_until, False) for i in range(clients)))
        started = time.monotonic()
        await asyncio.gather(*(run(i, started + duration_s, True) for i in range(clients)))
        seconds = time.monotonic() - started
    return {"latencies": latencies, "errors": errors, "statuses": statuses, "seconds": seconds}


def server_latencies(log: Path, loaded: dict[str, Any]) -> dict[str, Any]:
    """The measured requests as the server's access log timed them (from arrival to answer sent):
    the last ones of each route, as many as the load made."""
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    out: dict[str, Any] = {"log_lines": len(lines)}
    for kind, marker in (("continue", "/v1/continue"), ("similar", "/similar")):
        made = len(loaded["latencies"][kind]) + loaded["errors"][kind]
        ms = [line["latency_ms"] for line in lines if line["path"].endswith(marker)][-made:]
        out[kind] = {
            "p50_ms": percentile(ms, 0.5),
            "p99_ms": percentile(ms, 0.99),
            "max_ms": max(ms, default=0),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="a data dir holding a catalog (default: build one)")
    parser.add_argument("--mpd", type=Path, default=ROOT.parent / "shared" / "data" / "mpd_trimmed")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of measured load")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument("--think-ms", type=float, default=0.0, help="each client's wait between requests")
    parser.add_argument("--max-requests", type=int, default=200_000, help="the run's request budget")
    parser.add_argument("--workers", type=int, default=1, help="server processes (recsys serve --workers)")
    parser.add_argument("--direct", type=int, default=200, help="direct (and one-client HTTP) calls per kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "api_load.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="recsys-api-bench-") as scratch:
        data_dir = args.data_dir or Path(scratch) / "data"
        if args.data_dir is None:
            build_catalog(data_dir, args.mpd)
        direct = samples(data_dir, args.direct + 1, args.seed)
        key = make_key(data_dir)
        env = {"RECSYS_API_RATE_PER_S": "1000000", "RECSYS_API_RATE_BURST": "1000000"}
        with recsys_server(
            ["serve", "--data-dir", str(data_dir), "--workers", str(args.workers)],
            "/v1/ready",
            logs=Path(scratch) / "logs",
            env=env,
        ) as (url, server):
            picked = {"continue": direct["picked_playlists"], "similar": direct["picked_tracks"]}
            single = one_client(url, key, picked)
            targets = {"continue": direct["playlists"], "similar": direct["tracks"]}
            gc.collect()  # the direct calls' service is gone: its pauses are not the server's
            gc.freeze()
            load_start = os.getloadavg()[0]
            rss_start = rss_mb(server.pid)
            loaded = asyncio.run(
                load(
                    url,
                    key,
                    targets,
                    clients=args.clients,
                    duration_s=args.duration,
                    max_requests=args.max_requests,
                    think_s=args.think_ms / 1000,
                    seed=args.seed,
                )
            )
            rss_end = rss_mb(server.pid)
            loaded["load_average"] = {"start": load_start, "end": os.getloadavg()[0]}
            server_side = server_latencies(Path(scratch) / "logs" / "server.err", loaded)
    report(args, direct, single, loaded, rss_start, rss_end, server_side)


def report(
    args: argparse.Namespace,
    direct: dict[str, Any],
    single: dict[str, list[float]],
    loaded: dict[str, Any],
    rss_start: float,
    rss_end: float,
    server_side: dict[str, Any],
) -> None:
    seconds = loaded["seconds"]
    kinds = {}
    for kind in ("continue", "similar"):
        one = summary(single[kind], 0)
        alone = summary(direct[f"direct_{kind}_s"], 0)
        kinds[kind] = {
            "direct": alone,
            "http_one_client": one,
            "http_overhead_ratio_p50": one["p50_ms"] / alone["p50_ms"],
            "load": summary(loaded["latencies"][kind], loaded["errors"][kind], seconds),
        }
    total = sum(k["load"]["requests"] for k in kinds.values())
    errors = sum(k["load"]["errors"] for k in kinds.values())
    growth = 100 * (rss_end - rss_start) / rss_start
    think_s = args.think_ms / 1000
    result = {
        "benchmark": "api_load",
        "command": " ".join(["python -m benchmarks.api_load", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "catalog_playlists": direct["catalog_playlists"],
        "service_build_s": direct["service_build_s"],
        "server": f"recsys serve, {args.workers} worker(s), keys on (rate limit far above the offered rate)",
        "clients": args.clients,
        "think_ms": args.think_ms,
        "offered_rate_max_per_s": args.clients / think_s if think_s else None,
        "duration_s": seconds,
        "requests": total,
        "errors": errors,
        "statuses": loaded["statuses"],
        "machine_load_average_1min": loaded["load_average"],
        "throughput_per_s": total / seconds,
        "kinds": kinds,
        "server_rss_mb": {"start": rss_start, "end": rss_end, "growth_pct": growth},
        "server_side": server_side,
        "targets": TARGETS,
        "met": {
            "errors": errors == TARGETS["errors"],
            "continue_p99_ms": kinds["continue"]["load"]["p99_ms"] < TARGETS["continue_p99_ms"],
            "rss_growth_pct": growth < TARGETS["rss_growth_pct"],
        },
    }
    print(
        f"catalog: {direct['catalog_playlists']:,} playlists; continuation service built in "
        f"{direct['service_build_s']:.1f} s"
    )
    paced = (
        f", each waiting {args.think_ms:.0f} ms between requests (offered ≤ {result['offered_rate_max_per_s']:.0f}/s)"
        if think_s
        else ", closed loop"
    )
    print(
        f"load: {args.clients} clients{paced}, {seconds:.1f} s, {total:,} requests, {errors} errors, {total / seconds:.0f}/s"
    )
    print(
        f"{'kind':<9} {'direct p50':>11} {'1 client p50':>13} {'ratio':>6} {'load /s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>7}"
    )
    for kind, v in kinds.items():
        print(
            f"{kind:<9} {v['direct']['p50_ms']:>8.1f} ms {v['http_one_client']['p50_ms']:>10.1f} ms "
            f"{v['http_overhead_ratio_p50']:>6.2f} {v['load']['throughput_per_s']:>8.1f} "
            f"{v['load']['p50_ms']:>7.1f} {v['load']['p99_ms']:>7.1f} {v['load']['errors']:>7}"
        )
    for kind in ("continue", "similar"):
        v = server_side[kind]
        print(
            f"{kind}: as the server timed it, p50 {v['p50_ms']:.1f} ms, p99 {v['p99_ms']:.1f} ms, max {v['max_ms']:.0f} ms"
        )
    print(f"server RSS: {rss_start:.0f} MB at the start, {rss_end:.0f} MB at the end ({growth:+.1f}%)")
    met = result["met"]
    print(
        "targets: zero errors: "
        + ("met" if met["errors"] else "NOT met")
        + f"; continue p99 < 150 ms: {'met' if met['continue_p99_ms'] else 'NOT met'}"
        + f"; RSS growth < 10%: {'met' if met['rss_growth_pct'] else 'NOT met'}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"→ {args.json}")


if __name__ == "__main__":
    main()
