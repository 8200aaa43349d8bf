"""Human-readable reasons for fused recommendations."""

from __future__ import annotations

from recsys.recommend.diversify import TrackTable
from recsys.recommend.fusion import Fused


def reason_for(
    entry: Fused,
    tracks: TrackTable,
    *,
    max_seeds: int = 2,
    liked: frozenset[int] = frozenset(),
    disliked_neighbour: int | None = None,
) -> str:
    """One line: which sources proposed the track and which seed tracks drove it.

    Seeds in ``liked`` (liked tracks that joined the seeds) are marked as such; with
    ``disliked_neighbour`` the line ends saying the track was ranked lower for being close
    to that disliked track.
    """
    text = " + ".join(dict.fromkeys(candidate.reason for _, candidate in entry.hits))
    because = entry.because
    if because:
        text += "; because of " + ", ".join(
            tracks.label(t) + (" (you liked it)" if t in liked else "") for t in because[:max_seeds]
        )
    if disliked_neighbour is not None:
        text += f"; ranked lower: close to {tracks.label(disliked_neighbour)}, which you disliked"
    return text
