"""Words → music: describe the music in a sentence; the video–music model's text tower ranks the
catalog's music for it."""

from __future__ import annotations

import streamlit as st

from recsys.recommend.text_search import search_music
from ui import services
from ui.results import scored_tracks
from ui.views import guard

st.title("Words → music")
st.caption(
    "Describe what you want to hear: mood, instruments, tempo, a place. "
    "The text tower of the video–music model turns it into a point in the music space."
)

with guard():
    url = services.catalog_url()
    services.engine()
    scorer = services.video_scorer()

with st.form("words"):
    prompt = st.text_input(
        "Description", key="words_prompt", placeholder="e.g. slow Indian strings at dawn", max_chars=500
    )
    left, middle, right = st.columns([2, 2, 1])
    culture = left.text_input("Culture", key="words_culture", placeholder="any")
    genre = middle.text_input("Genre", key="words_genre", placeholder="any")
    n = right.number_input("How many", 1, 100, 10, key="words_n")
    asked = st.form_submit_button("Find music", type="primary")

if not prompt.strip():
    st.info("Type a few words, then press Find music.")
    st.stop()

filters = {k: v for k, v in (("culture", culture), ("genre", genre)) if v.strip()}
with guard():
    found = search_music(scorer, prompt, n=int(n), filters=filters)
scored_tracks(url, found, parts=False)
