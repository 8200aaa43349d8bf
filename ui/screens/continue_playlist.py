"""Continue: a playlist or a handful of seed tracks in, ranked tracks out, each with its reason;
rate them, save the result as a playlist, take it away as JSPF or M3U."""

from __future__ import annotations

import hashlib
import json

import polars as pl
import streamlit as st

from recsys.catalog.browse import PlaylistHit
from recsys.catalog.export import export_tracks, save_playlist, to_jspf, to_m3u
from recsys.catalog.feedback import DISLIKE, LIKE, record_feedback, user_feedback
from recsys.recommend.service import playlist_seeds
from ui import services
from ui.views import audio_player, guard, literal, stop, user

REQUEST = "continue_request"
SEEDS = "continue_seeds"
LIKED = "continue_liked"
RESULTS = "continue_results"
PLAYERS = 10  # selected rows shown with a player at once
RATINGS = (
    ("Like", LIKE, "I like these: they join the seeds"),
    ("Dislike", DISLIKE, "Not these, and less like them"),
)
SOURCE_NAMES = {"als": "ALS", "knn": "kNN", "title": "title", "popularity": "popular", "seq2seq": "seq2seq"}

st.title("Continue a playlist")

with guard():
    url = services.catalog_url()
    engine = services.engine()
    service = services.continuation()

preset = st.query_params.get("playlist")
start = st.segmented_control(
    "Start from",
    ["A playlist", "Seed tracks"],
    default="A playlist",
    key="continue_start",
    required=True,
)

seeds: list[int] = []
title: str | None = None
playlist_id: int | None = None
if start == "A playlist":
    query = st.text_input("Find a playlist", key="continue_playlist_query", placeholder="words of its name")
    with guard():
        options = list(services.playlist_page(url, query, 1, 50).hits)
        if preset and preset.isdigit() and int(preset) not in {h.playlist_id for h in options}:
            opened = services.playlist_view(url, int(preset))
            options.insert(0, PlaylistHit(opened.playlist_id, opened.name, len(opened.entries)))
    if not options:
        stop("No playlist matches. Search other words, or start from seed tracks.")
    ids = [h.playlist_id for h in options]
    chosen_id = int(preset) if preset and preset.isdigit() and int(preset) in ids else None
    labels = {h.playlist_id: f"{h.name} · {h.num_tracks} tracks · #{h.playlist_id}" for h in options}
    playlist_id = st.selectbox(
        "Playlist",
        ids,
        index=ids.index(chosen_id) if chosen_id is not None else None,
        format_func=lambda i: labels[i],
        placeholder="choose a playlist to continue",
        key="continue_playlist",
    )
    if playlist_id is None:
        st.info("Choose a playlist (search its name above), or start from seed tracks.")
        st.stop()
    with guard():
        found = playlist_seeds(engine, str(playlist_id))
    seeds, title = found.track_ids, found.title
    st.caption(f"{len(seeds)} seed track(s) from playlist #{playlist_id}; its name is the title.")
else:
    chosen: list[int] = list(st.session_state.get(SEEDS, []))
    words = st.text_input("Find tracks", key="continue_track_query", placeholder="title or artist words")
    with guard():
        hits = services.search_tracks(url, words, 25) if words.strip() else []
        known = services.tracks_by_id(url, tuple(chosen))
    labels = {t: f"{known[t].title} — {known[t].artist}" for t in chosen if t in known}
    labels.update({h.track_id: f"{h.title} — {h.artist}" for h in hits})
    if words.strip() and not hits:
        st.caption("No track matches those words.")
    picked = st.multiselect(
        "Seed tracks",
        list(dict.fromkeys([*chosen, *(h.track_id for h in hits)])),
        default=chosen,
        format_func=lambda t: labels.get(t, f"track {t}"),
        placeholder="search above, then pick tracks here",
    )
    st.session_state[SEEDS] = picked
    seeds = list(picked)
    title = st.text_input("Playlist title (optional)", key="continue_title") or None

methods = service.methods
left, middle, right = st.columns(3)
method = left.selectbox("Method", methods, key="continue_method", help="hybrid fuses every source")
n = middle.number_input("How many tracks", min_value=5, max_value=500, value=25, step=5, key="continue_n")
cap = right.number_input(
    "At most per artist (0: no cap)", min_value=0, max_value=50, value=0, key="continue_cap"
)


@st.fragment
def _results(
    seeds: list[int], title: str | None, playlist_id: int | None, method: str, n: int, cap: int
) -> None:
    """The Continue button and what follows: clicking, rating and selecting rerun this part only."""
    with guard(stop_page=False):
        _panel(seeds, title, playlist_id, method, n, cap)


