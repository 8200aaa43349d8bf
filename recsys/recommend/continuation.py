"""Playlist continuation: seed tracks and an optional title in, N ranked tracks out.

The service asks every candidate source for a ranked list, fuses them with weighted
reciprocal rank fusion, and walks the fused order leaving out the seeds, any second
release of a recording already given or seeded, and (optionally) tracks past an artist
cap. Each recommendation says which sources proposed it and which seeds drove it. New
sources plug in by implementing :class:`~recsys.recommend.candidates.CandidateSource`.

A request may ask for one source alone (``method``: a source's name; ``"hybrid"`` or
None fuses them all) and may carry a listener's opinions (``feedback``), applied by the
rules of :mod:`recsys.recommend.feedback`. With a trained ranker
(:class:`~recsys.recommend.ranker.RankerStage`) the hybrid is the ranker's order of the
pooled candidates (``"ranker"``), and ``"fusion"`` asks for the fused order instead; the
reasons and filters are the same either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from threadpoolctl import ThreadpoolController

from recsys.errors import InputError
from recsys.recommend.candidates import Candidates, CandidateSource
from recsys.recommend.diversify import TrackTable, diversified
from recsys.recommend.explain import reason_for
from recsys.recommend.feedback import FeedbackPolicy, ItemSimilarity, Opinions, Penalty, penalised
from recsys.recommend.fusion import Fused, Fusion, reciprocal_rank_fusion
from recsys.recommend.ranker import RankerStage

HYBRID = "hybrid"
FUSION = "fusion"
RANKER = "ranker"


class Recommendation:
    """One recommended track; its sources, seeds and reason are worked out when asked for."""

    __slots__ = ("_entry", "_fusion", "_liked", "_tracks", "penalty", "score", "track_id")

    def __init__(
        self,
        track_id: int,
        score: float,
        fusion: Fusion,
        tracks: TrackTable,
        *,
        liked: frozenset[int] = frozenset(),
        penalty: Penalty | None = None,
    ) -> None:
        self.track_id = track_id
        self.score = score
        self.penalty = penalty  # set when closeness to a disliked track ranked it lower
        self._fusion = fusion
        self._tracks = tracks
        self._liked = liked
        self._entry: Fused | None = None

    @property
    def entry(self) -> Fused:
        if self._entry is None:
            self._entry = Fused(self.track_id, self.score, self._fusion.hits(self.track_id))
        return self._entry

    @property
    def sources(self) -> tuple[str, ...]:
        """The candidate sources that proposed the track, in source order."""
        return self.entry.sources

    @property
    def because(self) -> tuple[int, ...]:
        """Catalog ids of the seed tracks that drove it, strongest first."""
        return self.entry.because

    @property
    def reason(self) -> str:
        return reason_for(
            self.entry,
            self._tracks,
            liked=self._liked,
            disliked_neighbour=None if self.penalty is None else self.penalty.disliked,
        )

    def __repr__(self) -> str:
        return f"Recommendation({self.track_id}, {self.score:.4g}, {self.reason!r})"


class ContinuationService:
    """Fuses candidate sources into one continuation; no source is special.

    ``similarity`` (item co-occurrence, from the item-kNN model) lets feedback rank the
    neighbours of disliked tracks lower and choose which liked tracks join the seeds;
    ``policy`` says how strongly (:mod:`recsys.recommend.feedback`). ``versions`` names
    the model versions the service was built from; ``unavailable`` says why a method
    that might have been offered is not (no trained model, no stored vectors).
    """

    def __init__(
        self,
        sources: Sequence[CandidateSource],
        tracks: TrackTable,
        *,
        weights: Mapping[str, float] | None = None,
        rrf_k: float = 60.0,
        artist_cap: int | None = None,
        depth: float = 1.5,
        similarity: ItemSimilarity | None = None,
        policy: FeedbackPolicy | None = None,
        versions: Mapping[str, str] | None = None,
        unavailable: Mapping[str, str] | None = None,
        ranker: RankerStage | None = None,
    ) -> None:
        if not sources:
            raise ValueError("a continuation service needs at least one candidate source")
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            raise ValueError(f"candidate source names must be unique: {names}")
        if {HYBRID, FUSION, RANKER} & set(names):
            raise ValueError(
                f"{HYBRID!r}, {FUSION!r} and {RANKER!r} name ways to combine sources, not a source"
            )
        self.sources = list(sources)
        self.tracks = tracks
        self.weights = dict(weights or {})
        self.rrf_k = rrf_k
        self.artist_cap = artist_cap
        self.depth = depth
        self.similarity = similarity
        self.policy = policy or FeedbackPolicy()
        self.versions = dict(versions or {})
        self.unavailable = dict(unavailable or {})  # method → why the service cannot serve it
        self.ranker = ranker
        # one BLAS thread per request: a request's products are small, and BLAS threads
        # fighting over the cores cost more than they save (measured 2-10x on 2 cores)
        self._threads = ThreadpoolController()

    @property
    def methods(self) -> list[str]:
        """What ``recommend(method=…)`` accepts: ``"hybrid"`` first, ``"ranker"`` and ``"fusion"``
        when a ranker is trained, then each source's name."""
        combined = [RANKER, FUSION] if self.ranker is not None else []
        return [HYBRID, *combined, *(source.name for source in self.sources)]

    def _uses_ranker(self, method: str | None) -> bool:
        name = HYBRID if method is None else method.strip().lower()
        if name == RANKER and self.ranker is None:
            raise InputError(f"method {RANKER!r} is not available (no trained ranker: `recsys train ranker`)")
        return self.ranker is not None and name in (HYBRID, RANKER)

    def _chosen(self, method: str | None) -> tuple[list[CandidateSource], dict[str, float]]:
        """The sources of ``method`` and their fusion weights."""
        if self._uses_ranker(method) and self.ranker is not None:
            weights = self.ranker.ranker.config.weights()
            return [s for s in self.sources if weights.get(s.name, 0.0) > 0], weights
        if method is None or method.strip().lower() in (HYBRID, FUSION):
            return [s for s in self.sources if self.weights.get(s.name, 1.0) > 0], self.weights
        name = method.strip().lower()
        for source in self.sources:
            if source.name == name:
                return [source], {name: 1.0}
        available = ", ".join(self.methods)
        if name in self.unavailable:
            raise InputError(
                f"method {name!r} is not available ({self.unavailable[name]}): use one of {available}"
            )
        raise InputError(f"unknown method {method!r}: use one of {available}")

    def candidate_lists(
        self,
        seeds: Sequence[int],
        title: str | None,
        n: int,
        *,
        sources: Sequence[CandidateSource] | None = None,
        depth: float | None = None,
    ) -> dict[str, Candidates]:
        """Each source's ranked candidates, ``depth`` × ``n`` of them beside the seeds (which
        are left out afterwards), so that filtering still leaves ``n``."""
        want = self._want(seeds, n, depth)
        if sources is None:
            sources = [s for s in self.sources if self.weights.get(s.name, 1.0) > 0]
        return {source.name: source.candidates(seeds, title, want) for source in sources}

    def _want(self, seeds: Sequence[int], n: int, depth: float | None) -> int:
        return int(n * (self.depth if depth is None else depth)) + len(seeds)

    def recommend(
        self,
        seeds: Sequence[int],
        title: str | None = None,
        n: int = 500,
        *,
        artist_cap: int | None = None,
        method: str | None = None,
        feedback: Mapping[int, int] | None = None,
    ) -> list[Recommendation]:
        """Up to ``n`` tracks continuing a playlist of ``seeds`` (catalog track ids) called ``title``.

        ``method``: None or ``"hybrid"`` fuses every source; a source's name (see
        :attr:`methods`) uses that source's candidates alone, with the same filters and
        reasons; anything else is an ``InputError`` naming the methods available.
        ``feedback``: a listener's opinions, track id → 1 (like) or -1 (dislike): disliked
        tracks never come back and their close neighbours rank lower; liked tracks close
        to the seeds join them (:mod:`recsys.recommend.feedback`).

        When the filters leave fewer than ``n`` tracks and a source had more to give, the
        sources are asked again for twice as many (at most twice).
        """
        if n < 1:
            raise InputError(f"n must be at least 1, got {n}")
        if not seeds and not title:
            raise InputError("give seed tracks, a title, or both")
        sources, weights = self._chosen(method)
        stage = self.ranker if self._uses_ranker(method) else None
        seeds = list(dict.fromkeys(int(s) for s in seeds))
        opinions = Opinions.of(feedback, seeds, self.similarity, self.policy)
        seeds += opinions.extra_seeds
        cap = artist_cap if artist_cap is not None else self.artist_cap
        depth = self.depth
        for _ in range(3):
            want = self._want(seeds, n, depth)
            with self._threads.limit(limits=1, user_api="blas"):
                if stage is not None:
                    size = max(want, stage.ranker.config.pool)
                    lists = {source.name: source.candidates(seeds, title, size) for source in sources}
                    fusion, ids, values = stage.rerank(lists, seeds, title, size)
                else:
                    lists = self.candidate_lists(seeds, title, n, sources=sources, depth=depth)
                    fusion = reciprocal_rank_fusion(lists, weights=weights, k=self.rrf_k)
                    ids, values = fusion.track_ids, fusion.scores
                ranked, scores, penalties = penalised(
                    ids, values, opinions.disliked, self.similarity, self.policy
                )
            out = self._walk(fusion, ranked, scores, penalties, seeds, opinions, n, cap)
            if len(out) == n or not any(len(c) >= want for c in lists.values()):
                break
            depth *= 2
        return out

    def _walk(
        self,
        fusion: Fusion,
        ranked: np.ndarray,
        scores: np.ndarray,
        penalties: Mapping[int, Penalty],
        seeds: Sequence[int],
        opinions: Opinions,
        n: int,
        cap: int | None,
    ) -> list[Recommendation]:
        """The first ``n`` of the ranking that pass the filters, as recommendations."""
        score_of = dict(zip(ranked.tolist(), scores.tolist(), strict=True))
        liked_seeds = opinions.liked & set(seeds)
        out: list[Recommendation] = []
        for track_id in diversified(
            score_of, self.tracks, seeds=seeds, exclude=opinions.disliked, artist_cap=cap
        ):
            out.append(
                Recommendation(
                    track_id,
                    score_of[track_id],
                    fusion,
                    self.tracks,
                    liked=liked_seeds,
                    penalty=penalties.get(track_id),
                )
            )
            if len(out) == n:
                break
        return out


def methods_available(service: ContinuationService) -> list[str]:
    """The methods a service can serve, ``"hybrid"`` first (for a choice in an interface)."""
    return service.methods
