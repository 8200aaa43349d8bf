"""Catalog: what the catalog holds, what was rejected and why, and which models serve it."""

from __future__ import annotations

from bisect import bisect_left

import altair as alt
import polars as pl
import streamlit as st

from ui import services
from ui.views import guard, stop

BAR = "#1F6F5C"
BUCKET_EDGES = [1, 2, 5, 10, 20, 50, 100]
BUCKET_LABELS = ["1", "2", "3–5", "6–10", "11–20", "21–50", "51–100", "over 100"]

st.title("Catalog")

with guard():
    url = services.catalog_url()
    summary = services.catalog_summary(url)

counts = summary["counts"]
st.caption(f"Database: `{services.engine().url.render_as_string(hide_password=True)}`")
if not any(counts.values()):
    stop(
        "The catalog is empty. Load some playlists with `recsys ingest mpd PATH…`, "
        "or build the demo catalog with `recsys demo`."
    )

labels = {
    "playlists": "Playlists",
    "playlist_tracks": "Playlist entries",
    "tracks": "Tracks",
    "artists": "Artists",
    "albums": "Albums",
    "listens": "Listens",
    "rejects": "Rejects",
    "feedback": "Ratings",
}
shown = list(labels.items())
for row in (shown[:4], shown[4:]):  # two rows of four: a million-row count must fit its column
    for column, (key, label) in zip(st.columns(4), row, strict=False):
        column.metric(label, f"{counts.get(key, 0):,}")
opinions = summary["feedback"]
if opinions["users"]:
    st.caption(
        f"Ratings: {opinions['likes']:,} likes and {opinions['dislikes']:,} dislikes from "
        f"{opinions['users']:,} listener(s), kept for continuation."
    )

left, right = st.columns(2)
with left:
    st.subheader("Playlist lengths")
    lengths = pl.DataFrame(summary["lengths"], schema=["tracks", "playlists"], orient="row")
    if lengths.height:
        st.altair_chart(
            alt.Chart(lengths)
            .mark_bar(color=BAR)
            .encode(
                x=alt.X("tracks:Q", bin=alt.Bin(maxbins=40), title="tracks in the playlist"),
                y=alt.Y("sum(playlists):Q", title="playlists"),
                tooltip=[alt.Tooltip("sum(playlists):Q", title="playlists")],
            ),
            width="stretch",
        )
    else:
        st.caption("No playlists in the catalog namespace.")
with right:
    st.subheader("Tracks per artist")
    per_artist = pl.DataFrame(summary["per_artist"], schema=["tracks", "artists"], orient="row")
    if per_artist.height:
        bucket = [BUCKET_LABELS[bisect_left(BUCKET_EDGES, n)] for n in per_artist["tracks"]]
        buckets = (
            per_artist.with_columns(pl.Series("tracks by the artist", bucket))
            .group_by("tracks by the artist")
            .agg(pl.col("artists").sum())
        )
        st.altair_chart(
            alt.Chart(buckets)
            .mark_bar(color=BAR)
            .encode(
                x=alt.X("tracks by the artist:N", sort=BUCKET_LABELS, axis=alt.Axis(labelAngle=0)),
                y=alt.Y("artists:Q", title="artists"),
                tooltip=["tracks by the artist", "artists"],
            ),
            width="stretch",
        )
    else:
        st.caption("No artists yet.")

st.subheader("Most played artists")
top = pl.DataFrame(summary["top_artists"], schema=["artist", "entries", "playlists"], orient="row")
if top.height:
    st.altair_chart(
        alt.Chart(top)
        .mark_bar(color=BAR)
        .encode(
            x=alt.X("entries:Q", title="playlist entries"),
            y=alt.Y("artist:N", sort="-x", title=None, axis=alt.Axis(labelLimit=260, labelOverlap=False)),
            tooltip=["artist", "entries", "playlists"],
        )
        .properties(height=max(120, 26 * top.height)),
        width="stretch",
    )
else:
    st.caption("No playlist entries yet.")

left, right = st.columns(2)
with left:
    st.subheader("Models in use")
    models = summary["models"]
    if models:
        st.dataframe(
            pl.DataFrame(
                [
                    {"model": m.kind, "version": m.version, "trained": m.created_at, "versions": m.versions}
                    for m in models
                ]
            ),
            hide_index=True,
            width="stretch",
        )
    else:
        st.info("No model trained yet: `recsys train als` trains the one continuation uses.")
with right:
    st.subheader("Rejected records")
    rejects = summary["rejects"]
    if rejects:
        st.dataframe(
            pl.DataFrame(rejects, schema=["source", "reason", "records"], orient="row"),
            hide_index=True,
            width="stretch",
        )
    else:
        st.success("Nothing was rejected.")
st.caption("Counts are refreshed every minute; `recsys catalog stats` prints the same from a terminal.")
