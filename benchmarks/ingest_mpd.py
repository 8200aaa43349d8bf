"""MPD ingestion throughput and peak memory, into PostgreSQL and SQLite, beside a naive baseline.

Generates Million Playlist Dataset slices in the full original schema (1,000
playlists per file, 5–250 tracks per playlist, about 66 on average) whose tracks are
drawn from the MPD's vocabulary size (2,262,292 distinct tracks on about 734,684
albums; artist names from 85,184 word triples) with Zipf(1) popularity: like the real data, a growing share of entries names a
track already seen. Then, for each backend and for two scales (a prefix of the
slices and all of them), ingests into a fresh database in a child process and
reports entries per second, the CPU seconds of the client and (PostgreSQL) of the
server, and the child's peak RSS. The naive baseline (``json`` module, one ORM
object per row, a commit per file) runs on a small sample in the same run.

    python benchmarks/ingest_mpd.py --playlists 100000 --json benchmarks/results/ingest_mpd.json

At the MPD's own size (1,000 slices, 18 GB of JSON generated; about 4 minutes a load
into PostgreSQL on two cores):

    python benchmarks/ingest_mpd.py --playlists 1000000 --backends postgresql --repeat 3

Entries per second are wall-clock figures on the machine as it is: say how loaded
it was (the load average before and after each run is recorded).

To compare two versions of the loader on the same machine at the same time, give
another checkout (for instance a ``git worktree`` of the code before a change): each
run then loads the same slices with that checkout's code and with this one
alternately (the other first), each into a fresh database, and the medians are
reported per checkout:

    python benchmarks/ingest_mpd.py --playlists 100000 --small 100000 --backends postgresql \
        --baseline-playlists 0 --repeat 2 --compare-with ../before \
        --json docs/evaluation/benchmark_ingest_mpd_paired.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MPD_TRACKS = 2_262_292
MPD_ARTISTS = 295_860
MPD_ALBUMS = 734_684
PER_SLICE = 1_000
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_WORDS = [
    "love",
    "night",
    "summer",
    "blue",
    "river",
    "gold",
    "fire",
    "home",
    "light",
    "dream",
    "stone",
    "rain",
    "heart",
    "road",
    "city",
    "wild",
    "moon",
    "sun",
    "sky",
    "ocean",
    "dance",
    "money",
    "girl",
    "boy",
    "baby",
    "time",
    "world",
    "life",
    "soul",
    "angel",
    "ghost",
    "king",
    "queen",
    "café",
    "señor",
    "déjà",
    "müde",
    "şarkı",
    "сердце",
    "夜",
    "música",
    "amor",
    "noche",
    "corazón",
]
_DECORATIONS = ("", "", "", "", "", "", " - Remastered 2011", " (Radio Edit)", " - Live", " (feat. {f})")


def _base62(n: int, width: int = 22) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(_ALPHABET[r])
    return "".join(out)


def _uri(kind: str, index: int, salt: int) -> str:
    return f"spotify:{kind}:" + _base62((index + 1) * 0x9E3779B97F4A7C15 ^ salt)


def _words(index: int, n: int) -> str:
    parts = []
    for _ in range(n):
        index, r = divmod(index, len(_WORDS))
        parts.append(_WORDS[r])
    return " ".join(parts).title()


def _track_fragment(rank: int) -> bytes:
    """The JSON of one track (without its ``pos``), deterministic in its popularity rank."""
    album = (rank // 3 * 104_729) % MPD_ALBUMS  # about three tracks per album, as in the MPD
    artist = (album * 7_919) % MPD_ARTISTS
    decoration = _DECORATIONS[rank % len(_DECORATIONS)].format(f=_words(rank // 3 + 17, 2))
    track = {
        "artist_name": _words(artist, 3) + (" feat. " + _words(artist + 5, 2) if rank % 23 == 0 else ""),
        "track_uri": _uri("track", rank, 11),
        "artist_uri": _uri("artist", artist, 13),
        "track_name": _words(rank, 3) + decoration,
        "album_uri": _uri("album", album, 17),
        "duration_ms": 90_000 + (rank * 7_717) % 300_000,
        "album_name": _words(album, 2),
    }
    return orjson.dumps(track)[1:]


def generate(out: Path, playlists: int, seed: int = 2018) -> list[Path]:
    """Write ``playlists`` playlists as MPD slices in ``out`` (reused when already there)."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    fragments: dict[int, bytes] = {}
    paths = []
    log_v = math.log(MPD_TRACKS)
    for start in range(0, playlists, PER_SLICE):
        end = min(start + PER_SLICE, playlists)
        path = out / f"mpd.slice.{start}-{start + PER_SLICE - 1}.json"
        paths.append(path)
        if path.exists() and end - start == PER_SLICE:
            for _ in range(end - start):  # keep the random stream aligned with a full generation
                n = min(250, max(5, int(rng.lognormvariate(3.9, 0.75))))
                for _ in range(n):
                    rng.random()
            continue
        parts = []
        for pid in range(start, end):
            n = min(250, max(5, int(rng.lognormvariate(3.9, 0.75))))
            entries = []
            for pos in range(n):
                rank = int(math.exp(rng.random() * log_v)) - 1  # Zipf(1) over the vocabulary
                fragment = fragments.get(rank)
                if fragment is None:
                    fragment = fragments[rank] = _track_fragment(rank)
                entries.append(b'{"pos":%d,' % pos + fragment)
            head = json.dumps(
                {
                    "name": _words(pid * 31, 2),
                    "collaborative": "false",
                    "pid": pid,
                    "modified_at": 1_500_000_000 + pid,
                    "num_tracks": n,
                    "num_followers": 1 + pid % 50,
                },
                ensure_ascii=False,
            ).encode()
            parts.append(head[:-1] + b', "tracks": [' + b",".join(entries) + b"]}")
        body = b'{"info": {"slice": "%d-%d", "version": "v1"}, "playlists": [' % (
            start,
            start + PER_SLICE - 1,
        )
        path.write_bytes(body + b",\n".join(parts) + b"]}")
    return paths


