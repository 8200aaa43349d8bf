"""Challenge-style held-out playlists: the ten seed categories of the RecSys Challenge 2018.

Each test playlist is assigned one category, which decides what the recommender is shown
(the title, and the first or a random k tracks) and what it must find (every other track
of the playlist, each distinct track once). Categories that need many seeds take the
longest playlists first, as in the challenge; a playlist too short for its category is
adapted (about half of it is shown, at least one track held out) and flagged. Splits are
seeded: the same playlists, seed and arguments give the same split.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from recsys.errors import InputError


@dataclass(frozen=True)
class SeedCategory:
    name: str
    seeds: int  # tracks shown (0: title only)
    title: bool
    random: bool = False  # seeds drawn at random rather than the first k


CATEGORIES: tuple[SeedCategory, ...] = (
    SeedCategory("title_only", 0, True),
    SeedCategory("title_first_1", 1, True),
    SeedCategory("title_first_5", 5, True),
    SeedCategory("first_5_no_title", 5, False),
    SeedCategory("title_first_10", 10, True),
    SeedCategory("first_10_no_title", 10, False),
    SeedCategory("title_first_25", 25, True),
    SeedCategory("title_random_25", 25, True, random=True),
    SeedCategory("title_first_100", 100, True),
    SeedCategory("title_random_100", 100, True, random=True),
)
CATEGORY_NAMES = tuple(c.name for c in CATEGORIES)


@dataclass(frozen=True)
class TestCase:
    """One held-out playlist as the recommender sees it, and what it must find."""

    __test__ = False  # not a pytest class

    playlist_id: int
    category: str
    title: str | None
    seeds: tuple[int, ...]  # track ids shown, in playlist order
    holdout: tuple[int, ...]  # distinct track ids to find, not among the seeds, in order
    adapted: bool = False


def min_length(category: SeedCategory) -> int:
    """Shortest playlist a category takes unadapted: its seeds plus at least as many to find
    (the challenge held out at least as many tracks as it showed, for k ≤ 25)."""
    if category.seeds == 0:
        return 1
    return category.seeds + max(category.seeds // 2 if category.seeds >= 100 else category.seeds, 1)


def make_case(
    playlist_id: int,
    tracks: Sequence[int],
    title: str | None,
    category: SeedCategory,
    rng: np.random.Generator,
) -> TestCase:
    tracks = list(tracks)
    k = category.seeds
    adapted = False
    distinct = len(dict.fromkeys(tracks))
    if k and distinct < min_length(category):
        k = max(1, min(k, distinct // 2))
        adapted = True
    if category.random and k:
        chosen = np.sort(rng.choice(len(tracks), size=min(k, len(tracks)), replace=False))
        seeds = [tracks[i] for i in chosen]
    else:
        seeds = tracks[:k]
    shown = set(seeds)
    holdout = [t for t in dict.fromkeys(tracks) if t not in shown]
    return TestCase(
        playlist_id=playlist_id,
        category=category.name,
        title=title if category.title else None,
        seeds=tuple(seeds),
        holdout=tuple(holdout),
        adapted=adapted,
    )


def challenge_split(
    entries: pl.DataFrame,
    playlists: pl.DataFrame,
    *,
    n_test: int,
    seed: int = 0,
    categories: Sequence[SeedCategory] = CATEGORIES,
) -> list[TestCase]:
    """Draw ``n_test`` held-out playlists and assign them to the seed categories evenly.

    ``entries``: (playlist_id, position, track_id); ``playlists``: (playlist_id, name).
    Categories are filled from the most demanding (most seeds) down, each taking the
    eligible playlists of a seeded shuffle; when too few are long enough it takes the
    longest left and adapts them.
    """
    ordered = entries.sort("playlist_id", "position")
    lists = dict(ordered.group_by("playlist_id", maintain_order=True).agg(pl.col("track_id")).iter_rows())
    names = dict(playlists.select("playlist_id", "name").iter_rows())
    pool = sorted(pid for pid in lists if len(lists[pid]) >= 2)
    if n_test < len(categories):
        raise InputError(f"need at least {len(categories)} test playlists (one per category), got {n_test}")
    if n_test > len(pool):
        raise InputError(f"asked for {n_test} test playlists, but only {len(pool)} have two or more tracks")
    rng = np.random.default_rng(seed)
    pool = [pool[i] for i in rng.permutation(len(pool))]
    quotas = {
        c.name: n_test // len(categories) + (1 if i < n_test % len(categories) else 0)
        for i, c in enumerate(categories)
    }
    distinct = {pid: len(set(lists[pid])) for pid in pool}
    taken: set[int] = set()
    cases: list[TestCase] = []
    for category in sorted(categories, key=lambda c: (-c.seeds, c.random)):
        need = quotas[category.name]
        eligible = [pid for pid in pool if pid not in taken and distinct[pid] >= min_length(category)]
        chosen = eligible[:need]
        if len(chosen) < need:
            rest = sorted(
                (pid for pid in pool if pid not in taken and pid not in chosen), key=lambda p: -distinct[p]
            )
            chosen += rest[: need - len(chosen)]
        for pid in chosen:
            taken.add(pid)
            cases.append(make_case(pid, lists[pid], names.get(pid) or "", category, rng))
    order = {c.name: i for i, c in enumerate(categories)}
    return sorted(cases, key=lambda c: (order[c.category], c.playlist_id))


def cases_from_playlists(
    entries: pl.DataFrame,
    playlists: pl.DataFrame,
    *,
    n_test: int | None = None,
    seed: int = 0,
) -> list[TestCase]:
    """Test cases from a held-out namespace (all of its playlists, or ``n_test`` of them)."""
    available = entries.get_column("playlist_id").n_unique()
    return challenge_split(entries, playlists, n_test=min(n_test or available, available), seed=seed)


def validation_split(
    entries: pl.DataFrame,
    playlists: pl.DataFrame,
    *,
    n: int,
    exclude: Iterable[int] = (),
    seed: int = 0,
) -> list[TestCase]:
    """``n`` training playlists shown as the challenge's seed categories, for fitting a ranker.

    Drawn from the playlists of ``entries`` that are not in ``exclude`` (the test playlists),
    so a ranker never learns from a playlist it is scored on; seeded like the test split.
    """
    held = pl.Series("playlist_id", sorted({int(p) for p in exclude}), dtype=pl.Int64)
    kept = entries.filter(~pl.col("playlist_id").is_in(held.implode()))
    available = kept.get_column("playlist_id").n_unique()
    return challenge_split(kept, playlists, n_test=min(n, available), seed=seed + 1)


def extra_views(
    cases: Sequence[TestCase],
    entries: pl.DataFrame,
    playlists: pl.DataFrame,
    *,
    views: int,
    seed: int = 0,
) -> list[TestCase]:
    """``cases`` and, for each, up to ``views - 1`` more views of the same playlist: other seed
    categories it is long enough for (unadapted), drawn at random, each with seeds of its own.

    A ranker learns more from one playlist shown several ways (title only, first 5, random
    25 …) than from one view; the playlists stay the same, so a set stays disjoint from the
    tests. Seeded: the same cases, entries, views and seed give the same views.
    """
    if views <= 1 or not cases:
        return list(cases)
    ids = pl.Series("playlist_id", sorted({c.playlist_id for c in cases}), dtype=pl.Int64)
    ordered = entries.filter(pl.col("playlist_id").is_in(ids.implode())).sort("playlist_id", "position")
    lists = dict(ordered.group_by("playlist_id", maintain_order=True).agg(pl.col("track_id")).iter_rows())
    names = dict(playlists.select("playlist_id", "name").iter_rows())
    rng = np.random.default_rng(seed + 7919)
    out = list(cases)
    for case in cases:
        tracks = lists[case.playlist_id]
        distinct = len(set(tracks))
        titled = bool(names.get(case.playlist_id))
        other = [
            c
            for c in CATEGORIES
            if c.name != case.category and (c.seeds or titled) and distinct >= min_length(c)
        ]
        picked = rng.permutation(len(other))[: views - 1]
        title = names.get(case.playlist_id) or ""
        out += [make_case(case.playlist_id, tracks, title, other[i], rng) for i in picked]
    return out


def validation_folds(
    entries: pl.DataFrame,
    playlists: pl.DataFrame,
    *,
    n: int,
    folds: int,
    exclude: Iterable[int] = (),
    seed: int = 0,
    views: int = 1,
) -> list[list[TestCase]]:
    """Up to ``folds`` disjoint validation sets of up to ``n`` playlists each, none in
    ``exclude``; fewer when the playlists run out (a set needs one per seed category).
    A set takes at most half the playlists not excluded, so that the sources fitted
    without it keep at least as many. With ``views`` > 1 each playlist is also shown in
    up to ``views - 1`` other seed categories (:func:`extra_views`)."""
    taken = {int(p) for p in exclude}
    left = entries.filter(~pl.col("playlist_id").is_in(pl.Series(sorted(taken), dtype=pl.Int64).implode()))
    n = min(n, left.get_column("playlist_id").n_unique() // 2)
    out: list[list[TestCase]] = []
    for fold in range(folds):
        left = entries.filter(
            ~pl.col("playlist_id").is_in(pl.Series(sorted(taken), dtype=pl.Int64).implode())
        )
        if left.get_column("playlist_id").n_unique() < len(CATEGORIES):
            break
        cases = validation_split(entries, playlists, n=n, exclude=taken, seed=seed + fold)
        taken |= {c.playlist_id for c in cases}
        out.append(extra_views(cases, entries, playlists, views=views, seed=seed + fold))
    return out
