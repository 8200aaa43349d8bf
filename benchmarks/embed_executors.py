"""Embedding executors: the audio job in-process and on Ray Data actors, the same files, one run.

Both executors run ``embed_audio`` (catalog, batches, vector writes and all) over the same
synthetic files (flac, mp3 and ogg at 44.1/48 kHz, as ``benchmarks.audio_embed`` writes
them) with the same CultureMERT-sized model: the full-size MERT-95M architecture with
random weights, written as a MERT-format checkpoint and loaded by the production loader;
8 files per batch. The Ray run uses a local cluster this script starts (``ray start``,
stopped by process id), or the one ``--ray-address`` names, and ``--actors`` actors.

Figures:

- throughput of each executor: files per second and seconds of audio per second, over
  the whole job call (Ray's start-up included) and, for Ray, in steady state (from the
  first batch received to the last, over the batches after the first);
- Ray's fixed start-up cost: starting the cluster (``ray start``), the driver joining it
  (``ray.init``), and from joined to the first batch received less that batch's own
  compute (actors started, each building the model, the first batch scheduled);
- Ray's per-batch overhead against the batch's compute. Each actor times its own work
  on a batch (decode and embed: the compute). In steady state an actor's batches follow
  one another; the time between the end of one and the end of the next, less the next
  one's compute, is time the actor spent not computing: Ray scheduling the task, moving
  the batch in and the vectors out, waiting for input. That idle time per batch,
  divided by the compute per batch, is the overhead (each actor's first batch, which
  carries the model load, is left out). The driver's delay (a batch's arrival at the
  driver less its end in the actor) is reported beside it; it overlaps the actors'
  next batches, so it costs throughput only at the end of the job.

On a CPU-only machine each actor holds half a CPU and Ray gives it one thread for torch
(``OMP_NUM_THREADS``); the in-process run uses torch's default threads. Timings taken
while other work runs on the machine are noisy: both executors run in the same
invocation, one after the other, and the load average is printed with the figures.

    python -m benchmarks.embed_executors [--files 32] [--seconds 5] [--actors 2] [--json PATH]
"""

from __future__ import annotations

import os

# read by Ray when first imported: a cluster on the loopback address, and no core-worker notices
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")

import argparse
import itertools
import json
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks.audio_embed import write_checkpoint, write_files
from pipelines.demo.audio import DemoClip, register_demo_audio
from pipelines.embed.audio import AudioWorker, EmbedReport, embed_audio
from pipelines.embed.executors import ExecutorStats, LocalExecutor, RayExecutor, RayOptions
from recsys.catalog import db
from recsys.embedders.culturemert import CultureMertConfig, CultureMertEmbedder
from recsys.vectorstore.client import ClientStore

ROOT = Path(__file__).resolve().parents[1]
BATCH = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_cluster(cpus: int) -> Iterator[tuple[str, float]]:
    """A Ray head on 127.0.0.1 with its own temp dir and ports; yields (address, seconds to start).
    Stopped by process id (``ray stop`` would stop every Ray cluster of the machine)."""
    import psutil

    temp_dir = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's unix sockets live here
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    command = [str(Path(sys.executable).with_name("ray")), "start", "--head", "--node-ip-address=127.0.0.1"]
    command += [f"--port={port}", f"--num-cpus={cpus}", "--include-dashboard=false", "--disable-usage-stats"]
    command += ["--object-store-memory=1000000000", f"--temp-dir={temp_dir}"]
    command += [f"--ray-client-server-port={free_port()}", f"--dashboard-port={free_port()}"]
    command += [f"--dashboard-agent-listen-port={free_port()}"]
    clock = time.perf_counter()
    try:
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=300)
        yield f"127.0.0.1:{port}", time.perf_counter() - clock
    finally:
        procs = []
        for proc in psutil.process_iter(["cmdline"]):
            if any(str(temp_dir) in part for part in proc.info["cmdline"] or []):
                procs.append(proc)
                procs.extend(proc.children(recursive=True))
        for proc in procs:
            if proc.pid != os.getpid() and proc.is_running():
                proc.send_signal(signal.SIGTERM)
        _, alive = psutil.wait_procs(procs, timeout=10)
        for proc in alive:
            proc.kill()
        shutil.rmtree(temp_dir, ignore_errors=True)


def catalog(folder: Path, files: list[Path]) -> sa.Engine:
    engine = db.make_engine(f"sqlite:///{folder / 'catalog.db'}")
    db.upgrade(engine)
    register_demo_audio(engine, [DemoClip(p, "synthetic", "none", i) for i, p in enumerate(files)])
    return engine


def job(
    folder: Path, files: list[Path], embedder: CultureMertEmbedder, executor: Any
) -> tuple[EmbedReport, float]:
    folder.mkdir()
    engine = catalog(folder, files)
    clock = time.perf_counter()
    report = embed_audio(engine, ClientStore(":memory:"), embedder, batch_size=BATCH, executor=executor)
    seconds = time.perf_counter() - clock
    assert report.embedded == len(files), report.summary()
    return report, seconds


