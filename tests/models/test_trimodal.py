"""The trimodal model: shapes, the fusion's exact decomposition, the loss, text dropout, a planted known answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from recsys.evaluation.retrieval import candidate_rows, retrieval_metrics
from recsys.models.trimodal import TrimodalConfig, TrimodalLightning, TrimodalModel, info_nce
from recsys.models.trimodal_batches import Features
from recsys.models.trimodal_bundle import FeatureSpec, load_bundle, save_bundle
from recsys.models.trimodal_training import TrainSettings, default_config, train_model

SMALL = {"d_model": 32, "ff_dim": 64, "embed_dim": 32, "heads": 4, "layers": 1}


def small_model(**overrides: float) -> TrimodalModel:
    torch.manual_seed(0)
    return TrimodalModel(TrimodalConfig(video_dim=10, text_dim=12, music_dim=6, **SMALL, **overrides)).eval()  # type: ignore[arg-type]


def test_every_kind_of_query_is_a_unit_vector_and_splits_exactly() -> None:
    model = small_model()
    video, text = torch.randn(3, 5, 10), torch.randn(3, 7, 12)
    text_mask = torch.ones(3, 7, dtype=torch.bool)
    text_mask[0, 3:] = False
    music = model.embed_music(torch.randn(4, 6, 6))  # (4, E)
    for query in (
        model.query(video),
        model.query(text=text, text_mask=text_mask),
        model.query(video, None, text, text_mask),
    ):
        assert query.vector.shape == (3, 32)
        assert torch.allclose(query.vector.norm(dim=-1), torch.ones(3), atol=1e-5)
        scores = query.vector @ music.T
        assert torch.allclose(scores, query.video @ music.T + query.text @ music.T, atol=1e-5)
    video_only = model.query(video)
    assert torch.count_nonzero(video_only.text) == 0
    with pytest.raises(ValueError, match="needs a video, a text, or both"):
        model.query()


def test_padding_does_not_change_a_sequence_embedding() -> None:
    model = small_model()
    x = torch.randn(1, 4, 10)
    padded = torch.cat([x, torch.randn(1, 3, 10) * 50], dim=1)
    mask = torch.tensor([[True] * 4 + [False] * 3])
    assert torch.allclose(
        model.video(x, torch.ones(1, 4, dtype=torch.bool)), model.video(padded, mask), atol=1e-5
    )


def test_info_nce_prefers_the_matching_rows() -> None:
    keys = torch.nn.functional.normalize(torch.randn(16, 8), dim=-1)
    matched = info_nce(keys, keys, torch.tensor(10.0))
    shuffled = info_nce(keys, keys[torch.randperm(16)], torch.tensor(10.0))
    assert matched < shuffled


def test_text_dropout_one_trains_on_video_alone() -> None:
    module = TrimodalLightning(TrimodalConfig(video_dim=10, text_dim=12, music_dim=6, **SMALL))  # type: ignore[arg-type]
    module.eval()
    batch = {
        "video": torch.randn(8, 5, 10),
        "video_mask": torch.ones(8, 5, dtype=torch.bool),
        "text": torch.randn(8, 7, 12),
        "text_mask": torch.ones(8, 7, dtype=torch.bool),
        "music": torch.randn(8, 6, 6),
        "music_mask": torch.ones(8, 6, dtype=torch.bool),
    }
    dropped = module.losses(batch, text_dropout=1.0)
    assert torch.allclose(dropped["fused"], dropped["video_only"], atol=1e-5)
    kept = module.losses(batch, text_dropout=0.0)
    assert not torch.allclose(kept["fused"], kept["video_only"])
    assert module.hparams["config"]["text_dropout"] == 0.5


def planted(n: int, seed: int = 0) -> Features:
    """Music made of four latent factors; the video shows the first two, the text the last two."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 4))
    mix = [rng.normal(size=(2, 10)), rng.normal(size=(2, 12)), rng.normal(size=(4, 6))]

    def seq(x: np.ndarray, m: np.ndarray, t: int) -> np.ndarray:
        return ((x @ m)[:, None, :] + 0.3 * rng.normal(size=(n, t, m.shape[1]))).astype(np.float32)

    video, text, music = seq(latent[:, :2], mix[0], 6), seq(latent[:, 2:], mix[1], 8), seq(latent, mix[2], 5)
    ones = lambda a: np.ones(a.shape[:2], bool)  # noqa: E731
    return Features(
        [str(i) for i in range(n)],
        [""] * n,
        [{}] * n,
        video,
        ones(video),
        music,
        ones(music),
        text,
        ones(text),
    )


@pytest.mark.slow
def test_planted_structure_is_recovered_and_text_resolves_what_video_cannot(tmp_path: Path) -> None:
    data = planted(260)
    train, test = data.subset(range(200)), data.subset(range(200, 260))
    config = default_config(train, **SMALL)
    model = train_model(train, config, TrainSettings(epochs=25, batch_size=32, device="cpu"))
    metrics = retrieval_metrics(model, test, candidates=50)
    chance = 10 / 50
    assert metrics["video+text"]["recall@10"] >= 0.9
    assert metrics["video"]["recall@10"] > 2 * chance
    assert metrics["video+text"]["recall@1"] > metrics["video"]["recall@1"] + 0.2
    assert metrics["video+text"]["median_rank"] < metrics["video"]["median_rank"]
    # The bundle round-trips: same queries after save and load.
    path = tmp_path / "model.pt"
    version = save_bundle(path, model, FeatureSpec(), metrics)
    loaded = load_bundle(path)
    assert loaded.version == version and loaded.metrics == metrics
    again = retrieval_metrics(loaded.model, test, candidates=50)
    assert again == metrics


def test_candidate_rows_start_with_the_truth_and_never_repeat() -> None:
    rows = candidate_rows(120, 100, seed=3)
    assert rows.shape == (120, 100)
    assert (rows[:, 0] == np.arange(120)).all()
    assert all(len(set(r)) == 100 for r in rows)
    with pytest.raises(ValueError, match="need at least 100"):
        candidate_rows(50, 100)
