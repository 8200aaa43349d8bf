"""The text-dropout ablation of the trimodal model (its metrics: :mod:`recsys.evaluation.retrieval`).

``ablation`` retrains on the same cached features with other text-dropout rates and
reports the retrieval and twin metrics for each.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from recsys.evaluation.retrieval import retrieval_metrics, twin_metrics
from recsys.models.trimodal import TrimodalConfig
from recsys.models.trimodal_batches import Features
from recsys.models.trimodal_training import TrainSettings, train_model


def ablation(
    train: Features,
    test: Features,
    base_config: TrimodalConfig,
    settings: TrainSettings,
    rates: Sequence[float],
    candidates: int = 100,
) -> dict[str, Any]:
    """Retrain with each text-dropout rate on the same features; metrics of each."""
    out = {}
    for rate in rates:
        model = train_model(train, replace(base_config, text_dropout=rate), settings)
        entry = {"retrieval": retrieval_metrics(model, test, candidates)}
        twins = twin_metrics(model, test)
        if twins is not None:
            entry["twins"] = twins
        out[f"text_dropout={rate:g}"] = entry
    return out
