"""Linear probes on frozen playlist vectors: what does each encoder's vector know?

Sentence-embedding probing (Adi et al., 2017; used for playlists by Papreja et al., 2019),
every task a cross-validated logistic regression on standardised features:

- ``length``: the playlist length in 10 quantile bins.
- ``content``: is this track in the playlist? One track from the playlist and one drawn
  by popularity (entry frequency) from outside it, per playlist; features
  ``[p ⊙ t, |p − t|]`` where ``p`` is the playlist vector and ``t`` the same encoder's
  vector of the one-track playlist ``[track]``. Folds keep a playlist's pair together.
- ``order-swap`` / ``order-halves``: the playlist against a copy with two tracks swapped
  (two random positions holding different tracks) or with its halves swapped; the pair
  is shown in random order and the probe says which is the original from ``v_a − v_b``.
  A bag of tracks gives both the same vector, so it sits at chance by construction.
- ``artist-diversity``: distinct artists per track in 5 quantile bins.
- ``title-word``: the most frequent content words of playlist names (``country``,
  ``rock``, ``chill``…) as weak genre labels; playlists whose name holds exactly one.

Scores are mean accuracy over the folds with its standard deviation, beside the
majority-class rate (``chance``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from recsys.models.base import PlaylistEncoder

TASKS = ("length", "content", "order-swap", "order-halves", "artist-diversity", "title-word")

# Words of playlist names that say nothing about the music in them.
GENERIC_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "the",
        "of",
        "my",
        "your",
        "our",
        "me",
        "i",
        "it",
        "its",
        "is",
        "in",
        "on",
        "to",
        "for",
        "with",
        "s",
        "up",
        "new",
        "old",
        "good",
        "best",
        "top",
        "mix",
        "music",
        "songs",
        "song",
        "playlist",
        "playlists",
        "tracks",
        "jams",
        "stuff",
        "hits",
        "list",
    ]
)


def title_words(names: Sequence[str | None], *, top: int = 10) -> tuple[np.ndarray, list[str]]:
    """(label per name, or -1; the ``top`` words): labels for names holding exactly one top word.

    Words are lower-cased runs of letters (accents kept), at least three long, neither
    generic (``GENERIC_WORDS``) nor numbers.
    """
    tokenised = [set(re.findall(r"[^\W\d_]{3,}", (n or "").casefold())) - GENERIC_WORDS for n in names]
    counts = Counter(w for words in tokenised for w in words)
    vocabulary = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]
    index = {w: i for i, w in enumerate(vocabulary)}
    labels = np.full(len(names), -1, dtype=np.int64)
    for i, words in enumerate(tokenised):
        hits = [index[w] for w in words if w in index]
        if len(hits) == 1:
            labels[i] = hits[0]
    return labels, vocabulary


def quantile_bins(values: np.ndarray, bins: int) -> np.ndarray:
    """Bin index 0..bins-1 by the quantiles of ``values`` (ties may leave a bin smaller)."""
    edges = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    return np.searchsorted(edges, values, side="right").astype(np.int64)


@dataclass
class ProbeTasks:
    """Labels and perturbed inputs of every probe, built once and shared by all encoders."""

    playlists: list[list[int]]
    length: np.ndarray  # (N,)
    diversity: np.ndarray  # (N,)
    title: np.ndarray  # (N,), -1: no label
    title_vocabulary: list[str]
    content_playlist: np.ndarray  # (2M,) playlist index
    content_track: np.ndarray  # (2M,) track id
    content_label: np.ndarray  # (2M,) 1: in the playlist
    order_index: np.ndarray  # (K,) playlists with two distinct tracks
    swapped: list[list[int]]  # (K,)
    halves: list[list[int]]  # (K,)
    order_flip: np.ndarray  # (K,) 1: original shown first


def build_tasks(
    playlists: Sequence[Sequence[int]],
    names: Sequence[str | None],
    track_artist: dict[int, int],
    *,
    seed: int = 0,
    title_top: int = 10,
) -> ProbeTasks:
    """Labels, content pairs and order perturbations for ``playlists`` (seeded)."""
    rng = np.random.default_rng(seed)
    pls = [list(map(int, p)) for p in playlists]
    lengths = np.asarray([len(p) for p in pls], dtype=np.float64)
    ratio = np.asarray(
        [len({track_artist.get(t, -t) for t in p}) / max(len(p), 1) for p in pls], dtype=np.float64
    )
    labels, vocabulary = title_words(names, top=title_top)

    popularity = Counter(t for p in pls for t in p)
    tracks = np.asarray(sorted(popularity), dtype=np.int64)
    weights = np.asarray([popularity[t] for t in tracks], dtype=np.float64)
    weights /= weights.sum()
    c_pl: list[int] = []
    c_tr: list[int] = []
    c_lab: list[int] = []
    for i, p in enumerate(pls):
        members = set(p)
        if not members or len(members) == len(tracks):
            continue
        negative = None
        for candidate in rng.choice(tracks, size=32, p=weights):
            if int(candidate) not in members:
                negative = int(candidate)
                break
        if negative is None:
            continue
        c_pl += [i, i]
        c_tr += [p[int(rng.integers(len(p)))], negative]
        c_lab += [1, 0]

    order_index: list[int] = []
    swapped: list[list[int]] = []
    halves: list[list[int]] = []
    for i, p in enumerate(pls):
        if len(set(p)) < 2:
            continue
        while True:
            a, b = rng.choice(len(p), size=2, replace=False)
            if p[a] != p[b]:
                break
        s = list(p)
        s[a], s[b] = s[b], s[a]
        mid = len(p) // 2
        order_index.append(i)
        swapped.append(s)
        halves.append(p[mid:] + p[:mid])
    return ProbeTasks(
        playlists=pls,
        length=quantile_bins(lengths, 10),
        diversity=quantile_bins(ratio, 5),
        title=labels,
        title_vocabulary=vocabulary,
        content_playlist=np.asarray(c_pl, dtype=np.int64),
        content_track=np.asarray(c_tr, dtype=np.int64),
        content_label=np.asarray(c_lab, dtype=np.int64),
        order_index=np.asarray(order_index, dtype=np.int64),
        swapped=swapped,
        halves=halves,
        order_flip=rng.integers(0, 2, size=len(order_index)).astype(np.int64),
    )


@dataclass(frozen=True)
class ProbeScore:
    accuracy: float
    std: float
    chance: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {"accuracy": self.accuracy, "std": self.std, "chance": self.chance, "n": self.n}


def linear_probe(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    folds: int = 5,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> ProbeScore:
    """Cross-validated accuracy of a standardised logistic regression, beside the majority rate."""
    _, counts = np.unique(labels, return_counts=True)
    chance = float(counts.max() / counts.sum())
    k = int(min(folds, counts.min()))
    if len(counts) < 2 or k < 2:
        raise ValueError(
            f"a probe needs two classes with at least two examples each, got counts {counts.tolist()}"
        )
    splitter: Any = (
        StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        if groups is not None
        else StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, C=1.0))
    with threadpool_limits(1):
        scores = cross_val_score(model, features, labels, cv=splitter, groups=groups)
    return ProbeScore(float(scores.mean()), float(scores.std()), chance, len(labels))


def probe_encoder(
    encoder: PlaylistEncoder, tasks: ProbeTasks, *, folds: int = 5, seed: int = 0
) -> dict[str, ProbeScore]:
    """Every probe of :data:`TASKS` for one encoder."""
    vectors = np.asarray(encoder.embed(tasks.playlists), dtype=np.float64)  # (N, D)
    out: dict[str, ProbeScore] = {}
    out["length"] = linear_probe(vectors, tasks.length, folds=folds, seed=seed)

    track_vectors = np.asarray(encoder.embed([[int(t)] for t in tasks.content_track]), dtype=np.float64)
    p = vectors[tasks.content_playlist]  # (2M, D)
    content = np.concatenate([p * track_vectors, np.abs(p - track_vectors)], axis=1)  # (2M, 2D)
    out["content"] = linear_probe(
        content, tasks.content_label, folds=folds, seed=seed, groups=tasks.content_playlist
    )

    originals = vectors[tasks.order_index]  # (K, D)
    sign = (2 * tasks.order_flip - 1)[:, None]  # +1: original first
    for name, perturbed in (("order-swap", tasks.swapped), ("order-halves", tasks.halves)):
        other = np.asarray(encoder.embed(perturbed), dtype=np.float64)  # (K, D)
        out[name] = linear_probe(sign * (originals - other), tasks.order_flip, folds=folds, seed=seed)

    out["artist-diversity"] = linear_probe(vectors, tasks.diversity, folds=folds, seed=seed)
    titled = tasks.title >= 0
    out["title-word"] = linear_probe(vectors[titled], tasks.title[titled], folds=folds, seed=seed)
    return out


@dataclass
class ProbeTable:
    """Probe scores of several encoders: rows encoders, columns tasks."""

    rows: dict[str, dict[str, ProbeScore]] = field(default_factory=dict)
    dims: dict[str, int] = field(default_factory=dict)
    title_vocabulary: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        head = "| encoder | dim | " + " | ".join(TASKS) + " |"
        lines = [head, "|" + "---|" * (len(TASKS) + 2)]
        first = next(iter(self.rows.values()), {})
        lines.append(
            "| *chance* | – | "
            + " | ".join(f"{first[t].chance:.3f}" if t in first else "–" for t in TASKS)
            + " |"
        )
        for name, scores in self.rows.items():
            cells = [f"{scores[t].accuracy:.3f} ± {scores[t].std:.3f}" if t in scores else "–" for t in TASKS]
            lines.append(f"| {name} | {self.dims.get(name, '?')} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tasks": list(TASKS),
            "title_words": self.title_vocabulary,
            "encoders": {
                name: {"dim": self.dims.get(name), **{t: s.as_dict() for t, s in scores.items()}}
                for name, scores in self.rows.items()
            },
        }


def probe_all(
    encoders: Sequence[PlaylistEncoder], tasks: ProbeTasks, *, folds: int = 5, seed: int = 0
) -> ProbeTable:
    """One table: every probe for every encoder, on the same tasks and folds."""
    table = ProbeTable(title_vocabulary=tasks.title_vocabulary)
    for encoder in encoders:
        table.rows[encoder.name] = probe_encoder(encoder, tasks, folds=folds, seed=seed)
        table.dims[encoder.name] = encoder.dim
    return table
