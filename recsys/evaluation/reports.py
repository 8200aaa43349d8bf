"""Evaluation reports: per method, per seed category and overall, as JSON and Markdown."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recsys.evaluation.continuation import CaseResult
from recsys.evaluation.metrics import mean_metrics
from recsys.evaluation.splits import CATEGORY_NAMES

HEADLINE = ("r_precision", "ndcg", "clicks", "r_precision_artist", "recall@50", "recall@500")
LABELS = {
    "r_precision": "R-precision",
    "r_precision_artist": "R-prec. + artist credit",
    "ndcg": "NDCG",
    "clicks": "clicks",
    "recall@50": "recall@50",
    "recall@500": "recall@500",
}


def continuation_report(
    results: Sequence[CaseResult], *, settings: Mapping[str, Any], fit_seconds: Mapping[str, float]
) -> dict[str, Any]:
    """Aggregate per-case results into the report dictionary (JSON-ready)."""
    methods = list(dict.fromkeys(r.method for r in results))
    categories = [c for c in CATEGORY_NAMES if any(r.category == c for r in results)]
    first = [r for r in results if r.method == methods[0]] if methods else []
    report: dict[str, Any] = {
        "kind": "continuation",
        "settings": dict(settings),
        "methods": methods,
        "categories": {
            c: {
                "cases": sum(1 for r in first if r.category == c),
                "adapted": sum(1 for r in first if r.category == c and r.adapted),
            }
            for c in categories
        },
        "test_playlists": len(first),
        "fit_seconds": {k: round(v, 3) for k, v in fit_seconds.items()},
        "results": {},
    }
    for method in methods:
        rows = [r for r in results if r.method == method]
        latency = np.array([r.seconds for r in rows]) * 1000.0
        report["results"][method] = {
            "overall": mean_metrics([r.metrics for r in rows]),
            "by_category": {
                c: mean_metrics([r.metrics for r in rows if r.category == c]) for c in categories
            },
            "latency_ms": {
                "p50": float(np.percentile(latency, 50)) if len(latency) else 0.0,
                "p99": float(np.percentile(latency, 99)) if len(latency) else 0.0,
            },
        }
    return report


def _fmt(metric: str, value: float) -> str:
    return f"{value:.2f}" if metric == "clicks" else f"{value:.4f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def continuation_markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown: an overall table, then R-precision, NDCG and clicks per category."""
    methods = report["methods"]
    categories = list(report["categories"])
    s = report["settings"]
    out = [
        f"{report['test_playlists']} test playlists ({s.get('split', 'split')}, seed {s.get('seed')}), "
        f"{s.get('n', 500)} recommendations each; training matrix {s.get('train_shape')} "
        f"with {s.get('train_nnz')} non-zeros.",
        "",
        "Overall (mean over test playlists; clicks: lower is better):",
        "",
        markdown_table(
            ["method", *(LABELS[m] for m in HEADLINE), "p50 ms"],
            [
                [
                    m,
                    *(_fmt(k, report["results"][m]["overall"][k]) for k in HEADLINE),
                    f"{report['results'][m]['latency_ms']['p50']:.1f}",
                ]
                for m in methods
            ],
        ),
    ]
    counts = report["categories"]
    header = [
        "method",
        *(f"{c} ({counts[c]['cases']}{'*' if counts[c]['adapted'] else ''})" for c in categories),
    ]
    for metric in ("r_precision", "ndcg", "clicks", "r_precision_artist"):
        out += [
            "",
            f"{LABELS[metric]} per seed category (cases per category in brackets):",
            "",
            markdown_table(
                header,
                [
                    [m, *(_fmt(metric, report["results"][m]["by_category"][c][metric]) for c in categories)]
                    for m in methods
                ],
            ),
        ]
    adapted = {c: v["adapted"] for c, v in counts.items() if v["adapted"]}
    if adapted:
        out += [
            "",
            "\\* adapted playlists (too short for the category; about half shown): "
            + ", ".join(f"{c} {n}" for c, n in adapted.items()),
        ]
    if "ranker" in report:
        out += ranker_markdown(report["ranker"])
    return "\n".join(out) + "\n"


def ranker_markdown(info: Mapping[str, Any], top: int = 15) -> list[str]:
    """The ranker's validation set and its feature importances (share of the total gain)."""
    importances = info["importances"]["ranker"]
    return [
        "",
        f"Ranker: fitted on {info['validation_playlists']} validation playlists carved from the "
        f"training ones ({info.get('validation_queries', info['validation_playlists'])} queries in "
        f"{info.get('folds', 1)} folds; sources fitted on a matrix {info['validation_train_shape']} "
        "without the last fold's); "
        f"feature importances (share of the total gain, the {min(top, len(importances))} largest):",
        "",
        markdown_table(
            ["feature", "gain share"], [[k, f"{v:.3f}"] for k, v in list(importances.items())[:top]]
        ),
    ]


def write_report(
    report: Mapping[str, Any], json_path: Path | None, markdown_path: Path | None = None
) -> None:
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2, sort_keys=False, default=str))
    if markdown_path is not None:
        markdown_path.parent.mkdir(parents=True, exist_ok=True)
        text = (
            continuation_markdown(report)
            if report.get("kind") == "continuation"
            else listens_markdown(report)
        )
        markdown_path.write_text(text)


def listens_markdown(report: Mapping[str, Any]) -> str:
    metrics = report["metric_names"]
    s = report["settings"]
    head = (
        f"{s.get('users')} users with held-out items ({s.get('holdout')} of each user's items, seed "
        f"{s.get('seed')}); matrix {s.get('train_shape')} with {s.get('train_nnz')} non-zeros.\n\n"
    )
    return (
        head
        + markdown_table(
            ["method", *metrics],
            [[m, *(f"{report['results'][m][k]:.4f}" for k in metrics)] for m in report["methods"]],
        )
        + "\n"
    )
