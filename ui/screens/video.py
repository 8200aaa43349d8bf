"""Music for video: drop in a clip (or pick one under the data dir), add a few words, and get the
catalog's music ranked for both, each score split into what the video and the words gave."""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from recsys.errors import VideoError
from recsys.media.video import find_videos
from recsys.recommend.video_scoring import score_clip
from ui import services
from ui.results import scored_tracks
from ui.views import guard, literal, stop

st.title("Music for video")
st.caption("A video and, if you like, a sentence: “warm acoustic, slowly building”.")

with guard():
    cfg = services.settings()
    url = services.catalog_url()
    services.engine()
    scorer = services.video_scorer()

source = st.segmented_control(
    "Video", ["Upload", "Pick from the data dir"], default="Upload", key="video_source", required=True
)
uploaded = None
picked: Path | None = None
if source == "Upload":
    uploaded = st.file_uploader(
        f"A video file (at most {cfg.ui_max_upload_mb} MB and {cfg.ui_max_video_s:.0f} s)",
        key="video_upload",
        max_upload_size=cfg.ui_max_upload_mb,
    )
else:
    videos = find_videos(cfg.data_dir)
    if not videos:
        stop(f"No video files under {literal(cfg.data_dir)}. Upload one instead.")
    picked = st.selectbox(
        "Video under the data dir",
        videos,
        format_func=lambda p: str(p.relative_to(cfg.data_dir)),
        key="video_pick",
    )

with st.form("video_query"):
    prompt = st.text_input(
        "Words (optional)", key="video_prompt", placeholder="e.g. warm acoustic, slowly building"
    )
    left, middle, right = st.columns([2, 2, 1])
    culture = left.text_input("Culture", key="video_culture", placeholder="any")
    genre = middle.text_input("Genre", key="video_genre", placeholder="any")
    n = right.number_input("How many", 1, 50, 10, key="video_n")
    asked = st.form_submit_button("Find music", type="primary")

if uploaded is None and picked is None:
    st.info("Upload a video, or pick one under the data dir.")
    st.stop()
if not asked:
    st.caption("Press Find music to rank the catalog's music for this video.")
    st.stop()

filters = {k: v for k, v in (("culture", culture), ("genre", genre)) if v.strip()}
with tempfile.TemporaryDirectory(prefix="recsys-video-") as scratch:
    if uploaded is not None:
        if uploaded.size > cfg.max_upload_bytes:
            stop(f"{literal(uploaded.name)} is larger than {cfg.ui_max_upload_mb} MB.", kind="error")
        path = Path(scratch) / ("upload" + Path(uploaded.name).suffix[:10])
        path.write_bytes(uploaded.getvalue())
        shown_name = uploaded.name
    else:
        assert picked is not None
        path, shown_name = picked, picked.name
    with guard():
        try:
            result = score_clip(
                scorer,
                path,
                name=shown_name,
                max_duration_s=cfg.ui_max_video_s,
                prompt=prompt,
                n=int(n),
                filters=filters,
            )
        except VideoError as exc:  # named by what the user gave, not by the scratch copy
            stop(f"{literal(exc.path)}: {literal(exc.reason)}", kind="error")
    left, right = st.columns([2, 3])
    with left:
        st.video(path.read_bytes() if uploaded is not None else str(path))
        facts = [f"{result.frames} frames over {result.seconds:.0f} s", f"soundtrack: {result.soundtrack}"]
        if result.truncated:
            facts.append("only the beginning was scored")
        st.caption(literal(shown_name) + " · " + " · ".join(facts))
        st.caption(f"scored in {sum(result.timings.values()):.2f} s")
    with right:
        scored_tracks(url, result.tracks, parts=True)
