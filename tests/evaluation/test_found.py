"""Reports are found under a data dir by their shape, and laid out as tables that keep their numbers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from recsys.evaluation.found import (
    MAX_DEPTH,
    continuation_by_category,
    continuation_overall,
    find_reports,
    listens_table,
    probing_table,
    report_kind,
    retrieval_table,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "evaluation"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "reports").mkdir(parents=True)
    for name in ("continuation", "listens", "probing", "video_retrieval"):
        (root / "reports" / f"{name}.json").write_text((DOCS / f"{name}.json").read_text())
    (root / "trimodal").mkdir()
    (root / "trimodal" / "train.json").write_text((DOCS / "video_retrieval_train.json").read_text())
    # not reports: other JSON, broken JSON, deep nesting, a store's files, a folder too deep
    (root / "reports" / "notes.json").write_text(json.dumps({"kind": "notes"}))
    (root / "reports" / "broken.json").write_text('{"kind": "continuation", ')
    (root / "reports" / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (root / "vectors" / "tracks").mkdir(parents=True)
    (root / "vectors" / "tracks" / "v1.json").write_text((DOCS / "continuation.json").read_text())
    deep = root.joinpath(*[f"d{i}" for i in range(MAX_DEPTH + 1)])
    deep.mkdir(parents=True)
    (deep / "continuation.json").write_text((DOCS / "continuation.json").read_text())
    old = root / "reports" / "continuation.json"
    os.utime(old, (old.stat().st_atime, old.stat().st_mtime - 3600))
    return root


def test_reports_are_found_by_shape_newest_first(data_dir: Path) -> None:
    found = find_reports(data_dir)
    assert sorted((r.kind, r.path.name) for r in found) == [
        ("continuation", "continuation.json"),
        ("listens", "listens.json"),
        ("probing", "probing.json"),
        ("video-retrieval", "train.json"),
        ("video-retrieval", "video_retrieval.json"),
    ]
    assert found[-1].path.name == "continuation.json"  # an hour older than the others
    assert find_reports(data_dir / "missing") == []


def test_a_training_report_is_read_for_its_metrics() -> None:
    kind, data = report_kind(json.loads((DOCS / "video_retrieval_train.json").read_text()))  # type: ignore[misc]
    assert kind == "video-retrieval" and "retrieval" in data and data["model"]


def test_tables_keep_the_reports_numbers() -> None:
    continuation = json.loads((DOCS / "continuation.json").read_text())
    overall = continuation_overall(continuation)
    assert list(overall["method"]) == continuation["methods"]
    hybrid = overall.filter(overall["method"] == "hybrid")
    assert hybrid["R-precision"][0] == continuation["results"]["hybrid"]["overall"]["r_precision"]
    by_category = continuation_by_category(continuation, "ndcg")
    assert by_category.height == len(continuation["methods"]) * len(continuation["categories"])
    row = by_category.filter((by_category["method"] == "knn") & (by_category["category"] == "title_only"))
    assert row["value"][0] == continuation["results"]["knn"]["by_category"]["title_only"]["ndcg"]
    assert row["cases"][0] == continuation["categories"]["title_only"]["cases"]

    listens = json.loads((DOCS / "listens.json").read_text())
    table = listens_table(listens)
    assert table.columns == ["method", *listens["metric_names"]]
    assert table.filter(table["method"] == "als")["ndcg@10"][0] == listens["results"]["als"]["ndcg@10"]

    probing = json.loads((DOCS / "probing.json").read_text())
    probes = probing_table(probing)
    assert probes.height == len(probing["encoders"]) * len(probing["tasks"])
    sif = probes.filter((probes["encoder"] == "sif") & (probes["task"] == "length"))
    assert sif["accuracy"][0] == probing["encoders"]["sif"]["length"]["accuracy"]

    video = json.loads((DOCS / "video_retrieval.json").read_text())
    recalls = retrieval_table(video)
    held = recalls.filter((recalls["setting"] == "held-out clips") & (recalls["query"] == "video+text"))
    assert held["recall@10"][0] == video["retrieval"]["video+text"]["recall@10"]
    assert set(recalls["setting"]) >= {"held-out clips", "music-only twins"}
    assert any(s.startswith("ablation ") for s in recalls["setting"])
