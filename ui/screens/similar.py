"""Similar: tracks that sound like a track, playlists like a playlist, and a map of a collection."""

from __future__ import annotations

from collections.abc import Callable

import altair as alt
import polars as pl
import streamlit as st

from recsys.recommend.similar import (
    MAP_SAMPLE,
    holding_vector,
    similar_playlists,
    similar_tracks,
    tracks_holding,
)
from recsys.vectorstore.collections import PLAYLISTS, TRACKS
from ui import services
from ui.views import audio_player, guard, literal

TRACK_VECTORS = {
    "audio": "CultureMERT audio",
    "audio_dsp": "audio descriptors (DSP)",
    "music": "video–music model's music space",
    "cf": "played alike: ALS factors",
    "seq2seq": "played alike: playlist encoder",
}
PLAYLIST_VECTORS = {
    "seq2seq": "playlist encoder (seq2seq)",
    "sif": "bag of tracks (SIF)",
    "mean_als": "mean of ALS factors",
}
EMBED_HINT = {
    TRACKS: "`recsys embed audio` (CultureMERT), `recsys embed demo-audio` (DSP), `recsys embed music`, "
    "or `recsys embed playlists --model mean-als` (ALS factors)",
    PLAYLISTS: "`recsys embed playlists --model sif` (or seq2seq after `recsys train playlist-encoder`)",
}

st.title("Similar")

with guard():
    url = services.catalog_url()
    services.engine()
    target = services.settings().vector_target
    track_vectors = services.vector_counts(target, TRACKS, services.store_stamp(TRACKS))
    playlist_vectors = services.vector_counts(target, PLAYLISTS, services.store_stamp(PLAYLISTS))


def _tracks() -> None:
    usable = sorted((v for v in TRACK_VECTORS if v in track_vectors), key=lambda v: -track_vectors[v])
    if not usable:
        st.info(f"No track has a vector yet. Embed some: {EMBED_HINT[TRACKS]}.")
        return
    by = st.selectbox(
        "Sounds like, by",
        usable,
        format_func=lambda v: f"{TRACK_VECTORS[v]} ({track_vectors[v]:,} tracks)",
        key="similar_by",
    )
    words = st.text_input("Find a track", key="similar_track_query", placeholder="title or artist words")
    preset = st.query_params.get("track")
    store = services.store()
    if words.strip():
        hits = services.search_tracks(url, words, 100)
        labels = {h.track_id: f"{h.title} — {h.artist} · #{h.track_id}" for h in hits}
        options = holding_vector(store, list(labels), by)
        if not options:
            st.caption(
                f"{len(hits)} track(s) match those words, none with this vector."
                if hits
                else "No track matches those words."
            )
    else:
        some = tracks_holding(store, by, limit=25)
        labels = {t.track_id: f"{t.title or '?'} — {t.artist or '?'} · #{t.track_id}" for t in some}
        options = list(labels)
    if (
        preset
        and preset.isdigit()
        and int(preset) not in options
        and holding_vector(store, [int(preset)], by)
    ):
        known = services.tracks_by_id(url, (int(preset),))
        for t in known.values():
            options.insert(0, t.track_id)
            labels[t.track_id] = f"{t.title} — {t.artist} · #{t.track_id}"
    track = st.selectbox(
        "Track",
        options,
        format_func=lambda t: labels.get(t, f"track {t}"),
        index=0 if options else None,
        placeholder="search above, then pick a track",
        key="similar_track",
    )
    culture_col, genre_col, count_col = st.columns([2, 2, 1])
    culture = culture_col.text_input("Culture", key="similar_culture", placeholder="any, e.g. indian")
    genre = genre_col.text_input("Genre", key="similar_genre", placeholder="any, e.g. jazz")
    n = count_col.number_input("How many", 1, 100, 10, key="similar_n")
    if track is None:
        return
    filters = {k: v for k, v in (("culture", culture), ("genre", genre)) if v.strip()}
    found = similar_tracks(store, int(track), by=by, filters=filters, n=int(n))
    st.caption(f"{len(found)} tracks like “{literal(labels.get(int(track), track))}”, by {TRACK_VECTORS[by]}")
    files = services.audio_files(url, tuple([int(track), *(t.track_id for t in found)]))
    if int(track) in files:
        st.caption("The track itself:")
        audio_player(files[int(track)])
    if not found:
        st.info("No track passes those filters.")
    for t in found:
        with st.container(border=True):
            text, score = st.columns([6, 1])
            text.markdown(f"**{literal(t.title or '?')}** — {literal(t.artist or '?')}")
            tags = ", ".join(t.cultures + t.genres)
            if tags:
                text.caption(literal(tags))
            score.caption(f"similarity {t.score:.3f}")
            audio_player(files.get(t.track_id))


