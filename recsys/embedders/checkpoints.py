"""MERT-family checkpoints (CultureMERT, MERT-v1-95M, any HuBERT-shaped one) without remote code.

MERT's published checkpoints ship their own modeling code, which breaks on current
transformers. The 95M architecture is exactly transformers' built-in
``HubertModel`` (same parameter names and shapes, same outputs), so this module:

- finds the checkpoint: a local directory, or a Hugging Face id at a revision
  (from the local cache first; a download only when the hub is reachable, and a
  one-line error saying what to download and where to put it when it is not);
- translates MERT's ``config.json`` (``model_type: mert_model``) into a
  ``HubertConfig``, refusing MERT options that ``HubertModel`` cannot express;
- reads the weights (safetensors, or a PyTorch file with ``weights_only``: no
  pickled code runs) and maps the old weight-norm names (``weight_g``/``weight_v``)
  and the new ones (``parametrizations.weight.original0/1``) onto the model's.

Nothing here imports or runs code shipped with a checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import pickle
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from recsys.errors import ConfigError, NotFoundError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "ntua-slp/CultureMERT-95M"
# The hub revision used when none is given (RECSYS_AUDIO_MODEL_REVISION, `models merge --revision`).
# Not yet a commit: no commit of the default model's main branch whose files could be checked was
# at hand. Until it is one, every load at a branch or tag warns with the commit it resolved to (and
# the model version recorded with each vector names that commit). To pin: set this to a full
# 40-character commit id of DEFAULT_MODEL, as CLIP_DEFAULT_REVISION is.
DEFAULT_REVISION = "main"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
CHECKPOINT_FILES = ["config.json", "preprocessor_config.json", *WEIGHT_FILES]

# MERT-v1-95M's config.json as published (CultureMERT-95M and CultureMERT-TA-95M share it).
MERT_95M_CONFIG: dict[str, Any] = {
    "architectures": ["MERTModel"],
    "auto_map": {"AutoConfig": "configuration_MERT.MERTConfig", "AutoModel": "modeling_MERT.MERTModel"},
    "model_type": "mert_model",
    "activation_dropout": 0.1,
    "apply_spec_augment": True,
    "attention_dropout": 0.1,
    "attention_relax": -1.0,
    "conv_bias": False,
    "conv_dim": [512, 512, 512, 512, 512, 512, 512],
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "deepnorm": False,
    "do_stable_layer_norm": False,
    "feat_extract_activation": "gelu",
    "feat_extract_norm": "group",
    "feat_proj_dropout": 0.1,
    "feat_proj_layer_norm": True,
    "feature_extractor_cqt": False,
    "feature_extractor_cqt_bins": 336,
    "final_dropout": 0.1,
    "hidden_act": "gelu",
    "hidden_dropout": 0.1,
    "hidden_size": 768,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "layer_norm_eps": 1e-05,
    "layerdrop": 0.1,
    "mask_time_length": 10,
    "mask_time_prob": 0.05,
    "num_attention_heads": 12,
    "num_conv_pos_embedding_groups": 16,
    "num_conv_pos_embeddings": 128,
    "num_feat_extract_layers": 7,
    "num_hidden_layers": 12,
    "sample_rate": 24000,
    "torch_dtype": "float32",
}
MERT_PREPROCESSOR: dict[str, Any] = {
    "do_normalize": True,
    "feature_extractor_type": "Wav2Vec2FeatureExtractor",
    "feature_size": 1,
    "padding_side": "right",
    "padding_value": 0,
    "return_attention_mask": True,
    "sampling_rate": 24000,
}
# MERT options HubertModel cannot express, with the value that keeps the plain architecture.
_PLAIN = {"feature_extractor_cqt": False, "deepnorm": False}
_OLD_G, _OLD_V = "weight_g", "weight_v"
_NEW_G, _NEW_V = "parametrizations.weight.original0", "parametrizations.weight.original1"


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint on local disk and where it came from."""

    path: Path
    source: str  # the id or directory asked for
    revision: str | None  # the commit of a hub snapshot; None for a local directory

    @property
    def version(self) -> str:
        """Identifies the weights: ``id@commit`` for the hub, a content hash for a directory."""
        if self.revision:
            return f"{self.source}@{self.revision}"
        return f"dir:{self.path.name}:{weights_digest(self.path)[:16]}"


