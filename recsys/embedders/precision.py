"""How the audio model computes: float32 (the reference) or int8 (a faster CPU path).

``float32`` runs the checkpoint as it is. ``int8`` replaces every ``nn.Linear`` of
the transformer (attention projections, feed-forward layers, the feature projection:
about two thirds of the work of a 5 s window) with a dynamically quantised one:
weights stored as int8 per output channel, activations quantised per batch as they
come, products accumulated in int32 (VNNI on x86 CPUs that have it). The
convolutional front end, the positional convolution and the layer norms stay float32.

Vectors of the two paths are close (cosine about 0.999 on real audio with the
full-size model) but not equal, so the precision is part of the embedder's version:
switching it makes the embed job embed every track again, and vectors of the two
never share a collection.

``int8-bf16`` is ``int8`` with the convolutional front end (a quarter of the float32
forward, about two fifths of the int8 one) in bfloat16: on CPUs with native bfloat16
(AVX512-BF16 or AMX: recent Xeon and EPYC) it makes the whole forward about a third
faster again, on others it may be slower. Its vectors differ from ``int8``'s (cosine
above 0.9999), so it is a precision, and a version, of its own.

int8 runs on the CPU only (PyTorch's dynamically quantised linear layers have no CUDA
kernels); on CUDA the model already runs in bfloat16.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal, get_args

from recsys.errors import ConfigError

Precision = Literal["float32", "int8", "int8-bf16"]
PRECISIONS: tuple[str, ...] = get_args(Precision)


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ConfigError(f"audio precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")


def apply_precision(model: Any, precision: str, device: Any) -> Any:
    """``model`` (eval mode, float32, on ``device``) prepared to run at ``precision``."""
    check_precision(precision)
    if precision == "float32":
        return model
    if device.type != "cpu":
        raise ConfigError(
            f"audio precision {precision} runs on the CPU only (the device is {device}); "
            "use float32 there (CUDA runs the model in bfloat16 already)"
        )
    model = quantise_linear_int8(model)
    if precision == "int8-bf16":
        model.feature_extractor = bfloat16_front_end(model.feature_extractor)
    return model


def bfloat16_front_end(front_end: Any) -> Any:
    """``front_end`` (the convolutional feature encoder) computing in bfloat16, taking and
    giving float32."""
    import torch  # deferred: torch (audio extra)

    class Bfloat16FrontEnd(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner.to(torch.bfloat16)

        def forward(self, samples: torch.Tensor) -> torch.Tensor:
            return self.inner(samples.to(torch.bfloat16)).float()  # (B, C, T) float32

    return Bfloat16FrontEnd(front_end)


def quantise_linear_int8(model: Any) -> Any:
    """A copy of ``model`` whose ``nn.Linear`` layers are dynamically quantised to int8.

    PyTorch's eager dynamic quantisation (``torch.ao.quantization.quantize_dynamic``) is
    marked deprecated in favour of the separate ``torchao`` package but is present and
    works in the supported torch range; its deprecation warnings are not shown to users.
    """
    import torch  # deferred: torch (audio extra)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message=".*quantize_per_(tensor|channel).*")
            from torch.ao.quantization import (  # deferred: torch (audio extra)
                default_dynamic_qconfig,
                per_channel_dynamic_qconfig,
                quantize_dynamic,
            )

            engines = torch.backends.quantized.supported_engines
            # x86/fbgemm support per-channel weight scales; qnnpack (ARM) only per tensor.
            per_channel = any(e in engines for e in ("x86", "fbgemm"))
            qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
            return quantize_dynamic(model, {torch.nn.Linear: qconfig}, inplace=False)
    except (ImportError, AttributeError, RuntimeError) as exc:
        raise ConfigError(
            f"audio precision int8 is not available with torch {torch.__version__}: "
            f"{str(exc).splitlines()[0][:200]}; use float32"
        ) from None


def quantised_linear_count(model: Any) -> int:
    """How many linear layers of ``model`` run in int8."""
    return sum(
        1 for m in model.modules() if type(m).__name__ == "Linear" and "quantized" in type(m).__module__
    )
