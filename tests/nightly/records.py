"""Nightly run records planted through the catalog's own record functions, for the pages that show them."""

from __future__ import annotations

from pathlib import Path

from recsys.catalog import db, runs

STEPS = ("ingest", "embed-audio", "embed-music", "train-als", "evaluate", "publish", "index")
EVALUATION = {
    "metric": "r_precision",
    "tolerance": 0.01,
    "split": "0123456789abcdef",
    "candidate_version": "cand0002",
    "candidate": {"r_precision": 0.1234, "ndcg": 0.2345, "clicks": 3.5, "cases": 40},
    "serving_version": "serv0001",
    "serving": {"r_precision": 0.2, "ndcg": 0.3, "clicks": 2.5, "cases": 40},
    "serving_basis": "as served",
}
REFUSED = (
    "r_precision 0.1234 is 0.0766 below the serving model's 0.2000 (tolerance 0.01): serv0001 keeps serving"
)
PUBLISHED_VIDEO = "video+text recall@10 0.4100 against the serving 0.4000 (tolerance 0.01)"


def plant_runs(data_dir: Path) -> None:
    """Three runs in ``data_dir``'s SQLite catalog: one that did everything, one whose gate refused,
    one whose index step failed."""
    engine = db.make_engine(f"sqlite:///{data_dir / 'catalog.db'}")
    db.upgrade(engine)
    with engine.begin() as conn:
        first = runs.start_run(conn, runs.NIGHTLY)
        for name in STEPS:
            step = runs.start_step(conn, first, name, "f" * 64)
            if name == "embed-music":
                runs.end_step(conn, step, "skipped", metrics={"reason": "music vectors not in the pipeline"})
            else:
                runs.end_step(conn, step, "done", counts={"inputs": 3, "new": 3})
        runs.finish_run(conn, first)

        second = runs.start_run(conn, runs.NIGHTLY)
        for name in STEPS:
            step = runs.start_step(conn, second, name, "e" * 64)
            if name == "evaluate":
                runs.end_step(conn, step, "done", counts={"validation_playlists": 40}, metrics=EVALUATION)
            elif name == "publish":
                runs.end_step(conn, step, "done", metrics={"published": False, "reason": REFUSED})
            else:
                runs.end_step(conn, step, "skipped", metrics={"reason": "inputs unchanged"})
        gate = {"published": False, "reason": REFUSED, "candidate_version": "cand0002"}
        video = {
            "published": True,
            "reason": PUBLISHED_VIDEO,
            "candidate_version": "vid00002",
            "metric": "video+text recall@10",
        }
        runs.finish_run(
            conn, second, metrics={"evaluation": EVALUATION, "gate": gate, "trimodal_gate": video}
        )

        third = runs.start_run(conn, runs.NIGHTLY)
        step = runs.start_step(conn, third, "index", "d" * 64)
        runs.end_step(conn, step, "failed", error="OSError: disk full")
        runs.fail_run(conn, third, "step index: OSError: disk full")
    engine.dispose()