def _playlists() -> None:
    usable = [v for v in PLAYLIST_VECTORS if v in playlist_vectors]
    if not usable:
        st.info(f"No playlist has a vector yet. Embed them: {EMBED_HINT[PLAYLISTS]}.")
        return
    left, right = st.columns([3, 1])
    by = left.selectbox(
        "Alike, by",
        usable,
        format_func=lambda v: f"{PLAYLIST_VECTORS[v]} ({playlist_vectors[v]:,} playlists)",
        key="similar_playlist_by",
    )
    n = right.number_input("How many", 1, 100, 10, key="similar_playlist_n")
    query = st.text_input("Find a playlist", key="similar_playlist_query", placeholder="words of its name")
    hits = services.playlist_page(url, query, 1, 100).hits
    labels = {h.playlist_id: f"{h.name} · {h.num_tracks} tracks · #{h.playlist_id}" for h in hits}
    options = holding_vector(services.store(), list(labels), by, PLAYLISTS)
    if hits and not options:
        st.caption(f"{len(hits)} playlist(s) match, none with this vector yet.")
    playlist = st.selectbox(
        "Playlist",
        options,
        format_func=lambda p: labels[p],
        index=0 if options else None,
        placeholder="no playlist matches",
        key="similar_playlist",
    )
    if playlist is None:
        return
    alike = similar_playlists(services.store(), int(playlist), by=by, n=int(n))
    st.dataframe(
        pl.DataFrame(
            {
                "id": [p.playlist_id for p in alike],
                "name": [p.name or "" for p in alike],
                "tracks": [p.num_tracks for p in alike],
                "similarity": [round(p.score, 4) for p in alike],
            },
            schema={"id": pl.Int64, "name": pl.String, "tracks": pl.Int64, "similarity": pl.Float64},
        ),
        hide_index=True,
        width="stretch",
        column_config={"name": st.column_config.TextColumn(width="large")},
    )


def _map() -> None:
    choices = [(TRACKS, v) for v in track_vectors] + [(PLAYLISTS, v) for v in playlist_vectors]
    if not choices:
        st.info(f"Nothing to draw yet: embed tracks ({EMBED_HINT[TRACKS]}) or playlists.")
    else:
        left, right = st.columns(2)
        collection, vector = left.selectbox(
            "Vectors",
            choices,
            format_func=lambda c: f"{c[0]} · {c[1]}",
            key="map_vectors",
        )
        colours = ["cultures", "genres", "artist"] if collection == TRACKS else ["namespace", "num_tracks"]
        colour = right.selectbox("Colour by", colours, key="map_colour")
        drawn = services.vector_map(target, collection, vector, services.store_stamp(collection), MAP_SAMPLE)
        name_field = "title" if collection == TRACKS else "name"

        def _first(value: object) -> str:
            if isinstance(value, list):
                return str(value[0]) if value else "(none)"
            return "(none)" if value is None else str(value)

        points = pl.DataFrame(
            {
                "x": drawn.xy[:, 0],
                "y": drawn.xy[:, 1],
                "id": drawn.ids,
                "name": [str(p.get(name_field) or "") for p in drawn.payloads],
                "artist": [str(p.get("artist") or "") for p in drawn.payloads],
                colour: [_first(p.get(colour)) for p in drawn.payloads],
            }
        )
        shown = (
            f"{len(drawn.ids):,} of {drawn.total:,}" if drawn.total > len(drawn.ids) else f"{drawn.total:,}"
        )
        st.caption(
            f"{shown} points, projected on their first two principal components "
            f"({drawn.explained[0]:.0%} and {drawn.explained[1]:.0%} of the variance). Hover a point to name it."
        )
        tooltip = ["name", "artist", colour, "id"] if collection == TRACKS else ["name", colour, "id"]
        st.altair_chart(
            alt.Chart(points)
            .mark_circle(size=36, opacity=0.75)
            .encode(
                x=alt.X("x:Q", title="component 1", axis=alt.Axis(labels=False, ticks=False)),
                y=alt.Y("y:Q", title="component 2", axis=alt.Axis(labels=False, ticks=False)),
                color=alt.Color(f"{colour}:N", legend=alt.Legend(orient="right", symbolLimit=20)),
                tooltip=tooltip,
            )
            .properties(height=520)
            .interactive(),
            width="stretch",
        )


@st.fragment
def _part(draw: Callable[[], None]) -> None:
    """One tab's content: its searches and choices rerun it alone, not the other tabs (the map's
    chart is the heaviest thing on the page to draw again)."""
    with guard(stop_page=False):
        draw()


tracks_tab, playlists_tab, map_tab = st.tabs(["Tracks like a track", "Playlists like a playlist", "Map"])
with tracks_tab:
    _part(_tracks)
with playlists_tab:
    _part(_playlists)
with map_tab:
    _part(_map)