def resolve_checkpoint(
    model: str = DEFAULT_MODEL, revision: str = DEFAULT_REVISION, *, cache_dir: Path | None = None
) -> Checkpoint:
    """A local directory as it is, or a hub id from the cache (downloading only when reachable)."""
    local = Path(model).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise NotFoundError(f"{local}: not a checkpoint directory (no config.json)")
        return Checkpoint(path=local, source=str(local), revision=None)
    if model.startswith((".", "/", "~")) or model.count("/") != 1:
        raise NotFoundError(
            f"no checkpoint directory at {model} (and it is not a Hugging Face id owner/name)"
        )
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    kwargs: dict[str, Any] = {
        "repo_id": model,
        "revision": revision,
        "cache_dir": str(cache_dir) if cache_dir else None,
        "allow_patterns": CHECKPOINT_FILES,
    }
    try:
        path = Path(snapshot_download(local_files_only=True, **kwargs))
    except HFValidationError as exc:
        raise ConfigError(f"invalid model id {model!r}: {exc}") from None
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        path = _download(model, revision, kwargs)
    if not is_commit(revision):
        log.warning(
            "model %s at %r, which can move, is commit %s today: pin it (RECSYS_AUDIO_MODEL_REVISION=%s, "
            "or --revision) so that its weights cannot change under the vectors made with them",
            model,
            revision,
            path.name,
            path.name,
        )
    return Checkpoint(path=path, source=model, revision=path.name)


def is_commit(revision: str) -> bool:
    """Whether ``revision`` names one commit (40 hexadecimal digits) rather than a branch or tag that can move."""
    return re.fullmatch(r"[0-9a-f]{40}", revision) is not None


def _download(model: str, revision: str, kwargs: dict[str, Any]) -> Path:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    where = kwargs["cache_dir"] or constants.HF_HUB_CACHE
    advice = (
        f"model {model}@{revision} is not in the Hugging Face cache ({where}) and cannot be downloaded "
        f"({{why}}): on a connected machine run `hf download {model} --revision {revision} "
        f"--include config.json preprocessor_config.json '*.safetensors' '*.bin'` and copy the cache here, "
        "or put config.json, preprocessor_config.json and the weights in a directory and pass it as the model "
        "(--model DIR or RECSYS_AUDIO_MODEL=DIR)"
    )
    if constants.HF_HUB_OFFLINE:
        raise ConfigError(advice.format(why="HF_HUB_OFFLINE is set"))
    host = urlparse(constants.ENDPOINT).hostname or "huggingface.co"
    if not _reachable(host):
        raise ConfigError(advice.format(why=f"{host} is unreachable"))
    try:
        return Path(snapshot_download(**kwargs))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as exc:
        raise ConfigError(advice.format(why=str(exc).splitlines()[0][:200])) from None


