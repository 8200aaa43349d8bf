"""Playlist continuation: seed tracks and an optional title in, N ranked tracks out.

The service asks every candidate source for a ranked list, fuses them with weighted
reciprocal rank fusion, and walks the fused order leaving out the seeds, any second
release of a recording already given or seeded, and (optionally) tracks past an artist
cap. Each recommendation says which sources proposed it and which seeds drove it. New
sources plug in by implementing :class:`~recsys.recommend.candidates.CandidateSource`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from threadpoolctl import ThreadpoolController

from recsys.errors import InputError
from recsys.recommend.candidates import Candidate, CandidateSource
from recsys.recommend.diversify import TrackTable, diversified
from recsys.recommend.explain import reason_for
from recsys.recommend.fusion import Fused, reciprocal_rank_fusion


class Recommendation:
    """One recommended track; its sources, seeds and reason are worked out when asked for."""

    __slots__ = ("_entry", "_tracks", "score", "track_id")

    def __init__(self, entry: Fused, tracks: TrackTable) -> None:
        self.track_id = entry.track_id
        self.score = entry.score
        self._entry = entry
        self._tracks = tracks

    @property
    def sources(self) -> tuple[str, ...]:
        """The candidate sources that proposed the track, in source order."""
        return self._entry.sources

    @property
    def because(self) -> tuple[int, ...]:
        """Catalog ids of the seed tracks that drove it, strongest first."""
        return self._entry.because

    @property
    def reason(self) -> str:
        return reason_for(self._entry, self._tracks)

    def __repr__(self) -> str:
        return f"Recommendation({self.track_id}, {self.score:.4g}, {self.reason!r})"


class ContinuationService:
    """Fuses candidate sources into one continuation; no source is special."""

    def __init__(
        self,
        sources: Sequence[CandidateSource],
        tracks: TrackTable,
        *,
        weights: Mapping[str, float] | None = None,
        rrf_k: float = 60.0,
        artist_cap: int | None = None,
        depth: float = 1.5,
    ) -> None:
        if not sources:
            raise ValueError("a continuation service needs at least one candidate source")
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ValueError(f"candidate source names must be unique: {names}")
        self.sources = list(sources)
        self.tracks = tracks
        self.weights = dict(weights or {})
        self.rrf_k = rrf_k
        self.artist_cap = artist_cap
        self.depth = depth
        # one BLAS thread per request: a request's products are small, and BLAS threads
        # fighting over the cores cost more than they save (measured 2-10x on 2 cores)
        self._threads = ThreadpoolController()

    def candidate_lists(self, seeds: Sequence[int], title: str | None, n: int) -> dict[str, list[Candidate]]:
        want = int(n * self.depth) + len(seeds)
        return {
            source.name: source.candidates(seeds, title, want)
            for source in self.sources
            if self.weights.get(source.name, 1.0) > 0
        }

    def recommend(
        self,
        seeds: Sequence[int],
        title: str | None = None,
        n: int = 500,
        *,
        artist_cap: int | None = None,
    ) -> list[Recommendation]:
        """Up to ``n`` tracks continuing a playlist of ``seeds`` (catalog track ids) called ``title``."""
        if n < 1:
            raise InputError(f"n must be at least 1, got {n}")
        if not seeds and not title:
            raise InputError("give seed tracks, a title, or both")
        seeds = list(dict.fromkeys(int(s) for s in seeds))
        with self._threads.limit(limits=1, user_api="blas"):
            lists = self.candidate_lists(seeds, title, n)
        fused = reciprocal_rank_fusion(lists, weights=self.weights, k=self.rrf_k)
        by_id = {entry.track_id: entry for entry in fused}
        cap = artist_cap if artist_cap is not None else self.artist_cap
        out: list[Recommendation] = []
        for track_id in diversified(by_id, self.tracks, seeds=seeds, artist_cap=cap):
            out.append(Recommendation(by_id[track_id], self.tracks))
            if len(out) == n:
                break
        return out
