"""Words → music: a sentence through the video–music model's text tower, ranked in the ``music`` space.

The trimodal model fuses video and text into one query; with no video, the query is the
text's part alone, so the same model and the same ``music`` vectors answer "slow Indian
strings" with no clip at all. Scores are cosines of the query and each track's music vector.
"""

from __future__ import annotations

from collections.abc import Mapping

from recsys.errors import InputError
from recsys.recommend.filters import track_filter
from recsys.recommend.video_scoring import ScoredTrack, VideoScorer

MAX_PROMPT_CHARS = 500


def search_music(
    scorer: VideoScorer, prompt: str, *, n: int = 20, filters: Mapping[str, str] | None = None
) -> list[ScoredTrack]:
    """The ``n`` catalog tracks whose music fits ``prompt`` best, passing ``filters``."""
    words = " ".join((prompt or "").split())
    if not words:
        raise InputError("type a few words describing the music")
    if len(words) > MAX_PROMPT_CHARS:
        raise InputError(f"the description is {len(words)} characters; at most {MAX_PROMPT_CHARS}")
    flt = track_filter(filters)
    return scorer.rank(scorer.query(None, words), n, flt)
