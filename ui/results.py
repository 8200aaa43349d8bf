"""Ranked tracks from the music space (words → music, music for a video), drawn the same way."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import polars as pl
import streamlit as st

from recsys.recommend.video_scoring import ScoredTrack
from ui import services
from ui.views import audio_player, literal


def scored_tracks(url: str, tracks: Sequence[ScoredTrack], *, parts: bool) -> None:
    """The tracks with their scores; with ``parts``, a bar per track splitting the score into what
    the video and the words contributed."""
    if not tracks:
        st.info("No track passes those filters.")
        return
    if parts:
        bars = pl.DataFrame(
            {
                "rank": [i for i, t in enumerate(tracks, 1) for _ in range(2)],
                "track": [
                    f"{i}. {t.payload.get('title') or t.track_id}"
                    for i, t in enumerate(tracks, 1)
                    for _ in range(2)
                ],
                "part": ["video", "words"] * len(tracks),
                "score": [x for t in tracks for x in (t.video, t.text)],
            }
        )
        st.altair_chart(
            alt.Chart(bars)
            .mark_bar()
            .encode(
                x=alt.X("sum(score):Q", title="score = video part + words part"),
                y=alt.Y(
                    "track:N",
                    sort=alt.SortField("rank"),
                    title=None,
                    axis=alt.Axis(labelLimit=220, labelOverlap=False),
                ),
                color=alt.Color("part:N", scale=alt.Scale(range=["#4C78A8", "#F58518"]), title=None),
                tooltip=["track", "part", alt.Tooltip("score:Q", format=".3f")],
            )
            .properties(height=max(140, 30 * len(tracks))),
            width="stretch",
        )
    files = services.audio_files(url, tuple(t.track_id for t in tracks))
    for rank, t in enumerate(tracks, 1):
        payload = t.payload
        with st.container(border=True):
            text, score = st.columns([5, 2])
            text.markdown(
                f"**{rank}. {literal(payload.get('title') or f'track {t.track_id}')}** — {literal(payload.get('artist') or '?')}"
            )
            tags = ", ".join([*(payload.get("cultures") or []), *(payload.get("genres") or [])])
            if tags:
                text.caption(literal(tags))
            detail = f"score {t.score:.3f}"
            if parts:
                detail += f" · video {t.video:+.3f} · words {t.text:+.3f}"
            score.caption(detail)
            audio_player(files.get(t.track_id))