def _reachable(host: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``host:443`` opens within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- configuration


def read_config(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path / 'config.json'}: cannot read the model configuration: {exc}") from None


def hubert_config(raw: dict[str, Any], *, where: str = "config.json") -> Any:
    """A ``HubertConfig`` for a MERT-format (or HuBERT) ``config.json`` dictionary."""
    from transformers import HubertConfig

    model_type = raw.get("model_type", "mert_model")
    if model_type not in {"mert_model", "hubert", "mert"}:
        raise ConfigError(f"{where}: model_type {model_type!r} is not MERT or HuBERT-shaped")
    for key, plain in _PLAIN.items():
        if raw.get(key, plain) != plain:
            raise ConfigError(f"{where}: {key}={raw[key]!r} is not supported (HubertModel needs {plain})")
    if float(raw.get("attention_relax", -1.0)) > 0:
        raise ConfigError(f"{where}: attention_relax={raw['attention_relax']} is not supported")
    known = set(HubertConfig().to_dict())
    values = {
        k: v for k, v in raw.items() if k in known and k not in {"model_type", "architectures", "auto_map"}
    }
    values.pop("transformers_version", None)
    return HubertConfig(**values)


def sample_rate_of(path: Path, raw: dict[str, Any]) -> int:
    pre = path / "preprocessor_config.json"
    if pre.is_file():
        data = json.loads(pre.read_text())
        if "sampling_rate" in data:
            return int(data["sampling_rate"])
    return int(raw.get("sample_rate", 24_000))


def normalises_input(path: Path) -> bool:
    pre = path / "preprocessor_config.json"
    return bool(json.loads(pre.read_text()).get("do_normalize", True)) if pre.is_file() else True


# --------------------------------------------------------------------------- weights


def weights_file(path: Path) -> Path:
    for name in WEIGHT_FILES:
        if (path / name).is_file():
            return path / name
    raise NotFoundError(f"{path}: no weights ({' or '.join(WEIGHT_FILES)})")


def weights_digest(path: Path) -> str:
    with open(weights_file(path), "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def read_state_dict(path: Path) -> dict[str, Any]:
    """The checkpoint's tensors under their stored names (no pickled code is executed)."""
    file = weights_file(path)
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(file)))
    import torch

    try:
        state = torch.load(str(file), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise ConfigError(
            f"{file}: cannot read the weights safely: {str(exc).splitlines()[0][:200]}"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return dict(state)


def canonical_names(state: dict[str, Any], model_keys: set[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Rename a checkpoint's tensors to ``model_keys``; returns the renamed dict and new→stored names.

    Handles a common prefix (``mert_model.``, ``hubert.``, ``model.``) and both
    weight-norm spellings.
    """
    renamed: dict[str, Any] = {}
    stored: dict[str, str] = {}
    prefix = _common_prefix(state, model_keys)
    for key, value in state.items():
        name = key[len(prefix) :] if prefix and key.startswith(prefix) else key
        if name not in model_keys:
            if name.endswith(_OLD_G) and name[: -len(_OLD_G)] + _NEW_G in model_keys:
                name = name[: -len(_OLD_G)] + _NEW_G
            elif name.endswith(_OLD_V) and name[: -len(_OLD_V)] + _NEW_V in model_keys:
                name = name[: -len(_OLD_V)] + _NEW_V
            elif name.endswith(_NEW_G) and name[: -len(_NEW_G)] + _OLD_G in model_keys:
                name = name[: -len(_NEW_G)] + _OLD_G
            elif name.endswith(_NEW_V) and name[: -len(_NEW_V)] + _OLD_V in model_keys:
                name = name[: -len(_NEW_V)] + _OLD_V
        renamed[name] = value
        stored[name] = key
    return renamed, stored


def _common_prefix(state: dict[str, Any], model_keys: set[str]) -> str:
    if any(k in model_keys for k in state):
        return ""
    for prefix in ("mert_model.", "hubert.", "model.", "module."):
        if all(k.startswith(prefix) for k in state):
            return prefix
    return ""


# Parameters HubertModel holds that a checkpoint may leave out without changing inference.
OPTIONAL_KEYS = {"masked_spec_embed"}


def load_hubert(path: Path, *, where: str | None = None) -> Any:
    """A ``HubertModel`` (eval mode, CPU, float32) holding the checkpoint's weights."""
    import torch
    from transformers import HubertModel

    raw = read_config(path)
    config = hubert_config(raw, where=where or str(path / "config.json"))
    torch.manual_seed(0)  # any parameter a checkpoint leaves out (masked_spec_embed) is deterministic
    model = HubertModel(config)
    keys = set(model.state_dict())
    state, _ = canonical_names(read_state_dict(path), keys)
    missing = sorted(keys - set(state) - OPTIONAL_KEYS)
    unexpected = sorted(set(state) - keys)
    if missing or unexpected:
        raise ConfigError(
            f"{path}: weights do not fit the configuration: "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})"
        )
    model_state = model.state_dict()
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(model_state[name].shape):
            raise ConfigError(
                f"{path}: {name} has shape {tuple(tensor.shape)}, the configuration needs {tuple(model_state[name].shape)}"
            )
    model.load_state_dict(state, strict=False)
    model.eval()
    return model


def parameter_count(model: Any) -> int:
    return sum(int(p.numel()) for p in model.parameters())