# --------------------------------------------------------------------------- child processes


def _server_cpu(engine: Any) -> float | None:
    """CPU seconds used so far by this database's server processes (same host only)."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as conn:
        pids = [
            r[0]
            for r in conn.exec_driver_sql(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            )
        ]
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def child_ingest(url: str, files: list[Path], batch_rows: int) -> dict[str, Any]:
    # deferred: a child imports the loader of the checkout it runs (its PYTHONPATH), never the parent
    from pipelines.ingest.mpd import ingest_mpd
    from recsys.catalog import db
    from recsys.catalog.queries import catalog_stats

    engine = db.make_engine(url)
    server0 = _server_cpu(engine)
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    report = ingest_mpd(engine, files, batch_rows=batch_rows)
    wall = time.perf_counter() - start
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    server1 = _server_cpu(engine)
    with engine.connect() as conn:
        stats = catalog_stats(conn)
    engine.dispose()
    return {
        "wall_s": wall,
        "client_cpu_s": usage1.ru_utime + usage1.ru_stime - usage0.ru_utime - usage0.ru_stime,
        "server_cpu_s": None if server0 is None or server1 is None else server1 - server0,
        "entries": report.loaded["playlist_tracks"],
        "rejected": report.rejected,
        "catalog": stats,
    }


def child_naive(url: str, files: list[Path], playlists: int) -> dict[str, Any]:
    """The naive loader: ``json.load``, one ORM object per row, a dict of track ids, a commit per file."""
    # deferred: the catalog's code loads in the child process that runs this loader, not in the parent
    from sqlalchemy import select

    from recsys.catalog import db
    from recsys.catalog.schema import Artist, Playlist, PlaylistTrack, Track

    engine = db.make_engine(url)
    artists: dict[str, int] = {}
    tracks: dict[str, int] = {}
    entries = done = 0
    start = time.perf_counter()
    for path in files:
        with path.open(encoding="utf-8") as handle:
            document = json.load(handle)
        with db.session_scope(engine) as session:
            for record in document["playlists"]:
                if done >= playlists:
                    break
                done += 1
                playlist = Playlist(
                    source_key=f"mpd:{record['pid']}", name=record["name"], name_key=record["name"].lower()
                )
                session.add(playlist)
                session.flush()
                for position, item in enumerate(record["tracks"]):
                    uri = item["track_uri"]
                    if uri not in tracks:
                        name = item["artist_name"]
                        if name not in artists:
                            artist = session.scalar(select(Artist).where(Artist.source_key == f"name:{name}"))
                            if artist is None:
                                artist = Artist(source_key=f"name:{name}", name=name, name_key=name.lower())
                                session.add(artist)
                                session.flush()
                            artists[name] = artist.id
                        track = Track(
                            source_key=uri,
                            spotify_uri=uri,
                            title=item["track_name"],
                            title_key=item["track_name"].lower(),
                            artist_id=artists[name],
                            artist_name=name,
                            recording_key=f"{name.lower()}|{item['track_name'].lower()}",
                        )
                        session.add(track)
                        session.flush()
                        tracks[uri] = track.id
                    session.add(
                        PlaylistTrack(playlist_id=playlist.id, position=position, track_id=tracks[uri])
                    )
                    entries += 1
        if done >= playlists:
            break
    wall = time.perf_counter() - start
    engine.dispose()
    return {"wall_s": wall, "entries": entries, "playlists": done}


# --------------------------------------------------------------------------- orchestration


class Database:
    """A fresh, migrated catalog database for one run, removed afterwards."""

    def __init__(self, backend: str, pg_admin: str, workdir: Path) -> None:
        # deferred: the parent imports the catalog only to create and drop databases, not to generate
        import sqlalchemy as sa

        from recsys.catalog import db

        self.backend = backend
        self.name = f"bench_mpd_{uuid.uuid4().hex[:10]}"
        if backend == "postgresql":
            self.admin = sa.create_engine(pg_admin, isolation_level="AUTOCOMMIT")
            with self.admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
            self.url = sa.make_url(pg_admin).set(database=self.name).render_as_string(hide_password=False)
        else:
            self.url = f"sqlite:///{workdir / (self.name + '.db')}"
        engine = db.make_engine(self.url)
        db.upgrade(engine)
        engine.dispose()

    def drop(self) -> None:
        import sqlalchemy as sa  # deferred: as in __init__

        if self.backend == "postgresql":
            with self.admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            self.admin.dispose()
        else:
            Path(self.url.removeprefix("sqlite:///")).unlink(missing_ok=True)


def _peak_rss_mib(pid: int) -> float | None:
    """The process's peak resident set so far (VmHWM), in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _committed_entries(url: str) -> int:
    """Entries committed so far in a catalog (for a run stopped at its time limit)."""
    # deferred: the parent imports the catalog only when a run was stopped
    from recsys.catalog import db
    from recsys.catalog.queries import catalog_stats

    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return catalog_stats(conn)["playlist_tracks"]
    finally:
        engine.dispose()


