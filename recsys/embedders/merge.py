"""Task arithmetic over MERT-family checkpoints: θ = θ_base + λ·Σ_c (θ_c − θ_base).

CultureMERT-TA-95M was built this way from single-culture continual pre-trainings
of MERT-v1-95M with λ = 0.2. Every checkpoint is loaded as a ``HubertModel``
(:func:`~recsys.embedders.checkpoints.load_hubert`, whatever its weight-norm spelling)
and must have the base's architecture (same parameter names and shapes). The result is
written beside the base's ``config.json`` and ``preprocessor_config.json`` (copied), its
weights under ``HubertModel``'s parameter names as ``model.safetensors``, plus
``merge.json`` recording the inputs, so it loads wherever the base loads.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recsys.embedders.checkpoints import DEFAULT_REVISION, Checkpoint, load_hubert, resolve_checkpoint
from recsys.errors import ConfigError


@dataclass(frozen=True)
class MergeResult:
    out: Path
    base: str
    cultures: list[str]
    lam: float
    tensors: int
    parameters: int


def task_arithmetic(base: dict[str, Any], cultures: Sequence[dict[str, Any]], lam: float) -> dict[str, Any]:
    """θ_base + λ·Σ(θ_c − θ_base) for state dicts with the same names and shapes (float tensors merged)."""
    import torch  # deferred: torch (ml extra)

    out: dict[str, Any] = {}
    for name, theta in base.items():
        if not torch.is_floating_point(theta):
            out[name] = theta.clone()
            continue
        delta = torch.zeros_like(theta, dtype=torch.float32)
        for culture in cultures:
            delta += culture[name].to(torch.float32) - theta.to(torch.float32)
        out[name] = (theta.to(torch.float32) + lam * delta).to(theta.dtype).contiguous()
    return out


def merge_checkpoints(
    base: str,
    cultures: Sequence[str],
    out: Path,
    *,
    lam: float = 0.2,
    revision: str = DEFAULT_REVISION,
    cache_dir: Path | None = None,
) -> MergeResult:
    """Merge ``cultures`` into ``base`` (ids or directories) and save a loadable checkpoint in ``out``."""
    if not cultures:
        raise ConfigError("task arithmetic needs at least one --culture checkpoint")
    base_ckpt = resolve_checkpoint(base, revision, cache_dir=cache_dir)
    base_raw = load_hubert(base_ckpt.path).state_dict()
    culture_ckpts: list[Checkpoint] = []
    states = []
    for source in cultures:
        ckpt = resolve_checkpoint(source, revision, cache_dir=cache_dir)
        state = load_hubert(ckpt.path).state_dict()
        _check_same_shape(base_ckpt, base_raw, ckpt, state)
        culture_ckpts.append(ckpt)
        states.append(state)
    merged = task_arithmetic(base_raw, states, lam)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "preprocessor_config.json"):
        if (base_ckpt.path / name).is_file():
            shutil.copyfile(base_ckpt.path / name, out / name)
    from safetensors.torch import save_file  # deferred: safetensors (audio extra)

    for stale in ("pytorch_model.bin", "model.safetensors"):
        (out / stale).unlink(missing_ok=True)
    save_file(merged, str(out / "model.safetensors"), metadata={"format": "pt"})
    provenance = {
        "method": "task arithmetic: base + lambda * sum(culture - base)",
        "lambda": lam,
        "base": base_ckpt.version,
        "cultures": [c.version for c in culture_ckpts],
    }
    (out / "merge.json").write_text(json.dumps(provenance, indent=2))
    return MergeResult(
        out=out,
        base=base_ckpt.version,
        cultures=[c.version for c in culture_ckpts],
        lam=lam,
        tensors=len(merged),
        parameters=sum(int(t.numel()) for t in merged.values()),
    )


def _check_same_shape(
    base: Checkpoint, base_state: dict[str, Any], other: Checkpoint, state: dict[str, Any]
) -> None:
    missing = sorted(set(base_state) - set(state))
    extra = sorted(set(state) - set(base_state))
    if missing or extra:
        raise ConfigError(
            f"{other.path}: not the architecture of {base.path}: "
            f"{len(missing)} parameter(s) missing (e.g. {missing[:2]}), {len(extra)} extra (e.g. {extra[:2]})"
        )
    for name, tensor in base_state.items():
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise ConfigError(
                f"{other.path}: {name} has shape {tuple(state[name].shape)}, the base has {tuple(tensor.shape)}"
            )
