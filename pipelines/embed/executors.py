"""Where an embedding job's batches run: in this process (the default) or on Ray Data actors.

A job hands an executor its pending tracks and a :class:`Work`: a small picklable recipe
(an embedder's class and its config dataclass, never a loaded model) whose ``open()``
builds the model once and returns a :class:`Worker` that decodes one file
(``decode``) and embeds a batch of decoded files (``embed``), giving one
:class:`Outcome` per track: its vector, or why it was rejected. The executor yields the
outcomes batch by batch; the job, in the driving process, writes them (vectors through
:class:`pipelines.embed.writer.VectorWriter`, rejects through ``RejectLog``) exactly as
it always has, so what the catalog and the store hold does not depend on the executor.

- :class:`LocalExecutor`: this process. The next batch's files decode on threads
  (:func:`recsys.media.ahead.map_ahead`) while the current one goes through the model.
- :class:`RayExecutor`: a Ray Data dataset of the pending tracks
  (``ray.data.from_items``), ``map_batches`` over a fixed pool of actors
  (``ActorPoolStrategy``) that each build the model once and then decode and embed
  whole batches; one GPU per actor where the cluster has GPUs, half a CPU otherwise (on
  a small machine actors holding whole CPUs starve Ray's own read tasks). An actor that
  dies is restarted and its batch sent again, a bounded number of times
  (:data:`MAX_RESTARTS`, :data:`MAX_TASK_RETRIES`; Ray Data's own default is without a
  bound, so a file that kills every actor it meets would hold the job forever: here the
  job fails, naming the cause, and keeps what it wrote). The driver streams the results
  (``iter_batches``) as they come.

A job that hands over its tracks in several parts (a page of the catalog at a time) runs
them inside one ``session()``: for Ray, one connection to the cluster for all of them.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from recsys.config import EXECUTORS
from recsys.errors import ClusterError, ConfigError
from recsys.media.ahead import map_ahead

MAX_RESTARTS = 4  # times Ray starts an actor again after it died (its model is built again)
MAX_TASK_RETRIES = 4  # times a batch whose actor died is sent again
CPU_PER_ACTOR = 0.5  # on a CPU-only cluster: whole CPUs per actor starve Ray Data's read tasks
# What Ray's core worker writes to stderr, whatever its level, when RAY_BACKEND_LOG_LEVEL is set
RAY_LEVEL_NOTICE = "Set ray log level from environment variable RAY_BACKEND_LOG_LEVEL"


class Item(Protocol):
    """A pending track: its id and where its file is."""

    @property
    def track_id(self) -> int: ...

    @property
    def uri(self) -> str: ...


@dataclass(frozen=True)
class Outcome:
    """What became of one track: its vector, or the reason it was rejected."""

    track_id: int
    vector: np.ndarray | None  # (dim,) float32; None when rejected
    seconds: float = 0.0  # seconds of audio embedded
    reason: str | None = None  # the reject reason, as stored in ``ingest_reject``
    message: str | None = None  # one line for the report ("file: reason")
    kind: str | None = None  # the kind of reject, counted in the report


class Worker(Protocol):
    """A built model and how to feed it: ``decode`` one file (thread-safe), ``embed`` a decoded batch."""

    def decode(self, item: Any) -> Any: ...

    def embed(self, decoded: list[tuple[Any, Any]]) -> list[Outcome]: ...


class Work(Protocol):
    """A picklable recipe: ``open()`` builds the model (once per process) and returns its worker."""

    def open(self) -> Worker: ...


@dataclass
class BatchTiming:
    """One batch, for measuring an executor: its size, the seconds its worker spent decoding
    and embedding it, which worker (process id) and when it finished, when the driver got it
    (wall-clock times, comparable between processes of one machine)."""

    rows: int
    busy_s: float
    worker: int
    finished: float  # time.time() in the worker
    received: float  # time.time() in the driving process


@dataclass
class ExecutorStats:
    started: float = 0.0  # time.time() when the executor began (before connecting, for Ray)
    connected: float = 0.0  # time.time() once connected to the cluster (Ray) or the model built
    batches: list[BatchTiming] = field(default_factory=list)


class Executor(Protocol):
    stats: ExecutorStats

    def session(self) -> AbstractContextManager[None]:
        """Held around several ``run`` calls of one job (for Ray: one connection to the cluster)."""
        ...

    def run(self, work: Work, items: list[Any], batch_size: int) -> Iterator[list[Outcome]]:
        """The outcomes of ``items``, batch by batch (each track exactly once)."""
        ...


class LocalExecutor:
    """Batches in this process: decode ahead on threads, embed per batch (see the module docstring)."""

    def __init__(self, worker: Worker | None = None) -> None:
        self.worker = worker  # an already built worker (the job's own model), else built from the work
        self.stats = ExecutorStats()

    def session(self) -> AbstractContextManager[None]:
        return nullcontext()

    def run(self, work: Work, items: list[Any], batch_size: int) -> Iterator[list[Outcome]]:
        self.stats = ExecutorStats(started=time.time())
        worker = self.worker or work.open()
        self.stats.connected = time.time()
        decoded = map_ahead(lambda item: (item, worker.decode(item)), items, ahead=batch_size)
        try:
            while True:
                batch = list(itertools.islice(decoded, batch_size))
                if not batch:
                    return
                clock = time.perf_counter()
                outcomes = worker.embed(batch)
                busy, now = time.perf_counter() - clock, time.time()
                self.stats.batches.append(BatchTiming(len(batch), busy, os.getpid(), now, now))
                yield outcomes
        finally:
            decoded.close()


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: RAY_ADDRESS, or a Ray started for this process
    actors: int | None = None  # None: one per GPU of the cluster, else 2


class RayExecutor:
    """Batches on Ray Data actors (see the module docstring); the driver is this process."""

    def __init__(self, options: RayOptions | None = None) -> None:
        self.options = options or RayOptions()
        self.stats = ExecutorStats()
        self._held: list[tuple[Any, bool]] | None = None  # in a session: (Ray, whether it connected)

    @contextmanager
    def session(self) -> Iterator[None]:
        """One connection for the runs inside: made by the first run that has tracks, closed at the end."""
        self._held = []
        try:
            yield
        finally:
            held, self._held = self._held, None
            if held and held[0][1]:  # the session connected: disconnect (a caller's own connection stays)
                held[0][0].shutdown()

    def run(self, work: Work, items: list[Any], batch_size: int) -> Iterator[list[Outcome]]:
        self.stats = ExecutorStats(started=time.time())
        if not items:
            return
        if self._held:
            ray, joined = self._held[0][0], False
        else:
            ray, joined = _connect(self.options.address)
            if self._held is not None:  # the session disconnects
                self._held.append((ray, joined))
                joined = False
        try:
            self.stats.connected = time.time()
            yield from self._stream(ray, work, items, batch_size)
        finally:
            if joined:  # this run connected: disconnect (a caller's own connection is left open)
                ray.shutdown()

    def _stream(self, ray: Any, work: Work, items: list[Any], batch_size: int) -> Iterator[list[Outcome]]:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        actors = self.options.actors or gpus or 2
        resources: dict[str, Any] = {"num_gpus": 1} if gpus else {"num_cpus": CPU_PER_ACTOR}
        rows = [dataclasses.asdict(item) for item in items]
        dataset = ray.data.from_items(rows, override_num_blocks=max(1, -(-len(rows) // batch_size)))
        with warnings.catch_warnings():
            # Ray 2.60 warns that extra remote arguments go in 2.64 and names no replacement for these
            # two; the `distributed` extra stays below 2.64 until it does
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated")
            results = dataset.map_batches(
                RayBatches,
                fn_constructor_args=(work, type(items[0])),
                batch_size=batch_size,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=max(1, min(actors, len(rows)))),
                max_restarts=MAX_RESTARTS,
                max_task_retries=MAX_TASK_RETRIES,
                **resources,
            )
        for batch in results.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=1):
            outcomes = _outcomes(batch)
            if outcomes:
                timing = BatchTiming(
                    len(outcomes),
                    float(batch["busy_s"][0]),
                    int(batch["worker"][0]),
                    float(batch["finished"][0]),
                    time.time(),
                )
                self.stats.batches.append(timing)
                yield outcomes


class RayBatches:
    """The Ray Data actor: builds the model once, then decodes and embeds whole batches."""

    def __init__(self, work: Work, item_type: type) -> None:
        self.worker = work.open()
        self.item_type = item_type  # the job's pending-track dataclass, rebuilt from each row

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        clock = time.perf_counter()
        names = list(batch)
        pending = [
            self.item_type(**{name: _plain(batch[name][row]) for name in names})
            for row in range(len(batch[names[0]]))
        ]
        outcomes = self.worker.embed([(item, self.worker.decode(item)) for item in pending])
        busy = time.perf_counter() - clock
        return _columns(outcomes, busy)


def _plain(value: Any) -> Any:
    """A numpy scalar from a Ray Data column as the Python value it was."""
    return value.item() if isinstance(value, np.generic) else value


def _columns(outcomes: list[Outcome], busy_s: float) -> dict[str, np.ndarray]:
    """Outcomes as the numpy columns of a Ray Data batch (a rejected track has a zero vector)."""
    dim = next((len(o.vector) for o in outcomes if o.vector is not None), 0)
    vectors = np.zeros((len(outcomes), dim), dtype=np.float32)
    for row, outcome in enumerate(outcomes):
        if outcome.vector is not None:
            vectors[row] = outcome.vector
    text = lambda values: np.array([v or "" for v in values], dtype=object)  # noqa: E731
    return {
        "track_id": np.array([o.track_id for o in outcomes], dtype=np.int64),
        "ok": np.array([o.vector is not None for o in outcomes], dtype=bool),
        "vector": vectors,
        "seconds": np.array([o.seconds for o in outcomes], dtype=np.float64),
        "reason": text(o.reason for o in outcomes),
        "message": text(o.message for o in outcomes),
        "kind": text(o.kind for o in outcomes),
        "busy_s": np.full(len(outcomes), busy_s, dtype=np.float64),
        "worker": np.full(len(outcomes), os.getpid(), dtype=np.int64),
        "finished": np.full(len(outcomes), time.time(), dtype=np.float64),
    }


def _outcomes(batch: dict[str, np.ndarray]) -> list[Outcome]:
    out = []
    for row, track_id in enumerate(batch["track_id"]):
        if batch["ok"][row]:
            vector = np.asarray(batch["vector"][row], dtype=np.float32)
            out.append(Outcome(int(track_id), vector, float(batch["seconds"][row])))
        else:
            out.append(
                Outcome(
                    int(track_id),
                    None,
                    reason=str(batch["reason"][row]),
                    message=str(batch["message"][row]),
                    kind=str(batch["kind"][row]),
                )
            )
    return out


def _connect(address: str | None) -> tuple[Any, bool]:
    """Ray, connected to the cluster at ``address`` with its own progress bars and logs silenced,
    and whether this call connected (False: the process was connected already)."""
    if address and address.rsplit(":", 1)[0] in {"127.0.0.1", "localhost"}:
        # a cluster on the loopback address (one machine): without this Ray, when first imported,
        # takes the machine's routable address for the driver's node and never finds the cluster
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray  # deferred: ray (distributed extra)
        import ray.data  # deferred: ray (distributed extra)
    except ImportError as exc:
        raise ConfigError(
            "the Ray executor needs Ray: pip install 'recsys[distributed]' (ray[data])"
        ) from exc
    for name in ("ray", "ray.data", "ray.train", "ray.tune"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    joined = not ray.is_initialized()
    try:
        with _without_level_notice():
            ray.init(
                address=address,
                log_to_driver=False,
                logging_level=logging.ERROR,
                include_dashboard=False,
                ignore_reinit_error=True,
            )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterError(f"cannot connect to the Ray cluster at {address or 'RAY_ADDRESS'}: {exc}") from exc
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.enable_operator_progress_bars = False
    context.verbose_progress = False
    context.print_on_execution_start = False
    return ray, joined


@contextmanager
def _without_level_notice() -> Iterator[None]:
    """Standard error (the file descriptor: Ray's core worker writes to it directly) held in a
    temporary file while Ray starts in this process, then written out without Ray's line saying
    which log level it read (``RAY_LEVEL_NOTICE``); everything else comes out as it was."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode(errors="replace").splitlines(keepends=True)
            kept = "".join(line for line in lines if RAY_LEVEL_NOTICE not in line)
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def make_executor(kind: str, *, address: str | None = None, actors: int | None = None) -> Executor | None:
    """The executor a command asked for: None for ``local`` (the job's own in-process path)."""
    if kind == "local":
        return None
    if kind == "ray":
        return RayExecutor(RayOptions(address=address, actors=actors))
    raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}, not {kind!r}")