def run_child(
    args: list[str], *, url: str, limit_s: float, checkout: Path = ROOT
) -> tuple[dict[str, Any], float]:
    """Run this script of ``checkout`` as a child, with that checkout's code; returns its JSON result
    and its peak RSS in MiB.

    A child still running after ``limit_s`` is stopped: its result then holds the
    entries committed so far, over the time it ran (``"partial": true``).
    """
    load0 = os.getloadavg()[0]
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, str(checkout / "benchmarks" / "ingest_mpd.py"), *args],
        stdout=subprocess.PIPE,
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": str(checkout)},
    )
    assert process.stdout is not None
    peak = 0.0
    finished = None
    while finished is None and time.perf_counter() - start < limit_s:
        peak = max(peak, _peak_rss_mib(process.pid) or 0.0)  # VmHWM: a high-water mark, polled
        pid, status = os.waitpid(process.pid, os.WNOHANG)
        if pid:
            finished = status
        else:
            time.sleep(0.2)
    if finished is None:
        peak = max(peak, _peak_rss_mib(process.pid) or 0.0)
        process.kill()
        os.waitpid(process.pid, 0)
        result = {"partial": True, "wall_s": time.perf_counter() - start, "entries": _committed_entries(url)}
    else:
        status = finished
        out = process.stdout.read()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"benchmark child failed ({status}): {' '.join(args)}")
        result = {**json.loads(out), "partial": False}
        # Not usage.ru_maxrss: Linux folds the parent's high-water mark at fork into the
        # child's (a benchmark that generated 1M playlists would report its own size).
    result["load_before"], result["load_after"] = load0, os.getloadavg()[0]
    return result, peak


