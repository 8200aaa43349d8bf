from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from recsys.evaluation.probing import linear_probe
from recsys.models.playlist_baselines import fit_sif
from recsys.models.playlist_seq2seq import PlaylistSeq2Seq
from recsys.models.playlist_seq2seq_store import load_encoder_file, save_encoder
from recsys.models.playlist_seq2seq_training import fit_seq2seq
from recsys.models.track_vocab import collate
from tests.models.conftest import motif_playlists, tiny_config


@pytest.mark.parametrize(
    ("arch", "bidirectional"), [("gru", False), ("gru", True), ("lstm", False), ("lstm", True)]
)
def test_vector_does_not_depend_on_padding(arch: str, bidirectional: bool) -> None:
    config = tiny_config(arch=arch, bidirectional=bidirectional, layers=2)
    torch.manual_seed(0)
    model = PlaylistSeq2Seq(config, 40).eval()
    short, long = [5, 6, 7], [8, 9, 10, 11, 12, 13, 14]
    alone = collate([short])
    together = collate([long, short])
    with torch.no_grad():
        v_alone, _ = model.encode(alone.tokens, alone.lengths)
        v_together, _ = model.encode(together.tokens, together.lengths)
        features = model(together.tokens, together.lengths, together.decoder_in)
    assert v_alone.shape == (1, config.dim)
    torch.testing.assert_close(v_alone[0], v_together[1])
    assert features.shape == (2, 8, config.embed_dim)


def test_training_lowers_the_loss_and_reports() -> None:
    playlists, _ = motif_playlists(40)
    encoder, report = fit_seq2seq(playlists, tiny_config(epochs=4, lr=1e-2))
    assert report.epochs == 4
    assert report.epoch_losses[-1] < report.epoch_losses[0]
    assert report.vocab_size == 24 + 4
    assert encoder.embed(playlists).shape == (80, 16)


def test_sampled_softmax_trains() -> None:
    rng = np.random.default_rng(0)
    playlists = [rng.integers(0, 300, size=12).tolist() for _ in range(60)]
    _, report = fit_seq2seq(playlists, tiny_config(sampled_negatives=20, epochs=2))
    assert all(np.isfinite(report.epoch_losses))


def test_same_seed_same_embeddings_and_save_load_round_trip(tmp_path: Path) -> None:
    playlists, _ = motif_playlists(20)
    config = tiny_config(arch="lstm", bidirectional=True, dropout=0.2, decoder_input_dropout=0.3)
    first, _ = fit_seq2seq(playlists, config)
    second, _ = fit_seq2seq(playlists, config)
    probe = [*playlists[:6], [100, 999_999], []]
    a, b = first.embed(probe), second.embed(probe)
    np.testing.assert_array_equal(a, b)
    other, _ = fit_seq2seq(playlists, tiny_config(arch="lstm", bidirectional=True, dropout=0.2, seed=4))
    assert not np.array_equal(a, other.embed(probe))

    path = tmp_path / "encoder.pt"
    save_encoder(first, path)
    loaded = load_encoder_file(path, device="cpu")
    np.testing.assert_array_equal(loaded.embed(probe), a)
    assert loaded.config == first.config
    np.testing.assert_array_equal(loaded.vocab.track_ids, first.vocab.track_ids)


def test_long_playlists_are_read_in_windows() -> None:
    playlists, _ = motif_playlists(10)
    encoder, report = fit_seq2seq([*playlists, playlists[0] * 3], tiny_config(max_len=8, epochs=1))
    assert report.windowed_playlists == 21  # every 12-track playlist, and the 36-track one
    halves = encoder.embed([playlists[0][:8], playlists[0][8:]])
    whole = encoder.embed([playlists[0]])
    np.testing.assert_allclose(whole[0], (8 * halves[0] + 4 * halves[1]) / 12, rtol=1e-5, atol=1e-6)


def test_known_answer_order_is_in_the_seq2seq_vector_and_not_in_the_bag() -> None:
    playlists, labels = motif_playlists(60)
    encoder, _ = fit_seq2seq(playlists, tiny_config(epochs=4, lr=1e-2, hidden=32))
    seq2seq = linear_probe(encoder.embed(playlists), labels, folds=5)
    sif = fit_sif(playlists, dim=8, window=2)
    bag = linear_probe(sif.embed(playlists), labels, folds=5)
    assert seq2seq.accuracy >= 0.9
    assert bag.accuracy <= 0.6  # the pair's two playlists have the same bag vector


def test_max_seconds_stops_training_and_says_how_many_epochs_ran() -> None:
    playlists, _ = motif_playlists(20)
    _, report = fit_seq2seq(playlists, tiny_config(epochs=10_000), max_seconds=1)
    assert 1 <= report.epochs < 10_000
    assert len(report.epoch_losses) == report.epochs
