"""Long-lived models and the cycle collector.

A serving process (the UI, the HTTP API) builds its models once and keeps them for its
life: hundreds of thousands of objects (the catalog's track index, the title index, the
kNN neighbours). Every full pass of Python's cycle collector walks them all while it holds
the interpreter, about 0.3 s on the trimmed MPD catalog, so a request or a click in flight
waits for it. :func:`settle_heap` collects once and moves what is left to the permanent
generation (``gc.freeze``): later passes skip it, and its objects are still freed when
nothing refers to them. Before building replacements, :func:`unsettle_heap` hands the old
ones back to the collector, so cycles among them can go.
"""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Collect, then freeze what is left (call it right after building long-lived models)."""
    gc.collect()
    gc.freeze()


def unsettle_heap() -> None:
    """Let the collector see the frozen objects again (call it before replacing models)."""
    gc.unfreeze()