def _revision(checkout: Path) -> str:
    """The commit a checkout stands at (``-dirty`` when its tracked files differ from it), for the results."""
    described = subprocess.run(
        ["git", "-C", str(checkout), "describe", "--always", "--dirty", "--abbrev=7"],
        capture_output=True,
        text=True,
        check=False,
    )
    return described.stdout.strip() or "unknown"


def _fmt(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--playlists", type=int, default=100_000, help="Playlists at the large scale.")
    parser.add_argument("--small", type=int, default=20_000, help="Playlists at the small scale.")
    parser.add_argument(
        "--baseline-playlists", type=int, default=300, help="Sample for the naive loader (0: no naive run)."
    )
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--batch-rows", type=int, default=200_000)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="Load each recsys scale this many times (a fresh database each) and report the median too.",
    )
    parser.add_argument("--data-dir", type=Path, help="Where the slices are generated (reused).")
    parser.add_argument(
        "--compare-with",
        type=Path,
        help="Another checkout whose loader runs too, alternately with this one's (it first), on the same slices.",
    )
    parser.add_argument(
        "--pg-admin",
        default=os.environ.get("RECSYS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "ingest_mpd.json")
    parser.add_argument(
        "--limit-s", type=float, default=3_600, help="Stop a run after this long (reports what it committed)."
    )
    parser.add_argument("--child", choices=["ingest", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--files", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compare_with is not None:
        args.compare_with = args.compare_with.resolve()
        if not (args.compare_with / "benchmarks" / "ingest_mpd.py").is_file():
            parser.error(f"--compare-with {args.compare_with}: no benchmarks/ingest_mpd.py there")

    if args.child:
        files = [Path(p) for p in args.files.read_text().split("\n") if p]
        if args.child == "ingest":
            result = child_ingest(args.url, files, args.batch_rows)
        else:
            result = child_naive(args.url, files, args.baseline_playlists)
        print(json.dumps(result))
        return

    workdir = Path(tempfile.mkdtemp(prefix="bench_mpd_"))
    data_dir = args.data_dir or workdir / "slices"
    t0 = time.perf_counter()
    paths = generate(data_dir, args.playlists)
    print(f"generated {args.playlists:,} playlists in {len(paths)} slices ({time.perf_counter() - t0:.0f} s)")
    scales = sorted({min(args.small, args.playlists), args.playlists})
    rows: list[dict[str, Any]] = []
    header = (
        f"{'loader':<15} {'backend':<10} {'playlists':>9} {'entries':>10} {'wall s':>8} {'entries/s':>10} "
        f"{'client cpu':>10} {'server cpu':>10} {'entries/cpu-s':>13} {'peak MiB':>8} {'load':>9}"
    )
    print(header, flush=True)

    def record(row: dict[str, Any]) -> None:
        cpu = row.get("client_cpu_s")
        total_cpu = None if cpu is None else cpu + (row.get("server_cpu_s") or 0.0)
        row["entries_per_s"] = row["entries"] / row["wall_s"]
        row["entries_per_cpu_s"] = None if not total_cpu else row["entries"] / total_cpu
        rows.append(row)
        print(
            f"{row['loader']:<15} {row['backend']:<10} {row.get('playlists', 0):>9,} {row['entries']:>10,} "
            f"{row['wall_s']:>8.1f} {row['entries_per_s']:>10,.0f} "
            f"{_fmt(cpu, '.1f'):>10} {_fmt(row.get('server_cpu_s'), '.1f'):>10} "
            f"{_fmt(row['entries_per_cpu_s'], ',.0f'):>13} "
            f"{row['peak_rss_mib']:>8.0f} {row['load_before']:>4.1f}/{row['load_after']:<4.1f}"
            + ("  (stopped at the time limit: entries committed so far)" if row.get("partial") else ""),
            flush=True,
        )
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "benchmark": "ingest_mpd",
                    "playlists": args.playlists,
                    "batch_rows": args.batch_rows,
                    "cpu_count": os.cpu_count(),
                    "repeat": args.repeat,
                    "compared_with": None if args.compare_with is None else _revision(args.compare_with),
                    "results": rows,
                    "medians": medians(rows),
                },
                indent=2,
            )
        )

    # (loader name, checkout): the compared checkout's loader runs first in every pair.
    loaders = [("recsys", ROOT)]
    if args.compare_with is not None:
        loaders.insert(0, ("recsys compared", args.compare_with))
    for backend in args.backends.split(","):
        if args.baseline_playlists:
            listing = workdir / "files_baseline.txt"
            listing.write_text(str(paths[0]))
            database = Database(backend, args.pg_admin, workdir)
            try:
                result, rss = run_child(
                    [
                        *("--child", "naive", "--url", database.url, "--files", str(listing)),
                        *("--baseline-playlists", str(args.baseline_playlists)),
                    ],
                    url=database.url,
                    limit_s=args.limit_s,
                )
            finally:
                database.drop()
            record({"loader": "naive json+ORM", "backend": backend, "peak_rss_mib": rss, **result})
        for scale, run, (loader, checkout) in [
            (scale, run, loader) for scale in scales for run in range(args.repeat) for loader in loaders
        ]:
            listing = workdir / f"files_{scale}.txt"
            listing.write_text("\n".join(str(p) for p in paths[: math.ceil(scale / PER_SLICE)]))
            database = Database(backend, args.pg_admin, workdir)
            try:
                result, rss = run_child(
                    [
                        *("--child", "ingest", "--url", database.url, "--files", str(listing)),
                        *("--batch-rows", str(args.batch_rows)),
                    ],
                    url=database.url,
                    limit_s=args.limit_s,
                    checkout=checkout,
                )
            finally:
                database.drop()
            record(
                {
                    "loader": loader,
                    "revision": _revision(checkout),
                    "backend": backend,
                    "playlists": scale,
                    "run": run + 1,
                    "peak_rss_mib": rss,
                    **result,
                }
            )
    if args.repeat > 1 or args.compare_with is not None:
        for summary in medians(rows):
            print(
                f"{summary['loader']}, median of {summary['runs']} runs: {summary['backend']}, "
                f"{summary['playlists']:,} playlists: "
                f"{summary['entries_per_s']:,.0f} entries/s (runs {summary['min_entries_per_s']:,.0f} to "
                f"{summary['max_entries_per_s']:,.0f}), peak {summary['peak_rss_mib']:,.0f} MiB at most"
            )
    print(f"results written to {args.json}")


def medians(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per recsys loader (this checkout's, the compared one's), backend and scale: the median entries/s of its
    runs, their range, the median client CPU seconds, the largest peak."""
    groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    for row in rows:
        if row["loader"].startswith("recsys") and not row.get("partial"):
            groups.setdefault((row["loader"], row["backend"], row["playlists"]), []).append(row)
    return [
        {
            "loader": loader,
            "backend": backend,
            "playlists": playlists,
            "runs": len(runs),
            "entries_per_s": statistics.median(r["entries_per_s"] for r in runs),
            "min_entries_per_s": min(r["entries_per_s"] for r in runs),
            "max_entries_per_s": max(r["entries_per_s"] for r in runs),
            "client_cpu_s": statistics.median(r["client_cpu_s"] for r in runs),
            "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        }
        for (loader, backend, playlists), runs in groups.items()
    ]


if __name__ == "__main__":
    main()
