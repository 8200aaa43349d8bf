"""Pipeline runs: the nightly pipeline's history, each run step by step, with the gate's figures."""

from __future__ import annotations

import polars as pl
import streamlit as st

from recsys.catalog import runs
from ui import services
from ui.views import guard, literal, stop

SHOWN = 50  # the newest runs listed

st.title("Pipeline runs")

with guard(), services.engine().connect() as conn:
    history = [record.as_dict() for record in runs.history(conn, runs.NIGHTLY, n=SHOWN)]

if not history:
    stop(
        "No nightly run yet. Run one with `recsys nightly` (a cron line, a systemd timer or a "
        "Kubernetes CronJob can run it every night: see docs/nightly.md)."
    )


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:,.1f} s"


def _gate(run: dict, key: str = "gate") -> str:
    """The decision of a gate (``gate``: ALS; ``trimodal_gate``: the video–music model)."""
    gate = run["metrics"].get(key)
    if not gate:
        return ""
    return ("published: " if gate["published"] else "refused: ") + gate["reason"]


st.caption(f"The newest {len(history)} run(s); `recsys nightly history` prints the same.")
st.dataframe(
    pl.DataFrame(
        {
            "run": [r["id"] for r in history],
            "status": [r["status"] for r in history],
            "started (UTC)": [r["started_at"][:19].replace("T", " ") for r in history],
            "took": [_seconds(r["seconds"]) for r in history],
            # a failed or killed run says why in the overview, not only once it is chosen below
            "error": [(r["error"] or "").splitlines()[0][:120] if r["error"] else "" for r in history],
            "steps done": [
                ", ".join(s["step"] for s in r["steps"] if s["status"] == "done") for r in history
            ],
            "gate": [_gate(r) for r in history],
            "video–music gate": [_gate(r, "trimodal_gate") for r in history],
        }
    ),
    hide_index=True,
    width="stretch",
)

chosen = st.selectbox(
    "Run",
    history,
    format_func=lambda r: f"run {r['id']} · {r['status']} · {r['started_at'][:16].replace('T', ' ')}",
    key="runs_run",
)
assert chosen is not None
if chosen["error"]:
    st.error(f"Failed: {literal(chosen['error'])}")
steps = chosen["steps"]
st.subheader("Steps")
st.dataframe(
    pl.DataFrame(
        {
            "step": [s["step"] for s in steps],
            "status": [s["status"] for s in steps],
            "took": [_seconds(s["seconds"]) for s in steps],
            "counts": [runs.counts_text(s["counts"]) for s in steps],
            "why": [s["metrics"].get("reason") or s["error"] or "" for s in steps],
        },
        schema=dict.fromkeys(("step", "status", "took", "counts", "why"), pl.String),
    ),
    hide_index=True,
    width="stretch",
)

evaluation = chosen["metrics"].get("evaluation")
if evaluation:
    st.subheader("Gate")
    metric = evaluation["metric"]
    st.caption(
        f"On {evaluation['candidate']['cases']} validation playlists; published when the candidate's {metric} "
        f"is at most {evaluation['tolerance']:g} below the serving model's. {literal(_gate(chosen))}"
    )
    sides = {"candidate": evaluation["candidate"], "serving": evaluation["serving"] or {}}
    names = ["r_precision", "ndcg", "clicks"]
    st.dataframe(
        pl.DataFrame(
            {
                "model": [
                    f"candidate {evaluation['candidate_version']}",
                    f"serving {evaluation['serving_version'] or '(none)'}",
                ],
                **{name: [sides["candidate"].get(name), sides["serving"].get(name)] for name in names},
            },
            schema={"model": pl.String, **{name: pl.Float64 for name in names}},
        ),
        hide_index=True,
        width="stretch",
        column_config={n: st.column_config.NumberColumn(format="%.4f") for n in names},
    )
    if evaluation.get("serving_basis") and evaluation["serving_basis"] != "as served":
        st.caption(f"Serving model scored by {literal(evaluation['serving_basis'])}.")
