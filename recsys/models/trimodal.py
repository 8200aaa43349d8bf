"""The trimodal video–text–music model (after ViML, McKee et al., CVPR 2023). No I/O.

Three towers, one per modality, each a small Transformer encoder over a feature
sequence: sampled video frames (CLIP or descriptor features), text tokens (MiniLM or
CLIP text states) and music frames (per-second features). Each tower standardises
its input with statistics held as buffers (set from the training data), adds learned
positions, runs ``layers`` pre-norm Transformer layers, mean-pools the valid steps
and projects to the shared ``embed_dim`` space, unit length.

Fusion (the operator chosen): a **gated sum** of the unit video and text vectors,

    q = (w_v · m_v · v + w_t · m_t · t) / ‖w_v · m_v · v + w_t · m_t · t‖

with learned positive weights ``w_v``, ``w_t`` (softplus) and presence flags
``m_v``, ``m_t`` ∈ {0, 1}. A missing modality contributes nothing, so video-only,
text-only and video+text queries are all the same operator, and a track's cosine
score splits exactly into what the video and the text contributed:
``q·m = (w_v m_v v·m)/‖·‖ + (w_t m_t t·m)/‖·‖``. A concatenation MLP could fit
interactions a sum cannot, but loses that decomposition, which the scoring service
reports to users.

Training: symmetric InfoNCE between the fused query and the music vector of the
same clip (in-batch negatives) with a learned temperature (CLIP's log-scale,
clamped at 100); text dropout replaces the text of a share ``text_dropout`` of the
clips by "absent" so the fused query also works, and is trained, without text;
``aux_weight`` adds the same loss for the video-only and text-only queries.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class TrimodalConfig:
    video_dim: int
    text_dim: int
    music_dim: int
    d_model: int = 128
    heads: int = 4
    layers: int = 2
    ff_dim: int = 256
    dropout: float = 0.1
    max_len: int = 64
    embed_dim: int = 128
    text_dropout: float = 0.5
    aux_weight: float = 0.5
    temperature: float = 0.07
    lr: float = 1e-3
    weight_decay: float = 0.01
    seed: int = 7


class SequenceEncoder(nn.Module):
    """(B, T, D_in) features and a (B, T) validity mask → (B, E) unit vectors."""

    mean: Tensor
    std: Tensor

    def __init__(self, in_dim: int, config: TrimodalConfig) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))
        self.proj_in = nn.Linear(in_dim, config.d_model)
        self.pos = nn.Parameter(torch.zeros(config.max_len, config.d_model))
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(
            config.d_model,
            config.heads,
            config.ff_dim,
            config.dropout,
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.d_model)
        self.proj_out = nn.Linear(config.d_model, config.embed_dim)
        self.max_len = config.max_len

    def set_input_stats(self, mean: Tensor, std: Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(1e-4))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        x, mask = x[:, : self.max_len], mask[:, : self.max_len]  # (B, T, D_in), (B, T)
        # A row with no valid step (a modality absent) still needs one key to attend to.
        mask = mask.clone()
        mask[:, 0] |= ~mask.any(dim=1)
        h = self.proj_in((x - self.mean) / self.std) + self.pos[: x.shape[1]]  # (B, T, d)
        h = self.encoder(h, src_key_padding_mask=~mask)  # (B, T, d)
        h = self.norm(h)
        weights = mask.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
        pooled = (h * weights).sum(1) / weights.sum(1).clamp_min(1.0)  # (B, d)
        return F.normalize(self.proj_out(pooled), dim=-1)  # (B, E)


@dataclass
class Query:
    """A fused query (B, E) and its video and text parts; ``vector = video + text``."""

    vector: Tensor
    video: Tensor
    text: Tensor


class TrimodalModel(nn.Module):
    def __init__(self, config: TrimodalConfig) -> None:
        super().__init__()
        self.config = config
        self.video = SequenceEncoder(config.video_dim, config)
        self.text = SequenceEncoder(config.text_dim, config)
        self.music = SequenceEncoder(config.music_dim, config)
        self.gate = nn.Parameter(torch.zeros(2))  # softplus → (w_video, w_text)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / config.temperature)))

    def fuse(self, video: Tensor | None, text: Tensor | None, has_text: Tensor | None = None) -> Query:
        """Unit video (B, E) and/or text (B, E) vectors → the fused query and its parts."""
        if video is None and text is None:
            raise ValueError("a query needs a video, a text, or both")
        ref = video if video is not None else text
        assert ref is not None
        w = F.softplus(self.gate) + 1e-3  # (2,)
        zeros = torch.zeros_like(ref)
        v_part = w[0] * video if video is not None else zeros  # (B, E)
        t_part = w[1] * text if text is not None else zeros  # (B, E)
        if text is not None and has_text is not None:
            t_part = t_part * has_text.to(t_part.dtype).unsqueeze(-1)
        norm = (v_part + t_part).norm(dim=-1, keepdim=True).clamp_min(1e-8)  # (B, 1)
        return Query(vector=(v_part + t_part) / norm, video=v_part / norm, text=t_part / norm)

    def query(
        self,
        video: Tensor | None = None,
        video_mask: Tensor | None = None,
        text: Tensor | None = None,
        text_mask: Tensor | None = None,
    ) -> Query:
        v = self.video(video, _mask(video, video_mask)) if video is not None else None
        t = self.text(text, _mask(text, text_mask)) if text is not None else None
        return self.fuse(v, t)

    def embed_music(self, music: Tensor, music_mask: Tensor | None = None) -> Tensor:
        return self.music(music, _mask(music, music_mask))  # (B, E)

    def scale(self) -> Tensor:
        return self.logit_scale.clamp(max=math.log(100.0)).exp()


def _mask(x: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    return mask.bool()


def info_nce(queries: Tensor, keys: Tensor, scale: Tensor) -> Tensor:
    """Symmetric InfoNCE: row i of ``queries`` (B, E) matches row i of ``keys`` (B, E)."""
    logits = scale * queries @ keys.T  # (B, B)
    target = torch.arange(len(queries), device=queries.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


class TrimodalLightning(L.LightningModule):
    """Training of :class:`TrimodalModel` on batches of (video, text, music) feature sequences.

    A batch is a dict with ``video`` (B, Tv, Dv), ``video_mask`` (B, Tv), ``text``
    (B, Lt, Dt), ``text_mask`` (B, Lt), ``music`` (B, Tm, Dm), ``music_mask`` (B, Tm).
    """

    def __init__(self, config: dict[str, Any] | TrimodalConfig) -> None:
        super().__init__()
        cfg = config if isinstance(config, TrimodalConfig) else TrimodalConfig(**config)
        self.save_hyperparameters({"config": asdict(cfg)})
        self.cfg = cfg
        self.model = TrimodalModel(cfg)

    def losses(self, batch: dict[str, Tensor], text_dropout: float) -> dict[str, Tensor]:
        m = self.model
        v = m.video(batch["video"], batch["video_mask"])  # (B, E)
        t = m.text(batch["text"], batch["text_mask"])  # (B, E)
        music = m.music(batch["music"], batch["music_mask"])  # (B, E)
        keep = torch.rand(len(v), device=v.device) >= text_dropout  # (B,)
        fused = m.fuse(v, t, has_text=keep).vector
        scale = m.scale()
        main = info_nce(fused, music, scale)
        video_only = info_nce(v, music, scale)
        text_only = info_nce(t, music, scale)
        total = main + self.cfg.aux_weight * 0.5 * (video_only + text_only)
        return {"loss": total, "fused": main, "video_only": video_only, "text_only": text_only}

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        out = self.losses(batch, self.cfg.text_dropout)
        self.log_dict(
            {f"train/{k}": v.detach() for k, v in out.items()},
            prog_bar=False,
            batch_size=len(batch["video"]),
            sync_dist=True,  # the same value on every rank
        )
        return out["loss"]

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        steps = self.trainer.estimated_stepping_batches if self.trainer else 1000
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.cfg.lr, total_steps=max(1, int(steps)), pct_start=0.1
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
