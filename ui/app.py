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

# (page module, title, Material icon, URL path) per section of the sidebar; the first page opens first
SECTIONS = {
    "Browse": [
        ("catalog.py", "Catalog", "library_music", "catalog"),
        ("playlists.py", "Playlists", "queue_music", "playlists"),
    ],
    "Discover": [
        ("continue_playlist.py", "Continue", "playlist_add", "continue"),
        ("similar.py", "Similar", "explore", "similar"),
        ("words.py", "Words → music", "text_fields", "words"),
        ("video.py", "Music for video", "movie", "video"),
    ],
    "Measure": [
        ("evaluation.py", "Evaluation", "monitoring", "evaluation"),
        ("runs.py", "Pipeline runs", "schedule", "runs"),
    ],
}

navigation = st.navigation(
    {
        section: [
            st.Page(
                PAGES / module, title=title, icon=f":material/{icon}:", url_path=url, default=url == "catalog"
            )
            for module, title, icon, url in pages
        ]
        for section, pages in SECTIONS.items()
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
