"""What an ingest did (counts, rejects by reason, unreadable inputs), and progress display."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from recsys.catalog.batches import RejectLog


@dataclass
class IngestReport:
    source: str
    inputs: int = 0
    skipped: int = 0  # inputs already ingested with the same content
    loaded: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    unreadable: list[str] = field(default_factory=list)  # inputs that could not be read at all
    messages: list[str] = field(default_factory=list)  # one line each, e.g. a 403 from an API

    def add_loaded(self, **counts: int) -> None:
        self.loaded.update(counts)

    def add_rejects(self, log: RejectLog) -> None:
        self.rejected += len(log.rows)
        for row in log.rows:
            self.reasons[_reason_kind(row["reason"])] += 1

    def merge(self, other: IngestReport) -> None:
        self.inputs += other.inputs
        self.skipped += other.skipped
        self.loaded.update(other.loaded)
        self.rejected += other.rejected
        self.reasons.update(other.reasons)
        self.unreadable.extend(other.unreadable)
        self.messages.extend(other.messages)

    @property
    def ok(self) -> bool:
        """False when an input could not be read at all (the command then exits non-zero)."""
        return not self.unreadable

    def summary(self) -> str:
        loaded = ", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in self.loaded.items()) or "nothing new"
        line = f"{self.source}: {self.inputs} input(s), {self.skipped} already ingested; loaded {loaded}; rejected {self.rejected:,}"
        if self.reasons:
            line += " (" + "; ".join(f"{n:,} {r}" for r, n in self.reasons.most_common(6)) + ")"
        if self.unreadable:
            line += f"; {len(self.unreadable)} input(s) unreadable"
        return line

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "inputs": self.inputs,
            "skipped": self.skipped,
            "loaded": dict(self.loaded),
            "rejected": self.rejected,
            "reasons": dict(self.reasons),
            "unreadable": self.unreadable,
            "messages": self.messages,
        }


def _reason_kind(reason: str) -> str:
    """The reason without its specifics ("invalid track_uri: 'x'" → "invalid track_uri")."""
    return (
        reason.split(": ", 1)[0]
        if reason.startswith(("invalid", "missing", "truncated", "unreadable"))
        else reason.split(" (")[0][:80]
    )


class Progress:
    """A rich progress bar on a terminal, silence elsewhere."""

    def __init__(self, enabled: bool) -> None:
        self._bar: Any = None
        if enabled:
            # deferred: rich's progress widgets load only when a terminal shows them
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                transient=True,
            )

    @classmethod
    def auto(cls) -> Progress:
        return cls(sys.stderr.isatty())

    @classmethod
    def quiet(cls) -> Progress:
        return cls(False)

    def start(self, description: str, total: int | None) -> Any:
        if self._bar is None:
            return None
        self._bar.start()
        return self._bar.add_task(description, total=total)

    def advance(self, task: Any, amount: int = 1) -> None:
        if self._bar is not None and task is not None:
            self._bar.advance(task, amount)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