def _panel(
    seeds: list[int], title: str | None, playlist_id: int | None, method: str, n: int, cap: int
) -> None:
    if st.button("Continue", type="primary", disabled=not (seeds or title)):
        st.session_state[REQUEST] = {
            "seeds": seeds,
            "title": title,
            "method": method,
            "n": int(n),
            "cap": int(cap) or None,
            "playlist": playlist_id,
        }
        st.session_state[LIKED] = []

    request: dict = st.session_state.get(REQUEST) or {}
    if not request:
        if not (seeds or title):
            st.info("Pick a playlist, or some seed tracks or a title, then press Continue.")
        return
    if (request["seeds"], request["title"]) != (seeds, title):  # the results were for another choice
        st.caption("Press Continue for the playlist or seeds chosen above.")
        return

    name = user()
    opinions = user_feedback(engine, user=name) if name else {}
    results = service.recommend(
        request["seeds"],
        request["title"],
        request["n"],
        artist_cap=request["cap"],
        method=request["method"],
        feedback=opinions,
    )
    if not results:
        st.info(
            "No recommendation for these seeds: the models know none of them. Try other tracks or a title."
        )
        return

    st.divider()
    disliked = sum(1 for r in opinions.values() if r == DISLIKE)
    top = service.tracks.get(results[0].track_id)
    st.subheader(f"{len(results)} tracks to continue with")
    st.markdown(
        f"Led by **{literal(top.title if top else results[0].track_id)}** — {literal(top.artist_name if top else '')}"
    )
    st.caption(
        f"method {request['method']}"
        + (f" · your {len(opinions)} rating(s) applied" if opinions else "")
        + (f" · {disliked} disliked track(s) left out" if disliked else "")
        + " · select rows to hear them and to rate them"
        + ("" if name else " (rating needs your name in the sidebar)")
    )

    def _context() -> str:
        if request.get("playlist"):
            return f"continue:playlist:{request['playlist']}"
        return "continue:seeds"

    def _rate(track_ids: list[int], rating: int) -> None:
        for track_id in track_ids:
            record_feedback(engine, user=user(), track_id=track_id, rating=rating, context=_context())
        if rating == LIKE:  # a liked track joins the seeds, so it leaves the list: keep it for saving
            liked = st.session_state.setdefault(LIKED, [])
            liked.extend(t for t in track_ids if t not in liked)

    infos = [service.tracks.get(r.track_id) for r in results]
    listing = pl.DataFrame(
        {
            "#": list(range(1, len(results) + 1)),
            "title": [i.title if i else f"track {r.track_id}" for i, r in zip(infos, results, strict=True)],
            "artist": [i.artist_name if i else "" for i in infos],
            "from": [" · ".join(SOURCE_NAMES.get(s, s) for s in r.sources) for r in results],
            "because of": [", ".join(service.tracks.label(t) for t in r.because[:2]) for r in results],
            "why": [r.reason for r in results],
            "score": [round(r.score, 4) for r in results],
            "id": [r.track_id for r in results],
        },
        schema={
            "#": pl.Int64,
            "title": pl.String,
            "artist": pl.String,
            "from": pl.String,
            "because of": pl.String,
            "why": pl.String,
            "score": pl.Float64,
            "id": pl.Int64,
        },
    )
    # A new list (after a rating) is a new grid: a selection never points at a track that moved.
    listed = hashlib.blake2b(listing["id"].to_numpy().tobytes(), digest_size=6).hexdigest()
    grid = st.dataframe(
        listing,
        hide_index=True,
        width="stretch",
        height=min(38 + 35 * len(results), 640),
        on_select="rerun",
        selection_mode="multi-row",
        key=f"{RESULTS}_{listed}",
        column_order=("#", "title", "artist", "from", "because of", "score"),
        column_config={
            "#": st.column_config.NumberColumn(width=40),
            "title": st.column_config.TextColumn(width=190),
            "artist": st.column_config.TextColumn(width=150),
            "from": st.column_config.TextColumn(
                width=150,
                help="ALS: similar taste · kNN: listed together with the seeds · title: in playlists named "
                "like it · popular · seq2seq: in playlists like this one",
            ),
            "because of": st.column_config.TextColumn(width=250, help="the seed tracks that drove it"),
            "score": st.column_config.NumberColumn(width=70, format="%.4f"),
        },
    )
    selected = [results[i] for i in grid.selection.rows]
    chosen_ids = [r.track_id for r in selected]
    with st.container(horizontal=True, vertical_alignment="center"):
        for label, rating, meaning in RATINGS:
            st.button(
                label,
                icon=f":material/thumb_{'up' if rating == LIKE else 'down'}:",
                key=f"continue_{label.lower()}",
                disabled=not (name and selected),
                on_click=_rate,
                args=(chosen_ids, rating),
                help=meaning,
            )
        st.caption(f"{len(selected)} selected" if selected else "no row selected")
    if selected:
        files = services.audio_files(url, tuple(chosen_ids[:PLAYERS]))
        for rec in selected[:PLAYERS]:
            info = service.tracks.get(rec.track_id)
            with st.container(border=True, key=f"chosen_{rec.track_id}"):
                st.markdown(
                    f"**{literal(info.title if info else rec.track_id)}** — {literal(info.artist_name if info else '')}"
                )
                st.caption(literal(rec.reason))
                audio_player(files.get(rec.track_id))

    st.divider()
    st.subheader("Keep it")
    kept = list(
        dict.fromkeys([*request["seeds"], *st.session_state.get(LIKED, []), *(r.track_id for r in results)])
    )
    default_name = f"{request['title'] or 'My playlist'} (continued)"
    playlist_name = st.text_input("Name", value=default_name, key="continue_save_name")
    save, jspf, m3u = st.columns(3)
    if save.button("Save as playlist", icon=":material/save:", width="stretch"):
        saved = save_playlist(engine, name=playlist_name, track_ids=kept, user=name or None)
        st.success(f"Saved as playlist #{saved} ({len(kept)} tracks) in the namespace “saved”.")

    def _jspf() -> str:  # made when the button is pressed, not on every run of the page
        return json.dumps(to_jspf(playlist_name, export_tracks(engine, kept), creator=name or None), indent=2)

    def _m3u() -> str:
        return to_m3u(playlist_name, export_tracks(engine, kept))

    jspf.download_button(
        "Download JSPF",
        _jspf,
        file_name="playlist.jspf",
        mime="application/jspf+json",
        width="stretch",
        on_click="ignore",
    )
    m3u.download_button(
        "Download M3U",
        _m3u,
        file_name="playlist.m3u8",
        mime="audio/x-mpegurl",
        width="stretch",
        on_click="ignore",
    )


_results(seeds, title, playlist_id, method, int(n), int(cap))
