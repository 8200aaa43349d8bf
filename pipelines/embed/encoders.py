"""The audio encoders a job can be given, built from the settings (and overrides)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from recsys.config import Settings


class Encoder(StrEnum):
    culturemert = "culturemert"
    dsp = "dsp"


def build_audio_embedder(
    cfg: Settings, encoder: Encoder, *, model: str | None = None, batch_size: int | None = None
) -> Any:
    """The embedder the settings (and command-line overrides) describe."""
    if encoder is Encoder.dsp:
        # deferred: numpy
        from recsys.embedders.dsp_audio import DspAudioEmbedder

        return DspAudioEmbedder()
    # deferred: soundfile, numpy
    from recsys.embedders.culturemert import CultureMertConfig, CultureMertEmbedder

    layers, weights = cfg.audio_layers, None
    if "," in layers:
        weights = tuple(float(w) for w in layers.split(","))
        layers = "weights"
    return CultureMertEmbedder(
        CultureMertConfig(
            model=model or cfg.audio_model,
            revision=cfg.audio_model_revision,
            window_s=cfg.audio_window_s,
            hop_s=cfg.audio_hop_s,
            batch_size=batch_size or cfg.audio_batch_size,
            layers=layers,
            layer_weights=weights,
            device=cfg.device,
            precision=cfg.audio_precision,
        )
    )
