"""Evaluation: the reports ``recsys evaluate …`` wrote under the data dir, method against method."""

from __future__ import annotations

import altair as alt
import polars as pl
import streamlit as st

from recsys.evaluation.found import (
    KINDS,
    continuation_by_category,
    continuation_overall,
    listens_table,
    probing_table,
    retrieval_table,
)
from recsys.evaluation.reports import LABELS
from recsys.evaluation.splits import CATEGORY_NAMES
from ui import services
from ui.views import guard, literal, stop

COMMANDS = {
    "continuation": "recsys evaluate continuation --json <data dir>/reports/continuation.json",
    "listens": "recsys evaluate listens --json <data dir>/reports/listens.json",
    "probing": "recsys evaluate probing --json <data dir>/reports/probing.json",
    "video-retrieval": "recsys evaluate video-retrieval --json <data dir>/reports/video_retrieval.json",
}

st.title("Evaluation")

with guard():
    data_dir = services.settings().data_dir


reports = services.reports(str(data_dir))
if not reports:
    stop(
        "No evaluation report under the data dir yet. Write one, e.g. `"
        + COMMANDS["continuation"]
        + "`; the other kinds: `recsys evaluate listens`, `probing`, `video-retrieval` (with `--json`)."
    )

kinds = [k for k in KINDS if any(r.kind == k for r in reports)]
kind = st.segmented_control("Report", kinds, default=kinds[0], key="evaluation_kind", required=True)
of_kind = [r for r in reports if r.kind == kind]
report = st.selectbox(
    "File",
    of_kind,
    format_func=lambda r: str(r.path.relative_to(data_dir)) + f" · {r.modified:%Y-%m-%d %H:%M}",
)
assert report is not None
data = report.data
missing = [k for k in KINDS if k not in kinds]
if missing:
    st.caption("Not measured yet: " + ", ".join(f"{k} (`{COMMANDS[k]}`)" for k in missing))


def _grouped_bars(frame: pl.DataFrame, x: str, group: str, value: str, title: str, order: list[str]) -> None:
    """Bars of ``value`` per ``x``, one bar per ``group`` side by side."""
    st.altair_chart(
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(f"{x}:N", title=None, sort=order, axis=alt.Axis(labelAngle=-30)),
            xOffset=alt.XOffset(f"{group}:N"),
            y=alt.Y(f"{value}:Q", title=title),
            color=alt.Color(f"{group}:N", title=group, legend=alt.Legend(orient="top")),
            tooltip=[x, group, alt.Tooltip(f"{value}:Q", format=".4f")],
        )
        .properties(height=320),
        width="stretch",
    )


def _table(frame: pl.DataFrame) -> None:
    numbers = {
        c: st.column_config.NumberColumn(format="%.4f") for c, t in frame.schema.items() if t.is_float()
    }
    st.dataframe(frame, hide_index=True, width="stretch", column_config=numbers)


if kind == "continuation":
    settings = data.get("settings", {})
    st.caption(
        f"{data.get('test_playlists')} held-out playlists ({literal(settings.get('split', ''))}), "
        f"{settings.get('n', 500)} recommendations each. Higher is better except clicks."
    )
    _table(continuation_overall(data))
    metric = st.selectbox(
        "Per seed category",
        ["r_precision", "ndcg", "clicks", "r_precision_artist", "recall@50", "recall@500"],
        format_func=lambda m: LABELS.get(m, m),
        key="evaluation_metric",
    )
    by_category = continuation_by_category(data, metric)
    order = [c for c in CATEGORY_NAMES if c in set(by_category["category"])]
    _grouped_bars(by_category, "category", "method", "value", LABELS.get(metric, metric), order)
elif kind == "listens":
    settings = data.get("settings", {})
    st.caption(f"{settings.get('users')} users, {settings.get('holdout')} of each user's items held out.")
    table = listens_table(data)
    _table(table)
    long = table.unpivot(index="method", variable_name="metric", value_name="value")
    _grouped_bars(long, "metric", "method", "value", "score", [c for c in table.columns if c != "method"])
elif kind == "probing":
    st.caption("Linear probes on frozen playlist vectors: accuracy per task, with the chance level.")
    table = probing_table(data)
    _table(table.pivot(on="task", index="encoder", values="accuracy"))
    _grouped_bars(table, "task", "encoder", "accuracy", "accuracy", list(data["tasks"]))
else:
    st.caption(f"Model {literal(data.get('model') or '?')}: the true soundtrack among the candidates.")
    table = retrieval_table(data)
    _table(table)
    held = table.filter(pl.col("setting") == "held-out clips").unpivot(
        index=["setting", "query"],
        on=["recall@1", "recall@5", "recall@10"],
        variable_name="metric",
        value_name="value",
    )
    if held.height:
        _grouped_bars(held, "metric", "query", "value", "recall", ["recall@1", "recall@5", "recall@10"])
