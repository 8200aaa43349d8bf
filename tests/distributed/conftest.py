"""A real local Ray cluster for the tests: ``ray start --head`` on 127.0.0.1, stopped by process id.

``ray stop`` would stop every Ray process on the machine, other clusters included, so the
fixture finds its own processes (those naming its temporary directory, and their
children) and ends them itself: SIGTERM, then SIGKILL for whatever is left.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, unavailable

DIES_ONCE_ENV = "RECSYS_TEST_DIES_ONCE"  # a marker file: the first actor to embed creates it and dies


@dataclass(frozen=True)
class RayCluster:
    address: str
    temp_dir: Path
    env: dict[str, str]  # what a driver process needs (the cluster's environment)
    marker: Path  # see DIES_ONCE_ENV


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _own_processes(temp_dir: Path) -> list[int]:
    """The cluster's processes: those whose command line names its temp dir, and their descendants."""
    import psutil

    roots = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(str(temp_dir) in part for part in proc.info["cmdline"] or []):
                roots.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    pids = set()
    for proc in roots:
        pids.add(proc.pid)
        with contextlib.suppress(psutil.NoSuchProcess):
            pids.update(child.pid for child in proc.children(recursive=True))
    pids.discard(os.getpid())
    return sorted(pids)


def _stop(temp_dir: Path) -> None:
    import psutil

    procs = []
    for pid in _own_processes(temp_dir):
        try:
            proc = psutil.Process(pid)
            proc.send_signal(signal.SIGTERM)
            procs.append(proc)
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=10)
    for proc in alive:  # gcs_server and raylet may ignore SIGTERM
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=10)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    # not imported here: Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when first imported
    if importlib.util.find_spec("ray") is None or importlib.util.find_spec("psutil") is None:
        unavailable("Ray is not installed (pip install 'recsys[distributed]')")
    # a short path: Ray's unix sockets live under it and socket paths are limited to about 100 bytes
    temp_dir = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))
    marker = temp_dir / "died-once"
    port = _free_port()
    env = {
        **os.environ,
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # keep 127.0.0.1 (else the driver may hang)
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        DIES_ONCE_ENV: str(marker),
    }
    ray_bin = Path(sys.executable).with_name("ray")
    command = [
        str(ray_bin),
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        "--num-cpus=2",
        "--include-dashboard=false",
        "--object-store-memory=1000000000",
        f"--temp-dir={temp_dir}",
        "--disable-usage-stats",
        # ports of their own, so that clusters of other processes on this machine do not collide
        f"--ray-client-server-port={_free_port()}",
        f"--dashboard-port={_free_port()}",
        f"--dashboard-agent-listen-port={_free_port()}",
    ]
    try:
        started = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
        if started.returncode != 0:
            pytest.fail(f"ray start failed: {started.stderr[-2000:]}")
        yield RayCluster(f"127.0.0.1:{port}", temp_dir, env, marker)
    finally:
        _stop(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)
