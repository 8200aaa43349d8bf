"""Playlists: search by name (in the database, a page at a time), open one, hear its tracks."""

from __future__ import annotations

import polars as pl
import streamlit as st

from recsys.catalog.browse import PAGE_SIZE
from ui import services
from ui.views import audio_player, duration, guard, literal, stop

PAGE_KEY = "playlists_page"
PLAYERS = 12  # audio players shown at once for one playlist

st.title("Playlists")

with guard():
    url = services.catalog_url()
    services.engine()


def _new_search() -> None:
    st.session_state[PAGE_KEY] = 1
    st.query_params.pop("playlist", None)


query = st.text_input(
    "Search playlists by name",
    key="playlists_query",
    placeholder="words of the name, e.g. summer road trip (or a playlist id)",
    on_change=_new_search,
)
page_no = int(st.session_state.get(PAGE_KEY, 1))
with guard():
    page = services.playlist_page(url, query, page_no, PAGE_SIZE)

if page.total == 0:
    if not query.strip():
        stop("No playlists in the catalog yet. Load some with `recsys ingest mpd PATH…` or `recsys demo`.")
    stop(f"No playlist name holds every word of “{literal(query)}”.")

st.caption(f"{page.total:,} playlist(s) · page {page.page} of {page.pages} · choose one to open it")
hits = pl.DataFrame(
    {
        "id": [h.playlist_id for h in page.hits],
        "name": [h.name for h in page.hits],
        "tracks": [h.num_tracks for h in page.hits],
    }
)
picked = st.dataframe(
    hits,
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="single-row",
    key=f"playlist_hits_{page.page}_{query}",
    column_config={
        "id": st.column_config.NumberColumn(width="small", format="%d"),
        "name": st.column_config.TextColumn(width="large"),
    },
)


def _turn(to: int) -> None:
    st.session_state[PAGE_KEY] = to


back, _, forward = st.columns([1, 4, 1])
back.button("← Previous", disabled=page.page <= 1, width="stretch", on_click=_turn, args=(page.page - 1,))
forward.button(
    "Next →", disabled=page.page >= page.pages, width="stretch", on_click=_turn, args=(page.page + 1,)
)

rows = picked.selection.rows if picked is not None else []
if rows:
    st.query_params["playlist"] = str(page.hits[rows[0]].playlist_id)
chosen = st.query_params.get("playlist")
if not chosen or not chosen.isdigit():
    st.stop()

with guard():
    view = services.playlist_view(url, int(chosen))

st.divider()
st.subheader(literal(view.name) or "(no name)")
total_ms = sum(e.duration_ms or 0 for e in view.entries)
facts = [f"{len(view.entries)} tracks", f"namespace {view.namespace}", view.source_key]
if total_ms:
    facts.insert(1, f"{total_ms / 60_000:.0f} min")
st.caption(" · ".join(literal(f) for f in facts))
if st.button("Continue this playlist", type="primary", icon=":material/playlist_add:"):
    st.switch_page("screens/continue_playlist.py", query_params={"playlist": str(view.playlist_id)})

st.dataframe(
    pl.DataFrame(
        {
            "#": [e.position + 1 for e in view.entries],
            "title": [e.title for e in view.entries],
            "artist": [e.artist for e in view.entries],
            "album": [e.album or "" for e in view.entries],
            "duration": [duration(e.duration_ms) for e in view.entries],
            "audio": ["▶" if e.audio else "" for e in view.entries],
        },
        schema={
            "#": pl.Int64,
            "title": pl.String,
            "artist": pl.String,
            "album": pl.String,
            "duration": pl.String,
            "audio": pl.String,
        },
    ),
    hide_index=True,
    width="stretch",
    column_config={"#": st.column_config.NumberColumn(width="small")},
)
playable = [e for e in view.entries if e.audio]
if playable:
    st.markdown(f"**Listen** ({len(playable)} track(s) with audio)")
    for entry in playable[:PLAYERS]:
        left, right = st.columns([2, 3])
        left.markdown(f"{entry.position + 1}. {literal(entry.title)} — {literal(entry.artist)}")
        with right:
            audio_player(entry.audio)
    if len(playable) > PLAYERS:
        st.caption(f"The first {PLAYERS} are shown.")
