"""The continuation report with the seq2seq candidate source added to the hybrid, against without it.

Held-out playlists (the harness's seeded challenge split) never reach training: the
collaborative sources are fitted on the training matrix and the encoder is trained on
the training playlists only, here, with the given configuration.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from sqlalchemy import Engine

from recsys.catalog.queries import playlist_entries, playlists_frame, tracks_frame
from recsys.catalog.schema import DEFAULT_NAMESPACE
from recsys.collaborative.matrix import playlist_matrix
from recsys.errors import InputError
from recsys.evaluation.continuation import HYBRID_MEMBERS, MethodsConfig, fit_sources, score_methods
from recsys.evaluation.reports import continuation_report
from recsys.evaluation.splits import challenge_split
from recsys.models.playlist_seq2seq import Seq2SeqConfig
from recsys.models.playlist_seq2seq_training import fit_seq2seq
from recsys.recommend.continuation import ContinuationService
from recsys.recommend.diversify import TrackTable
from recsys.recommend.seq2seq_source import PlaylistNeighbourSource


def evaluate_seq2seq_continuation(
    engine: Engine,
    config: Seq2SeqConfig,
    *,
    test_playlists: int = 300,
    namespace: str = DEFAULT_NAMESPACE,
    seed: int = 0,
    n: int = 500,
    neighbours: int = 50,
    weight: float = 1.0,
    threads: int | None = None,
) -> dict[str, Any]:
    """Score ``hybrid``, ``hybrid+seq2seq`` (the source fused with ``weight``) and ``seq2seq`` alone."""
    if threads:
        torch.set_num_threads(threads)
    entries = playlist_entries(engine, namespace=namespace)
    playlists = playlists_frame(engine, namespace=namespace)
    if entries.height == 0:
        raise InputError(f"namespace {namespace!r} holds no playlists: ingest some first")
    cases = challenge_split(entries, playlists, n_test=test_playlists, seed=seed)
    held_out = {c.playlist_id for c in cases}
    train = playlist_matrix(entries, exclude=held_out)
    grouped = (
        entries.filter(~entries["playlist_id"].is_in(list(held_out)))
        .group_by("playlist_id", maintain_order=True)
        .agg("track_id")
    )
    train_playlists = grouped["track_id"].to_list()
    methods = MethodsConfig()
    start = time.perf_counter()
    sources, fit_seconds = fit_sources(train, playlists, list(HYBRID_MEMBERS), methods)
    encoder, fit_report = fit_seq2seq(train_playlists, config, device="cpu")
    seq2seq = PlaylistNeighbourSource(encoder, train_playlists, neighbours=neighbours)
    fit_seconds["seq2seq"] = time.perf_counter() - start - sum(fit_seconds.values())
    tracks = TrackTable(tracks_frame(engine))
    members = [sources[m] for m in HYBRID_MEMBERS]
    weights = dict(methods.hybrid_weights)
    services = {
        "hybrid": ContinuationService(members, tracks, weights=weights, rrf_k=methods.rrf_k),
        "hybrid+seq2seq": ContinuationService(
            [*members, seq2seq], tracks, weights={**weights, "seq2seq": weight}, rrf_k=methods.rrf_k
        ),
        "seq2seq": ContinuationService([seq2seq], tracks, rrf_k=methods.rrf_k),
    }
    results = score_methods(services, cases, lambda t: tracks.artist(t), n=n)
    settings = {
        "split": "held out of the catalog",
        "seed": seed,
        "n": n,
        "namespace": namespace,
        "train_shape": list(train.shape),
        "train_nnz": train.nnz,
        "hybrid_weights": {**weights, "seq2seq (hybrid+seq2seq only)": weight},
        "rrf_k": methods.rrf_k,
        "encoder": {"label": config.label, "neighbours": neighbours, **fit_report.as_dict()},
        "seconds": round(time.perf_counter() - start, 1),
    }
    return continuation_report(results, settings=settings, fit_seconds=fit_seconds)
