"""The ranking metrics agree with ranx (an independent implementation) on random rankings with planted relevance."""

from __future__ import annotations

import numpy as np
import pytest
from ranx import Qrels, Run, evaluate

from recsys.evaluation.metrics import CLICKS_NONE, clicks, ndcg, precision_at, r_precision, recall_at
from recsys.evaluation.retrieval import ranks_among, summarise

QUERIES = 60
ITEMS = 2_000


def planted(seed: int) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Rankings of 1..500 items per query; the truth is 1..80 items, planted near the top for some queries."""
    rng = np.random.default_rng(seed)
    rankings, truths = {}, {}
    for q in range(QUERIES):
        ranked = rng.choice(ITEMS, size=int(rng.integers(1, 501)), replace=False).tolist()
        truth = rng.choice(ITEMS, size=int(rng.integers(1, 81)), replace=False).tolist()
        if q % 3 == 0:  # a good recommender: part of the truth sits in the first places
            hits = truth[: max(1, len(truth) // 2)]
            ranked = [*hits, *[t for t in ranked if t not in set(hits)]][:500]
        rankings[f"q{q}"], truths[f"q{q}"] = ranked, truth
    return rankings, truths


def ranx_scores(
    rankings: dict[str, list[int]], truths: dict[str, list[int]], metrics: list[str]
) -> dict[str, list[float]]:
    """ranx's value of each metric for each query, in the order of ``rankings``."""
    qrels = Qrels({q: {str(t): 1 for t in truth} for q, truth in truths.items()})
    run = Run(
        {q: {str(t): float(len(ranked) - i) for i, t in enumerate(ranked)} for q, ranked in rankings.items()}
    )
    evaluate(qrels, run, metrics, make_comparable=True)
    return {m: [float(run.scores[m][q]) for q in rankings] for m in metrics}


@pytest.mark.parametrize("seed", [0, 1])
def test_continuation_metrics_agree_with_ranx(seed: int) -> None:
    rankings, truths = planted(seed)
    theirs = ranx_scores(
        rankings, truths, ["r-precision", "ndcg", "ndcg@10", "recall@50", "recall@500", "precision@10", "mrr"]
    )
    queries = list(rankings)
    ours = {
        "r-precision": [r_precision(rankings[q], truths[q]) for q in queries],
        "ndcg": [ndcg(rankings[q], truths[q]) for q in queries],
        "ndcg@10": [ndcg(rankings[q], truths[q], 10) for q in queries],
        "recall@50": [recall_at(rankings[q], truths[q], 50) for q in queries],
        "recall@500": [recall_at(rankings[q], truths[q], 500) for q in queries],
        "precision@10": [precision_at(rankings[q], truths[q], 10) for q in queries],
    }
    for name, values in ours.items():
        np.testing.assert_allclose(values, theirs[name], rtol=1e-6, atol=1e-9, err_msg=name)
    assert max(ours["r-precision"]) > 0.3  # the planted queries score, so the comparison is not all zeros
    # clicks is the rank of the first relevant track in tens: 1 / reciprocal rank
    for q, reciprocal in zip(queries, theirs["mrr"], strict=True):
        want = CLICKS_NONE if reciprocal == 0 else (round(1 / reciprocal) - 1) // 10
        assert clicks(rankings[q], truths[q]) == want


def test_trimodal_retrieval_recall_agrees_with_ranx() -> None:
    rng = np.random.default_rng(3)
    queries = rng.normal(size=(40, 8)).astype(np.float32)
    music = (queries + rng.normal(scale=1.5, size=queries.shape)).astype(
        np.float32
    )  # planted: each near its own
    candidates = np.stack([np.r_[i, rng.permutation(np.delete(np.arange(40), i))[:19]] for i in range(40)])
    ours = summarise(ranks_among(queries, music, candidates), 20)
    rankings = {
        f"q{i}": [int(c) for c in rows[np.argsort(-(music[rows] @ queries[i]), kind="stable")]]
        for i, rows in enumerate(candidates)
    }
    truths = {f"q{i}": [i] for i in range(40)}
    theirs = ranx_scores(rankings, truths, ["hit_rate@1", "hit_rate@5", "hit_rate@10"])
    for k in (1, 5, 10):
        assert ours[f"recall@{k}"] == pytest.approx(float(np.mean(theirs[f"hit_rate@{k}"])))
    assert 0.2 < ours["recall@1"] < 1.0  # neither chance nor trivial
