"""The recsys discovery UI: navigation and the sidebar; every page lives in ``ui/screens``.

Run it with ``recsys ui`` (or ``recsys demo --serve``).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from recsys.errors import RecsysError
from ui import services
from ui.views import USER_KEY

PAGES = Path(__file__).resolve().parent / "screens"

st.set_page_config(page_title="recsys", page_icon=":material/headphones:", layout="wide")

navigation = st.navigation(
    {
        "Browse": [
            st.Page(
                PAGES / "catalog.py",
                title="Catalog",
                icon=":material/library_music:",
                url_path="catalog",
                default=True,
            ),
            st.Page(
                PAGES / "playlists.py", title="Playlists", icon=":material/queue_music:", url_path="playlists"
            ),
        ],
        "Discover": [
            st.Page(
                PAGES / "continue_playlist.py",
                title="Continue",
                icon=":material/playlist_add:",
                url_path="continue",
            ),
            st.Page(PAGES / "similar.py", title="Similar", icon=":material/explore:", url_path="similar"),
            st.Page(
                PAGES / "words.py", title="Words → music", icon=":material/text_fields:", url_path="words"
            ),
            st.Page(PAGES / "video.py", title="Music for video", icon=":material/movie:", url_path="video"),
        ],
        "Measure": [
            st.Page(
                PAGES / "evaluation.py",
                title="Evaluation",
                icon=":material/monitoring:",
                url_path="evaluation",
            ),
            st.Page(PAGES / "runs.py", title="Pipeline runs", icon=":material/schedule:", url_path="runs"),
        ],
    }
)

with st.sidebar:
    st.text_input(
        "Your name",
        key=USER_KEY,
        placeholder="e.g. maria",
        help="Your likes and dislikes are kept under this name, and continuations respect them.",
    )
    try:
        st.caption(f"Data: `{services.data_dir_label()}`")
    except RecsysError as exc:  # an invalid setting: the page below says which, too
        st.caption(f"Settings: {exc}")

navigation.run()
