"""Peak memory of reading a large tracks table in batches, at two file sizes, beside two baselines.

Writes synthetic CSVs of ``--rows`` and ``3 × --rows`` tracks and measures, each in a fresh process,
with a consumer that spends ``--delay`` seconds per batch (as loading into a database does):

- ``read_whole``: ``polars.read_csv`` of the whole file (what batching avoids);
- ``polars_collect_batches``: ``scan_csv(...).collect_batches()``, which reads ahead of a slow consumer;
- ``open_table``: ``pipelines.ingest.streaming.open_table(...).batches()``, what the ingest uses.

A reader whose memory is bounded by the batch shows the same peak at both sizes. With ``--ingest``
it also times ``ingest_table`` of the smaller file into a SQLite catalog. Prints the figures and
writes JSON to ``--json`` (default ``benchmarks/results/ingest_table_stream.json``).
Usage: ``python -m benchmarks.ingest_table_stream --rows 1000000``.
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
mode, csv, batch, delay = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
start = time.perf_counter()
rows = 0
if mode == "read_whole":
    import polars as pl
    rows = pl.read_csv(csv, infer_schema=False).height
elif mode == "polars_collect_batches":
    import polars as pl
    for frame in pl.scan_csv(csv, infer_schema=False).collect_batches(chunk_size=batch):
        rows += frame.height
        time.sleep(delay)
elif mode == "open_table":
    from pipelines.ingest.streaming import open_table
    for frame in open_table(csv).batches(batch):
        rows += frame.height
        time.sleep(delay)
else:
    from pipelines.ingest.tables import ingest_table
    from recsys.catalog import db as catalog_db
    engine = catalog_db.make_engine(f"sqlite:///{csv.with_suffix('.db')}")
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


def measure(mode: str, csv: Path, batch: int, delay: float) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(csv), str(batch), str(delay)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    rows, seconds, peak_kib = result.stdout.split()[-3:]
    return {
        "rows": int(rows),
        "seconds": round(float(seconds), 2),
        "peak_rss_mib": round(int(peak_kib) / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-rows", type=int, default=200_000)
    parser.add_argument("--delay", type=float, default=0.3, help="Seconds the consumer spends per batch.")
    parser.add_argument("--ingest", action="store_true", help="Also time ingest_table of the smaller file.")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "ingest_table_stream.json"
    )
    args = parser.parse_args()
    out: dict[str, object] = {"batch_rows": args.batch_rows, "delay_s": args.delay, "sizes": []}
    with tempfile.TemporaryDirectory() as tmp:
        for rows in (args.rows, 3 * args.rows):
            csv = Path(tmp) / f"tracks_{rows}.csv"
            write_csv(csv, rows)
            size = {"rows": rows, "csv_mib": round(csv.stat().st_size / 2**20, 1)}
            for mode in ("read_whole", "polars_collect_batches", "open_table"):
                size[mode] = measure(mode, csv, args.batch_rows, args.delay)
            out["sizes"].append(size)  # type: ignore[attr-defined]
            print(json.dumps(size))
        if args.ingest:
            csv = Path(tmp) / f"tracks_{args.rows}.csv"
            out["ingest_table"] = measure("ingest", csv, args.batch_rows, 0.0)
            print(json.dumps(out["ingest_table"]))
    out["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
