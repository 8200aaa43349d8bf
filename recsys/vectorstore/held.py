"""A vector store held by a long-running reader (the UI, the HTTP API), let go of when idle.

The embedded store gives each reading process a view of the published version; a reader
that keeps its view while nobody asks anything would keep that version from being
deleted once newer ones serve. :class:`IdleStore` notes each use, and a daemon thread
calls the store's ``release`` after ``idle_s`` seconds without one; the next use opens
the current version again. A store without ``release`` (a Qdrant server) is held as it is.
"""

from __future__ import annotations

import threading
import time

from recsys.vectorstore.base import VectorStore


class IdleStore:
    """A store and the time of its last use; a daemon thread releases an embedded store left idle."""

    def __init__(self, store: VectorStore, idle_s: float) -> None:
        self.store, self.idle_s = store, idle_s
        self.last_use = time.monotonic()
        if hasattr(store, "release"):
            threading.Thread(target=self._reap, name="recsys-store-release", daemon=True).start()

    def touch(self) -> VectorStore:
        """Note a use now; returns the store."""
        self.last_use = time.monotonic()
        return self.store

    def _reap(self) -> None:
        while True:
            time.sleep(min(self.idle_s / 4, 5.0))
            if time.monotonic() - self.last_use > self.idle_s:
                self.store.release()  # type: ignore[attr-defined]  # waits for a query in flight
