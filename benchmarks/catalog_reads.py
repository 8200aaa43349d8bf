"""Peak memory and time of the catalog's bulk reads: one tuple per row (``.all()``) against batches.

Loads ``--entries`` synthetic playlist entries (about 66 per playlist, a tenth as many
tracks, some NULLs) into a fresh SQLite file and a fresh PostgreSQL database, then reads
them back, each read in a child process of its own, and reports the child's peak RSS
(``VmHWM``), the part of it the read added (peak less the RSS before the read), and the
wall time:

- ``all_rows`` (the baseline, reproduced here): the rows fetched with ``Result.all()``, a row
  object per row, then handed to ``polars.DataFrame``, as ``recsys.catalog.queries`` read
  before;
- ``batched``: ``recsys.catalog.queries`` as it reads now (``recsys.catalog.reads``:
  ``COPY ... TO STDOUT`` parsed by Arrow on PostgreSQL, ``batch_rows`` rows at a time
  through the driver on SQLite).

Both reads of ``playlist_entries`` (three integer columns) and of ``tracks_frame`` (text
columns) are checked equal before the figures are kept.

    python benchmarks/catalog_reads.py --entries 3000000 --json benchmarks/results/catalog_reads.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PER_PLAYLIST = 66
READS = ("entries", "tracks")
VARIANTS = ("all_rows", "batched")


# --------------------------------------------------------------------------- the catalog


def _series(dialect: str, n: int) -> str:
    """A ``FROM`` clause of the integers 0 … n-1 as ``i``."""
    if dialect == "postgresql":
        return f"generate_series(0::bigint, {n - 1}) AS s(i)"
    return (
        f"(WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {n - 1}) SELECT i FROM s)"
    )


def load(url: str, entries: int) -> dict[str, int]:
    """Fill a migrated, empty catalog: playlists of 66 entries over ``entries // 10`` tracks.

    Every seventh track has no duration, every fifth no artist, every third title is empty.
    """
    from sqlalchemy import text

    from recsys.catalog import db

    playlists = max(1, -(-entries // PER_PLAYLIST))
    tracks = max(1, entries // 10)
    artists = max(1, tracks // 20)
    engine = db.make_engine(url)
    dialect = engine.dialect.name
    concat = "||"
    with engine.begin() as conn:
        conn.execute(
            text(
                f"""INSERT INTO artist (id, source_key, name, name_key)
                SELECT i + 1, 'bench:a' {concat} i, 'Artist ' {concat} i, 'artist ' {concat} i
                FROM {_series(dialect, artists)}"""
            )
        )
        conn.execute(
            text(
                f"""INSERT INTO track (id, source_key, title, title_key, artist_id, artist_name,
                                   duration_ms, recording_key)
                SELECT i + 1, 'bench:t' {concat} i,
                       CASE WHEN i % 3 = 0 THEN '' ELSE 'Song number ' {concat} i END,
                       'song number ' {concat} i,
                       CASE WHEN i % 5 = 0 THEN NULL ELSE i % {artists} + 1 END,
                       'Artist ' {concat} (i % {artists}),
                       CASE WHEN i % 7 = 0 THEN NULL ELSE 150000 + i % 200000 END,
                       'artist ' {concat} (i % {artists}) {concat} '|song number ' {concat} i
                FROM {_series(dialect, tracks)}"""
            )
        )
        conn.execute(
            text(
                f"""INSERT INTO playlist (id, namespace, source_key, name, name_key, num_tracks)
                SELECT i + 1, 'catalog', 'bench:p' {concat} i, 'Playlist ' {concat} i,
                       'playlist ' {concat} i, {PER_PLAYLIST}
                FROM {_series(dialect, playlists)}"""
            )
        )
        # Track ids drawn by a multiplicative hash: entries spread over the whole vocabulary.
        conn.execute(
            text(
                f"""INSERT INTO playlist_track (playlist_id, position, track_id)
                SELECT i / {PER_PLAYLIST} + 1, i % {PER_PLAYLIST}, (i * 7919) % {tracks} + 1
                FROM {_series(dialect, entries)}"""
            )
        )
    if dialect == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()
    return {"entries": entries, "playlists": playlists, "tracks": tracks, "artists": artists}


class Database:
    """A fresh, migrated catalog database for one run, removed afterwards."""

    def __init__(self, backend: str, pg_admin: str, workdir: Path) -> None:
        import sqlalchemy as sa

        from recsys.catalog import db

        self.backend = backend
        self.name = f"bench_reads_{uuid.uuid4().hex[:10]}"
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
        import sqlalchemy as sa

        if self.backend == "postgresql":
            with self.admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            self.admin.dispose()
        else:
            Path(self.url.removeprefix("sqlite:///")).unlink(missing_ok=True)


# --------------------------------------------------------------------------- the reads


def all_rows(url: str, read: str) -> Any:
    """The baseline: the read as ``recsys.catalog.queries`` did it, every row a tuple first."""
    import polars as pl

    from recsys.catalog import db
    from recsys.catalog.queries import ENTRIES, TRACKS, entries_query, tracks_query

    engine = db.make_engine(url)
    stmt, schema = (entries_query(), ENTRIES) if read == "entries" else (tracks_query(), TRACKS)
    with engine.connect() as conn:
        rows = conn.execute(stmt).all()
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    engine.dispose()
    return frame


def batched(url: str, read: str) -> Any:
    from recsys.catalog import db
    from recsys.catalog.queries import playlist_entries, tracks_frame

    engine = db.make_engine(url)
    frame = playlist_entries(engine) if read == "entries" else tracks_frame(engine)
    engine.dispose()
    return frame


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(url: str, read: str, variant: str) -> dict[str, Any]:
    """One read in this (fresh) process: peak RSS, RSS before the read, seconds, and a digest."""
    import polars as pl  # noqa: F401  (imported before the baseline RSS is taken)
    import pyarrow  # noqa: F401
    import sqlalchemy  # noqa: F401

    import recsys.catalog.queries  # noqa: F401

    before = _rss_kib("VmRSS")
    start = time.perf_counter()
    frame = (all_rows if variant == "all_rows" else batched)(url, read)
    seconds = time.perf_counter() - start
    peak = _rss_kib("VmHWM")  # this process's own high-water mark (not folded in from a parent)
    return {
        "rows": frame.height,
        "seconds": round(seconds, 3),
        "peak_rss_mib": round(peak / 1024, 1),
        "rss_before_mib": round(before / 1024, 1),
        "read_added_mib": round((peak - before) / 1024, 1),
        "frame_mib": round(frame.estimated_size() / 2**20, 1),
        "digest": int(frame.hash_rows().sum()) if frame.height else 0,
        "schema": {name: str(dtype) for name, dtype in frame.schema.items()},
        "nulls": frame.null_count().row(0),
    }


def run_child(url: str, read: str, variant: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", variant, "--read", read, "--url", url],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"benchmark child failed: {variant} {read}\n{result.stderr}")
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--entries", type=int, default=3_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--reads", default=",".join(READS), help="entries, tracks or both")
    parser.add_argument(
        "--pg-admin",
        default=os.environ.get("RECSYS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "catalog_reads.json")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--read", choices=READS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.url, args.read, args.child)))
        return

    out: dict[str, Any] = {"entries": args.entries, "load_before": os.getloadavg()[0], "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            database = Database(backend, args.pg_admin, Path(tmp))
            try:
                start = time.perf_counter()
                sizes = load(database.url, args.entries)
                print(f"{backend}: loaded {sizes} in {time.perf_counter() - start:.1f} s")
                for read in args.reads.split(","):
                    results = {variant: run_child(database.url, read, variant) for variant in VARIANTS}
                    old, new = results["all_rows"], results["batched"]
                    same = all(old[k] == new[k] for k in ("rows", "digest", "schema", "nulls"))
                    if not same:
                        raise SystemExit(f"{backend} {read}: the two reads differ: {old} != {new}")
                    for variant, figures in results.items():
                        print(
                            f"  {read:>7} {variant:>8}: {figures['rows']:,} rows, {figures['seconds']:.2f} s, "
                            f"peak RSS {figures['peak_rss_mib']:.0f} MiB (read added "
                            f"{figures['read_added_mib']:.0f} MiB; frame {figures['frame_mib']:.0f} MiB)"
                        )
                        out["runs"].append({"backend": backend, "read": read, "variant": variant, **figures})
            finally:
                database.drop()
    out["load_after"] = os.getloadavg()[0]
    out["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
