"""Which torch device a model runs on: one rule for every model, encoder and job."""

from __future__ import annotations

import ctypes
import functools
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


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc keep freed blocks up to 32 MiB in the process heap instead of handing them back to the
    system; whether it could (``False`` off glibc, changing nothing).

    A CPU forward pass of a vision transformer allocates and frees tensors of tens of MB for every
    layer; by default each comes fresh from the system and is paid again as page faults on first
    touch (about 150,000 per CLIP B/32 pass over 30 frames, a sixth of its time in int8). Kept in
    the heap they are reused. The process's memory then stays near its peak instead of shrinking
    between calls. Once per process.
    """
    m_trim_threshold, m_mmap_threshold = -1, -3
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        gnu = libc.gnu_get_libc_version  # only glibc has the knobs below
    except (OSError, AttributeError):
        return False
    del gnu
    return bool(mallopt(m_mmap_threshold, 32 * 2**20)) and bool(mallopt(m_trim_threshold, 2**30))