def overhead(stats: ExecutorStats) -> dict[str, float]:
    """Per actor, the idle time between consecutive batches against their compute (see the docstring)."""
    by_worker: dict[int, list[Any]] = {}
    for batch in stats.batches:
        by_worker.setdefault(batch.worker, []).append(batch)
    idle, busy = [], []
    for batches in by_worker.values():
        batches.sort(key=lambda b: b.finished)
        for before, after in itertools.pairwise(batches):
            idle.append(after.finished - before.finished - after.busy_s)
            busy.append(after.busy_s)
    delays = [b.received - b.finished for b in stats.batches]
    first = min(stats.batches, key=lambda b: b.received)
    out = {
        "actors_seen": len(by_worker),
        "first_batch_after_join_s": first.received - stats.connected,
        "first_batch_compute_s": first.busy_s,
        "mean_driver_delay_s": statistics.fmean(delays),
    }
    if busy:
        out |= {
            "steady_batches": len(busy),
            "mean_compute_per_batch_s": statistics.fmean(busy),
            "mean_idle_per_batch_s": statistics.fmean(idle),
            "overhead_per_batch": statistics.fmean(idle) / statistics.fmean(busy),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each file")
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--ray-address", default=None, help="an existing cluster (default: start one)")
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2, help="CPUs of the started cluster")
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results" / "embed_executors.json"
    )
    args = parser.parse_args()

    record: dict[str, Any] = {
        "benchmark": "embed_executors",
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "files": args.files,
        "seconds_per_file": args.seconds,
        "files_per_batch": BATCH,
        "actors": args.actors,
        "load_average_start": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="recsys-exec-") as tmp:
        root = Path(tmp)
        (root / "model").mkdir()
        (root / "audio").mkdir()
        write_checkpoint(root / "model")
        files = write_files(root / "audio", args.files, args.seconds)
        audio_s = args.files * args.seconds
        embedder = CultureMertEmbedder(CultureMertConfig(model=str(root / "model"), batch_size=8))
        record["device"] = str(embedder.device)

        local = LocalExecutor(AudioWorker(embedder, 600.0))  # the job's own path, model built once
        _, local_s = job(root / "local", files, embedder, local)
        record["in_process"] = {
            "job_s": local_s,
            "files_per_s": args.files / local_s,
            "audio_s_per_s": audio_s / local_s,
            "mean_compute_per_batch_s": statistics.fmean(b.busy_s for b in local.stats.batches),
        }

        with (
            local_cluster(args.cpus) if args.ray_address is None else _existing(args.ray_address) as (
                address,
                start_s,
            )
        ):
            ray_exec = RayExecutor(RayOptions(address=address, actors=args.actors))
            _, ray_s = job(root / "ray", files, embedder, ray_exec)
        stats = ray_exec.stats
        steady = sorted(stats.batches, key=lambda b: b.received)
        span = steady[-1].received - steady[0].received
        steady_files = sum(b.rows for b in steady[1:])
        record["ray"] = {
            "cluster_start_s": start_s,
            "driver_join_s": stats.connected - stats.started,
            "job_s": ray_s,
            "files_per_s": args.files / ray_s,
            "audio_s_per_s": audio_s / ray_s,
            "steady_files_per_s": steady_files / span if span > 0 else None,
            "steady_audio_s_per_s": steady_files * args.seconds / span if span > 0 else None,
            **overhead(stats),
        }
        record["ray"]["startup_s"] = (
            record["ray"]["driver_join_s"]
            + record["ray"]["first_batch_after_join_s"]
            - record["ray"]["first_batch_compute_s"]
        )
    record["load_average_end"] = os.getloadavg()

    print(f"{'':<28}{'in-process':>12}{'ray':>12}")
    for key, label in (("files_per_s", "files/s (whole job)"), ("audio_s_per_s", "audio s/s (whole job)")):
        print(f"{label:<28}{record['in_process'][key]:12.3f}{record['ray'][key]:12.3f}")
    for key in (
        "steady_files_per_s",
        "steady_audio_s_per_s",
        "cluster_start_s",
        "driver_join_s",
        "first_batch_after_join_s",
        "first_batch_compute_s",
        "startup_s",
        "mean_compute_per_batch_s",
        "mean_idle_per_batch_s",
        "overhead_per_batch",
        "mean_driver_delay_s",
    ):
        value = record["ray"].get(key)
        print(f"ray {key:<32}{value:12.3f}" if isinstance(value, float) else f"ray {key:<32}{value!s:>12}")
    print(f"load average: start {record['load_average_start']}, end {record['load_average_end']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=2))
    print(f"wrote {args.json}")


@contextmanager
def _existing(address: str) -> Iterator[tuple[str, float]]:
    yield address, 0.0


if __name__ == "__main__":
    main()
