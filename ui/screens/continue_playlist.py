"""Continue: a playlist or a handful of seed tracks in, ranked tracks out, each with its reason;
rate them, save the result as a playlist, take it away as JSPF or M3U."""

from __future__ import annotations

import json

import streamlit as st

from recsys.catalog.browse import PlaylistHit
from recsys.catalog.export import export_tracks, save_playlist, to_jspf, to_m3u
from recsys.catalog.feedback import DISLIKE, LIKE, record_feedback, user_feedback
from recsys.recommend.service import playlist_seeds
from ui import services
from ui.views import audio_player, guard, literal, stop, user

REQUEST = "continue_request"
SEEDS = "continue_seeds"
ROWS_PER_PAGE = 25

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
    st.caption(f"{len(seeds)} seed track(s); the playlist's name is its title.")
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
if st.button("Continue", type="primary", disabled=not (seeds or title)):
    st.session_state[REQUEST] = {
        "seeds": seeds,
        "title": title,
        "method": method,
        "n": int(n),
        "cap": int(cap) or None,
        "playlist": playlist_id,
    }
    st.session_state["continue_page"] = 1

request: dict = st.session_state.get(REQUEST) or {}
if not request:
    if not (seeds or title):
        st.info("Pick a playlist, or some seed tracks or a title, then press Continue.")
    st.stop()

name = user()
with guard():
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
    stop("No recommendation for these seeds: the models know none of them. Try other tracks or a title.")

st.divider()
disliked = sum(1 for r in opinions.values() if r == DISLIKE)
st.subheader(f"{len(results)} tracks to continue with")
st.caption(
    f"method {request['method']}"
    + (f" · your {len(opinions)} rating(s) applied" if opinions else "")
    + ("" if name else " · enter your name in the sidebar to rate tracks")
    + (f" · {disliked} disliked track(s) left out" if disliked else "")
)

pages = max(1, -(-len(results) // ROWS_PER_PAGE))
page_no = min(int(st.session_state.get("continue_page", 1)), pages)
shown = results[(page_no - 1) * ROWS_PER_PAGE : page_no * ROWS_PER_PAGE]
files = services.audio_files(url, tuple(r.track_id for r in shown))


def _rate(track_id: int, rating: int) -> None:
    record_feedback(engine, user=user(), track_id=track_id, rating=rating, context=_context())


def _context() -> str:
    if request.get("playlist"):
        return f"continue:playlist:{request['playlist']}"
    return "continue:seeds"


for rank, rec in enumerate(shown, start=(page_no - 1) * ROWS_PER_PAGE + 1):
    info = service.tracks.get(rec.track_id)
    track_title, artist = (info.title, info.artist_name) if info else (f"track {rec.track_id}", "")
    with st.container(border=True, key=f"result_{rec.track_id}"):
        text, score, like, dislike = st.columns([12, 2, 1, 1], vertical_alignment="center")
        mine = opinions.get(rec.track_id)
        text.markdown(
            f"**{rank}. {literal(track_title)}** — {literal(artist)}"
            + (" · :material/thumb_up: liked" if mine == LIKE else "")
        )
        text.caption(literal(rec.reason))
        score.caption(f"score {rec.score:.4f}")
        like.button(
            ":material/thumb_up:",
            key=f"like_{rec.track_id}",
            help="I like this",
            disabled=not name,
            on_click=_rate,
            args=(rec.track_id, LIKE),
        )
        dislike.button(
            ":material/thumb_down:",
            key=f"dislike_{rec.track_id}",
            help="Not this one (and less like it)",
            disabled=not name,
            on_click=_rate,
            args=(rec.track_id, DISLIKE),
        )
        if rec.track_id in files:
            audio_player(files[rec.track_id])

if pages > 1:
    back, where, forward = st.columns([1, 4, 1])
    where.caption(f"page {page_no} of {pages}")
    if back.button("← Previous", disabled=page_no <= 1, key="continue_prev"):
        st.session_state["continue_page"] = page_no - 1
        st.rerun()
    if forward.button("Next →", disabled=page_no >= pages, key="continue_next"):
        st.session_state["continue_page"] = page_no + 1
        st.rerun()

st.divider()
st.subheader("Keep it")
kept = list(dict.fromkeys([*request["seeds"], *(r.track_id for r in results)]))
default_name = f"{request['title'] or 'My playlist'} (continued)"
playlist_name = st.text_input("Name", value=default_name, key="continue_save_name")
save, jspf, m3u = st.columns(3)
if save.button("Save as playlist", icon=":material/save:", width="stretch"):
    with guard():
        saved = save_playlist(engine, name=playlist_name, track_ids=kept, user=name or None)
    st.success(f"Saved as playlist #{saved} ({len(kept)} tracks) in the namespace “saved”.")
with guard():
    tracks = export_tracks(engine, kept)
jspf.download_button(
    "Download JSPF",
    json.dumps(to_jspf(playlist_name, tracks, creator=name or None), indent=2, ensure_ascii=False),
    file_name="playlist.jspf",
    mime="application/jspf+json",
    width="stretch",
)
m3u.download_button(
    "Download M3U",
    to_m3u(playlist_name, tracks),
    file_name="playlist.m3u8",
    mime="audio/x-mpegurl",
    width="stretch",
)
