"""Which torch device a model runs on: one rule for every model, encoder and job."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from recsys.errors import ConfigError

if TYPE_CHECKING:
    import torch

DeviceLike: TypeAlias = "str | torch.device"
"""What the models and encoders accept as a device: ``auto``, a torch device name, or a device."""


def resolve_device(device: DeviceLike = "auto") -> torch.device:
    """``auto`` → the first CUDA device when one is visible, else the CPU; anything else
    as torch spells it (``cpu``, ``cuda``, ``cuda:1``). Naming CUDA where no GPU is
    visible, or a device torch does not know, is a ``ConfigError``, not a crash later."""
    import torch

    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError(f"unknown device {device!r}: {exc}") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {str(device)!r} asked for, but no CUDA GPU is visible")
    return resolved
