"""Peak memory and speed of streaming a large tracks table into the catalog, beside reading it whole.

Writes a synthetic CSV of ``--rows`` tracks, then in fresh processes measures:

- ``baseline_read_whole``: ``polars.read_csv`` of the whole file (what streaming avoids);
- ``ingest_table``: ``recsys ingest table --kind tracks`` into a SQLite catalog, in batches.

Prints the figures and writes JSON to ``--json`` (default ``benchmarks/results/ingest_table_stream.json``).
Usage: ``python -m benchmarks.ingest_table_stream --rows 2000000``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = """
import resource, sys, time
from pathlib import Path
mode, csv, db, batch = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
start = time.perf_counter()
if mode == "read":
    import polars as pl
    rows = pl.read_csv(csv, infer_schema=False).height
else:
    from pipelines.ingest.tables import ingest_table
    from recsys.catalog import db as catalog_db
    engine = catalog_db.make_engine(f"sqlite:///{db}")
    catalog_db.upgrade(engine)
    report = ingest_table(engine, [csv], kind="tracks", batch_rows=batch)
    assert report.ok and report.rejected == 0, report.summary()
    rows = report.loaded["tracks"]
print(rows, time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def write_csv(path: Path, rows: int) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write("isrc,title,artist,album,duration_ms,year,genres\n")
        for i in range(rows):
            out.write(
                f"GBAAA{i:07d},Song number {i} (Radio Edit),Band {i % 50_000} feat. Guest {i % 977},"
                f"Album {i % 120_000},{150_000 + i % 200_000},{1960 + i % 60},rock|indie\n"
            )


def measure(mode: str, csv: Path, db: Path, batch: int) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(csv), str(db), str(batch)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    rows, seconds, peak_kib = result.stdout.split()[-3:]
    return {
        "rows": int(rows),
        "seconds": round(float(seconds), 2),
        "rows_per_second": round(int(rows) / float(seconds)),
        "peak_rss_mib": round(int(peak_kib) / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-rows", type=int, default=200_000)
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "ingest_table_stream.json"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "tracks.csv"
        write_csv(csv, args.rows)
        size_mib = round(csv.stat().st_size / 2**20, 1)
        baseline = measure("read", csv, Path(tmp) / "unused.db", args.batch_rows)
        streamed = measure("ingest", csv, Path(tmp) / "catalog.db", args.batch_rows)
    out = {
        "rows": args.rows,
        "batch_rows": args.batch_rows,
        "csv_mib": size_mib,
        "baseline_read_whole": baseline,
        "ingest_table": streamed,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(json.dumps(out, indent=2))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
