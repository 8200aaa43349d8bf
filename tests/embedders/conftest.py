"""A small MERT-format checkpoint written the way MERT publishes its checkpoints, and the embedders under test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from recsys.embedders.checkpoints import MERT_95M_CONFIG, MERT_PREPROCESSOR, hubert_config

SMALL = dict(
    MERT_95M_CONFIG,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    conv_dim=[16] * 7,
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=4,
)


def mert_names(state: dict) -> dict:
    """HubertModel's parameter names → MERT's published ones (old weight-norm spelling)."""
    return {
        k.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"
        ): v.clone()
        for k, v in state.items()
    }


def write_mert_checkpoint(path: Path, seed: int = 1, *, old_names: bool = True, config: dict | None = None):  # type: ignore[no-untyped-def]
    """A MERT-format checkpoint directory of a random small model; returns the reference HubertModel."""
    from transformers import HubertModel

    config = config or SMALL
    torch.manual_seed(seed)
    reference = HubertModel(hubert_config(config)).eval()
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config))
    (path / "preprocessor_config.json").write_text(json.dumps(MERT_PREPROCESSOR))
    state = reference.state_dict()
    torch.save(
        mert_names(state) if old_names else {k: v.clone() for k, v in state.items()},
        path / "pytorch_model.bin",
    )
    return reference


@pytest.fixture(scope="session")
def mert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mert") / "small-mert"
    write_mert_checkpoint(path)
    return path
