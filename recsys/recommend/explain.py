"""Human-readable reasons for fused recommendations."""

from __future__ import annotations

from recsys.recommend.diversify import TrackTable
from recsys.recommend.fusion import Fused


def reason_for(entry: Fused, tracks: TrackTable, *, max_seeds: int = 2) -> str:
    """One line: which sources proposed the track and which seed tracks drove it."""
    text = " + ".join(dict.fromkeys(candidate.reason for _, candidate in entry.hits))
    because = entry.because
    if because:
        text += "; because of " + ", ".join(tracks.label(t) for t in because[:max_seeds])
    return text
