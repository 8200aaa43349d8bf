"""The seq2seq playlist autoencoder (Papreja et al., 2019): playlists are sentences, tracks are words.

An encoder RNN (GRU or LSTM, uni- or bidirectional) reads a playlist's tokens; a decoder
RNN with attention over the encoder outputs reconstructs the playlist token by token with
teacher forcing (BOS + tokens → tokens + EOS).

The playlist vector is the encoder summary: the final hidden state of the encoder's last
layer (for a bidirectional encoder, the forward state after the last track concatenated
with the backward state after the first; for an LSTM, the hidden state ``h``, not the
cell ``c``). Its size is ``hidden × directions``. It also initialises the decoder, and
decoder inputs are replaced by ``UNK`` with probability ``decoder_input_dropout`` during
training (Bowman et al., 2016), so the decoder cannot reconstruct from its own inputs
and attention alone and must lean on the summary.

Output layer: tied to the input embeddings. With a large vocabulary the loss is a
sampled softmax: each target against ``sampled_negatives`` tokens drawn from the
unigram^0.75 distribution, shared by the batch (accidental hits masked, no log-Q
correction, so it is a ranking loss, not a calibrated likelihood); with
``sampled_negatives = 0`` or a vocabulary no larger than that, the full softmax.

Vocabulary and long playlists: see :mod:`recsys.models.track_vocab`. Training (the
Trainer loop) is :mod:`recsys.models.playlist_seq2seq_training`; saving, loading and the
model version, :mod:`recsys.models.playlist_seq2seq_store`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from torch import nn

from recsys.devices import resolve_device
from recsys.models.distributed import check_distribution
from recsys.models.track_vocab import (
    BOS,
    PAD,
    UNK,
    Batch,
    TrackVocab,
    collate,
    pool_windows,
    split_windows,
)


@dataclass
class Seq2SeqConfig:
    """Hyperparameters of the playlist encoder (the sizes that train in minutes on two CPU cores)."""

    arch: Literal["gru", "lstm"] = "gru"
    bidirectional: bool = False
    embed_dim: int = 64
    hidden: int = 128  # per direction; the playlist vector has hidden × directions
    layers: int = 1
    dropout: float = 0.1
    decoder_input_dropout: float = 0.25
    sampled_negatives: int = 1024  # 0: full softmax
    min_count: int = 2
    max_vocab: int | None = None
    max_len: int = 250  # long-playlist rule: windows of at most this many tracks
    batch_size: int = 64
    epochs: int = 5
    lr: float = 3e-3
    grad_clip: float = 1.0
    seed: int = 7
    precision: str = "auto"  # auto: bf16-mixed on CUDA, 32-true on CPU
    # Data-parallel training (recsys.models.distributed): one process per device and node.
    strategy: str = "auto"  # auto, ddp or ddp_spawn
    devices: int = 1  # per node
    num_nodes: int = 1

    def __post_init__(self) -> None:
        if self.arch not in ("gru", "lstm"):
            raise ValueError(f"arch must be 'gru' or 'lstm', got {self.arch!r}")
        check_distribution(self.strategy, self.devices, self.num_nodes)

    @property
    def world_size(self) -> int:
        return self.devices * self.num_nodes

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def dim(self) -> int:
        return self.hidden * self.directions

    @property
    def label(self) -> str:
        return f"seq2seq-{self.arch}-{'bi' if self.bidirectional else 'uni'}"

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Seq2SeqConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def _rnn(
    arch: str, input_size: int, hidden: int, layers: int, dropout: float, bidirectional: bool
) -> nn.RNNBase:
    cls = nn.GRU if arch == "gru" else nn.LSTM
    return cls(
        input_size,
        hidden,
        num_layers=layers,
        batch_first=True,
        dropout=dropout if layers > 1 else 0.0,
        bidirectional=bidirectional,
    )


def _reverse_index(lengths: torch.Tensor, width: int) -> torch.Tensor:
    """(B, T) positions that reverse each sequence within its length and leave the padding in place."""
    steps = torch.arange(width, device=lengths.device)[None, :]  # (1, T)
    end = lengths[:, None]  # (B, 1)
    return torch.where(steps < end, end - 1 - steps, steps)


class PlaylistSeq2Seq(nn.Module):
    """Encoder, attention decoder and tied output layer. Tensors in, tensors out."""

    def __init__(self, config: Seq2SeqConfig, vocab_size: int) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embedding = nn.Embedding(vocab_size, c.embed_dim, padding_idx=PAD)
        sizes = [c.embed_dim] + [c.dim] * (c.layers - 1)
        self.forward_layers = nn.ModuleList(_rnn(c.arch, n, c.hidden, 1, 0.0, False) for n in sizes)
        self.backward_layers = nn.ModuleList(
            _rnn(c.arch, n, c.hidden, 1, 0.0, False) for n in (sizes if c.bidirectional else [])
        )
        self.bridge = nn.Linear(c.dim, c.hidden * c.layers)
        self.decoder = _rnn(c.arch, c.embed_dim, c.hidden, c.layers, c.dropout, False)
        self.attn = nn.Linear(c.dim, c.hidden, bias=False)
        self.combine = nn.Linear(c.hidden + c.dim, c.embed_dim)
        self.out_bias = nn.Parameter(torch.zeros(vocab_size))
        self.drop = nn.Dropout(c.dropout)

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Playlist vectors (B, hidden × dirs) and encoder outputs (B, T, hidden × dirs).

        Padded (not packed) sequences: on the CPU, packed RNN backward costs grow with
        the square of the length. Padding comes after each sequence, so the forward
        state after the last track is read at ``length - 1``; the backward direction
        runs on each sequence reversed within its length.
        """
        lengths = lengths.to(tokens.device)
        x = self.drop(self.embedding(tokens))  # (B, T, E)
        last = (lengths - 1)[:, None, None]  # (B, 1, 1)
        reverse = _reverse_index(lengths, tokens.shape[1])[:, :, None]  # (B, T, 1)
        finals: list[torch.Tensor] = []
        for depth, forward_rnn in enumerate(self.forward_layers):
            out_f, _ = forward_rnn(x)  # (B, T, H)
            parts, finals = [out_f], [out_f.gather(1, last.expand(-1, 1, out_f.shape[2])).squeeze(1)]
            if self.config.bidirectional:
                x_rev = x.gather(1, reverse.expand(-1, -1, x.shape[2]))  # (B, T, In)
                out_r, _ = self.backward_layers[depth](x_rev)  # (B, T, H), reversed time
                finals.append(out_r.gather(1, last.expand(-1, 1, out_r.shape[2])).squeeze(1))
                parts.append(out_r.gather(1, reverse.expand(-1, -1, out_r.shape[2])))  # back in order
            x = torch.cat(parts, dim=-1)  # (B, T, D)
            if depth < len(self.forward_layers) - 1:
                x = self.drop(x)
        return torch.cat(finals, dim=-1), x  # (B, D), (B, T, D)

    def decode(
        self, summary: torch.Tensor, outputs: torch.Tensor, lengths: torch.Tensor, decoder_in: torch.Tensor
    ) -> torch.Tensor:
        """Output features (B, T + 1, E) for each decoder step, to be scored against the embeddings."""
        c = self.config
        batch = summary.shape[0]
        h0 = (
            torch.tanh(self.bridge(summary)).view(batch, c.layers, c.hidden).transpose(0, 1).contiguous()
        )  # (L, B, H)
        state: Any = (h0, torch.zeros_like(h0)) if c.arch == "lstm" else h0
        emb = self.drop(self.embedding(decoder_in))  # (B, T + 1, E)
        dec, _ = self.decoder(emb, state)  # (B, T + 1, H); steps past length + 1 are ignored by the loss
        scores = torch.bmm(dec, self.attn(outputs).transpose(1, 2))  # (B, T + 1, T)
        steps = torch.arange(outputs.shape[1], device=outputs.device)
        scores = scores.masked_fill(steps[None, None, :] >= lengths.to(outputs.device)[:, None, None], -1e4)
        context = torch.bmm(torch.softmax(scores.float(), dim=-1).to(outputs.dtype), outputs)  # (B, T + 1, D)
        return torch.tanh(self.combine(torch.cat([dec, context], dim=-1)))  # (B, T + 1, E) from (H + D)

    def logits(self, features: torch.Tensor, candidates: torch.Tensor | None = None) -> torch.Tensor:
        """Scores of features (..., E) against all tokens, or against ``candidates`` (C,): (..., V or C)."""
        if candidates is None:
            return features @ self.embedding.weight.T + self.out_bias
        return features @ self.embedding.weight[candidates].T + self.out_bias[candidates]

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, decoder_in: torch.Tensor) -> torch.Tensor:
        summary, outputs = self.encode(tokens, lengths)
        return self.decode(summary, outputs, lengths, decoder_in)


