"""Ordered map over worker threads with bounded look-ahead: decode the next files while the model runs.

Decoding (libsndfile, FFmpeg, soxr) releases the GIL, so on a machine with spare cores
or with the model on a GPU, decoding the next files on threads while the current batch
goes through the model keeps the model busy instead of waiting for the CPU.
:func:`map_ahead` yields ``func(item)`` in input order; at most ``ahead`` items are
decoded beyond the one being consumed, so memory stays bounded however long the input.
An exception raised by ``func`` is raised again when its item's turn comes; items not
yet consumed when the caller stops are cancelled.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """Decode threads: one per spare core (a core stays with the model), at least one, at most eight."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def map_ahead(
    func: Callable[[T], R], items: Iterable[T], *, workers: int | None = None, ahead: int | None = None
) -> Generator[R, None, None]:
    """``func`` over ``items`` on ``workers`` threads, results in input order (see the module docstring)."""
    workers = workers or default_workers()
    ahead = max(1, ahead if ahead is not None else 2 * workers)
    source = iter(items)
    pending: deque[Future[R]] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="recsys-ahead") as pool:
        try:
            for item in source:
                pending.append(pool.submit(func, item))
                if len(pending) > ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
