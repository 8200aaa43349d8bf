"""The evaluation reports kept under a data dir, recognised by their shape and laid out as tables.

``recsys evaluate …`` writes JSON reports wherever ``--json`` says (and ``recsys demo``
keeps its own under ``<data dir>/reports``). :func:`find_reports` walks the data dir
(bounded in depth, files and size) and recognises four kinds: ``continuation`` (the
RecSys Challenge harness, also the seq2seq continuation report), ``listens``,
``probing`` (linear probes of playlist vectors) and ``video-retrieval`` (the video–music
model's held-out retrieval, also inside ``recsys train trimodal --json`` output). The
table builders turn each into Polars frames, one row per method (or encoder, or modality).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from recsys.evaluation.reports import HEADLINE, LABELS

KINDS = ("continuation", "listens", "probing", "video-retrieval")
MAX_DEPTH = 4
MAX_FILES = 2_000
MAX_BYTES = 20 * 1024 * 1024
# Folders that hold data, not reports: never walked.
_SKIP = {"vectors", "cache", "demo", "embeddings", "__pycache__"}


@dataclass(frozen=True)
class FoundReport:
    kind: str
    path: Path
    modified: datetime
    data: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.path.name} ({self.modified:%Y-%m-%d %H:%M})"


def report_kind(data: Any) -> tuple[str, dict[str, Any]] | None:
    """The kind of a parsed report and the part of it that holds the results, or None."""
    if not isinstance(data, dict):
        return None
    if data.get("kind") in ("continuation", "listens") and isinstance(data.get("results"), dict):
        return str(data["kind"]), data
    if isinstance(data.get("encoders"), dict) and isinstance(data.get("tasks"), list):
        return "probing", data
    if isinstance(data.get("retrieval"), dict):
        return "video-retrieval", data
    metrics = data.get("metrics")
    if isinstance(metrics, dict) and isinstance(metrics.get("retrieval"), dict):  # a training report
        return "video-retrieval", {**metrics, "model": data.get("version") or data.get("model")}
    return None


def find_reports(root: Path) -> list[FoundReport]:
    """Every report under ``root``, newest first."""
    found: list[FoundReport] = []
    if not root.is_dir():
        return found
    looked = 0
    base_depth = len(root.parts)
    for folder, dirs, files in os.walk(root):
        depth = len(Path(folder).parts) - base_depth
        dirs[:] = sorted(d for d in dirs if d not in _SKIP and not d.startswith(".") and depth < MAX_DEPTH)
        for name in sorted(files):
            if not name.endswith(".json") or looked >= MAX_FILES:
                continue
            looked += 1
            path = Path(folder) / name
            try:
                stat = path.stat()
                if stat.st_size > MAX_BYTES:
                    continue
                parsed = json.loads(path.read_bytes())
            except (OSError, ValueError, RecursionError):
                continue  # not a report: the data dir holds other JSON too
            recognised = report_kind(parsed)
            if recognised is not None:
                modified = datetime.fromtimestamp(stat.st_mtime, UTC)
                found.append(FoundReport(recognised[0], path, modified, recognised[1]))
    return sorted(found, key=lambda r: r.modified, reverse=True)


def continuation_overall(data: dict[str, Any]) -> pl.DataFrame:
    """One row per method: the headline metrics over every test playlist, and the median latency."""
    rows = []
    for method in data.get("methods", list(data["results"])):
        result = data["results"][method]
        overall = result.get("overall", {})
        row: dict[str, Any] = {"method": method}
        row.update({LABELS[m]: overall.get(m) for m in HEADLINE})
        row["p50 ms"] = result.get("latency_ms", {}).get("p50")
        rows.append(row)
    return pl.DataFrame(rows)


def continuation_by_category(data: dict[str, Any], metric: str = "r_precision") -> pl.DataFrame:
    """Long form: (method, category, cases, value of ``metric``), for a chart per category."""
    cases = {c: v.get("cases", 0) for c, v in data.get("categories", {}).items()}
    rows = [
        {"method": method, "category": category, "cases": cases.get(category, 0), "value": values.get(metric)}
        for method in data.get("methods", list(data["results"]))
        for category, values in data["results"][method].get("by_category", {}).items()
    ]
    schema = {"method": pl.String, "category": pl.String, "cases": pl.Int64, "value": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def listens_table(data: dict[str, Any]) -> pl.DataFrame:
    metrics = data.get("metric_names") or sorted({k for v in data["results"].values() for k in v})
    rows = [
        {"method": method, **{m: data["results"][method].get(m) for m in metrics}}
        for method in data.get("methods", list(data["results"]))
    ]
    return pl.DataFrame(rows)


def probing_table(data: dict[str, Any]) -> pl.DataFrame:
    """Long form: (encoder, task, accuracy, chance, std)."""
    rows = []
    for encoder, tasks in data["encoders"].items():
        for task in data["tasks"]:
            score = tasks.get(task)
            if isinstance(score, dict):
                rows.append(
                    {
                        "encoder": encoder,
                        "task": task,
                        "accuracy": score.get("accuracy"),
                        "chance": score.get("chance"),
                        "std": score.get("std"),
                    }
                )
    schema = {
        "encoder": pl.String,
        "task": pl.String,
        "accuracy": pl.Float64,
        "chance": pl.Float64,
        "std": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


def retrieval_table(data: dict[str, Any]) -> pl.DataFrame:
    """One row per query kind (video, text, video+text, and the twins and ablation runs)."""
    rows = []

    def add(setting: str, block: dict[str, Any] | None) -> None:
        for query in ("video", "text", "video+text"):
            values = (block or {}).get(query)
            if isinstance(values, dict):
                rows.append(
                    {
                        "setting": setting,
                        "query": query,
                        "recall@1": values.get("recall@1"),
                        "recall@5": values.get("recall@5"),
                        "recall@10": values.get("recall@10"),
                        "median rank": values.get("median_rank"),
                    }
                )

    add("held-out clips", data.get("retrieval"))
    add("music-only twins", data.get("twins"))
    for name, run in (data.get("ablation") or {}).items():
        add(f"ablation {name}", run.get("retrieval") if isinstance(run, dict) else None)
    schema = {
        "setting": pl.String,
        "query": pl.String,
        "recall@1": pl.Float64,
        "recall@5": pl.Float64,
        "recall@10": pl.Float64,
        "median rank": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)