class Seq2SeqLightning(L.LightningModule):
    """Training of :class:`PlaylistSeq2Seq` under Lightning (any accelerator or strategy)."""

    def __init__(self, config: dict[str, Any], vocab_size: int, token_counts: list[int]) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.cfg = Seq2SeqConfig.from_dict(config)
        self.model = PlaylistSeq2Seq(self.cfg, vocab_size)
        weights = torch.as_tensor(token_counts, dtype=torch.float64).clamp(min=0) ** 0.75
        weights[PAD] = 0.0
        weights[BOS] = 0.0
        self.register_buffer("noise", (weights / weights.sum()).float(), persistent=False)

    def _loss(self, batch: Batch) -> torch.Tensor:
        tokens, lengths, decoder_in, target = batch.tokens, batch.lengths, batch.decoder_in, batch.target
        if self.training and self.cfg.decoder_input_dropout > 0:
            drop = torch.rand(decoder_in.shape, device=decoder_in.device) < self.cfg.decoder_input_dropout
            drop &= (decoder_in != PAD) & (decoder_in != BOS)
            decoder_in = decoder_in.masked_fill(drop, UNK)
        features = self.model(tokens, lengths, decoder_in)  # (B, T + 1, E)
        mask = target != PAD
        feats, wanted = features[mask], target[mask]  # (N, E), (N,)
        noise: torch.Tensor = self.noise  # type: ignore[assignment]
        vocab = noise.shape[0]
        k = self.cfg.sampled_negatives
        if k <= 0 or k >= vocab:
            return nn.functional.cross_entropy(self.model.logits(feats).float(), wanted)
        negatives = torch.multinomial(noise, k, replacement=True)  # (K,)
        weight, bias = self.model.embedding.weight, self.model.out_bias
        positive = (feats * weight[wanted]).sum(-1) + bias[wanted]  # (N,)
        negative = self.model.logits(feats, negatives)  # (N, K)
        negative = negative.masked_fill(negatives[None, :] == wanted[:, None], -1e4)  # accidental hits
        logits = torch.cat([positive[:, None], negative], dim=1).float()  # (N, 1 + K)
        return nn.functional.cross_entropy(logits, torch.zeros_like(wanted))

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log(
            "train_loss", loss, on_step=False, on_epoch=True, batch_size=batch.tokens.shape[0], sync_dist=True
        )
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.cfg.lr)


class Seq2SeqEncoder:
    """A trained playlist encoder: vocabulary + network; embeds playlists of catalog track ids."""

    def __init__(
        self, config: Seq2SeqConfig, vocab: TrackVocab, model: PlaylistSeq2Seq, *, device: str = "auto"
    ):
        self.config = config
        self.vocab = vocab
        self.model = model
        self.device = resolve_device(device)
        self.name = config.label

    @property
    def dim(self) -> int:
        return self.config.dim

    @torch.no_grad()
    def embed(self, playlists: Sequence[Sequence[int]], *, batch_size: int = 256) -> np.ndarray:
        """Playlist vectors (N, hidden × dirs), float32; long playlists by the window rule."""
        windows = split_windows([self.vocab.encode(p) for p in playlists], self.config.max_len)
        model = self.model.to(self.device).eval()
        order = np.argsort([len(s) for s in windows.sequences], kind="stable")  # similar lengths together
        vectors = np.zeros((len(windows.sequences), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = collate([windows.sequences[i] for i in idx])
            summary, _ = model.encode(batch.tokens.to(self.device), batch.lengths)
            vectors[idx] = summary.float().cpu().numpy()
        return pool_windows(vectors, windows, len(playlists))
