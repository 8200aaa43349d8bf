"""CultureMERT: MERT checkpoints load into HubertModel without remote code and embed as the contract says."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pipelines.demo.audio import DemoAudioConfig, generate_demo_audio
from recsys.embedders import checkpoints
from recsys.embedders.checkpoints import (
    MERT_95M_CONFIG,
    hubert_config,
    load_hubert,
    parameter_count,
    resolve_checkpoint,
)
from recsys.embedders.culturemert import CultureMertConfig, CultureMertEmbedder
from recsys.embedders.merge import merge_checkpoints
from recsys.embedders.precision import apply_precision, quantised_linear_count
from recsys.errors import ConfigError, NotFoundError
from recsys.media.audio import load_audio
from tests.embedders.conftest import SMALL, write_mert_checkpoint
from tests.embedders.contract import EmbedderContract

ROOT = Path(__file__).resolve().parents[2]


class TestCultureMertContract(EmbedderContract):
    @pytest.fixture
    def embedder(self, mert_dir: Path) -> CultureMertEmbedder:
        return CultureMertEmbedder(CultureMertConfig(model=str(mert_dir), window_s=1.0, batch_size=4))


@pytest.mark.parametrize("old_names", [True, False])
def test_mert_checkpoint_gives_the_reference_hidden_states(tmp_path: Path, old_names: bool) -> None:
    reference = write_mert_checkpoint(tmp_path / "ckpt", seed=3, old_names=old_names)
    stored = torch.load(tmp_path / "ckpt" / "pytorch_model.bin", weights_only=True)
    assert any(k.endswith("weight_g") for k in stored) == old_names
    assert json.loads((tmp_path / "ckpt" / "config.json").read_text())["model_type"] == "mert_model"
    model = load_hubert(tmp_path / "ckpt")
    x = torch.randn(2, 16_000, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ours = model(x, output_hidden_states=True).hidden_states
        theirs = reference(x, output_hidden_states=True).hidden_states
    assert len(ours) == SMALL["num_hidden_layers"] + 1
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)


def _hidden_states(model, x: torch.Tensor) -> tuple[torch.Tensor, ...]:  # type: ignore[no-untyped-def]
    with torch.inference_mode():
        return model(x, output_hidden_states=True).hidden_states


@pytest.mark.parametrize("old_names", [True, False])
@pytest.mark.parametrize("layout", ["safetensors", "hubert-prefix", "no-masked-spec-embed"])
def test_other_checkpoint_layouts_give_the_reference_hidden_states(
    tmp_path: Path, old_names: bool, layout: str
) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "ckpt"
    reference = write_mert_checkpoint(path, seed=5, old_names=old_names)
    stored = torch.load(path / "pytorch_model.bin", weights_only=True)
    if layout == "safetensors":
        (path / "pytorch_model.bin").unlink()
        save_file({k: v.contiguous() for k, v in stored.items()}, str(path / "model.safetensors"))
    elif layout == "hubert-prefix":
        torch.save({f"hubert.{k}": v for k, v in stored.items()}, path / "pytorch_model.bin")
    else:
        torch.save({k: v for k, v in stored.items() if k != "masked_spec_embed"}, path / "pytorch_model.bin")
    x = torch.randn(1, 8_000, generator=torch.Generator().manual_seed(1))
    ours, theirs = _hidden_states(load_hubert(path), x), _hidden_states(reference, x)
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)
    if layout == "no-masked-spec-embed":  # left out, it is the same every time
        assert torch.equal(load_hubert(path).masked_spec_embed, load_hubert(path).masked_spec_embed)


def test_weights_with_other_names_or_unreadable_bytes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "ckpt"
    write_mert_checkpoint(path)
    stored = torch.load(path / "pytorch_model.bin", weights_only=True)
    stored["head.weight"] = stored.pop("feature_projection.projection.weight")
    torch.save(stored, path / "pytorch_model.bin")
    with pytest.raises(ConfigError, match=r"weights do not fit.*1 missing.*1 unexpected"):
        load_hubert(path)
    (path / "pytorch_model.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="cannot read the weights"):
        load_hubert(path)


def test_full_size_architecture_has_94_37m_parameters() -> None:
    from transformers import HubertModel

    model = HubertModel(hubert_config(MERT_95M_CONFIG))
    assert round(parameter_count(model) / 1e6, 2) == 94.37


def test_no_remote_code_anywhere(tmp_path: Path) -> None:
    for source in (ROOT / "recsys").rglob("*.py"):
        assert "trust_remote" not in source.read_text(), source
    # A checkpoint's own modeling code is never imported: this one would fail loudly if it were.
    path = tmp_path / "with-code"
    write_mert_checkpoint(path)
    marker = tmp_path / "executed"
    (path / "modeling_MERT.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\nraise SystemExit(3)\n")
    (path / "configuration_MERT.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    CultureMertEmbedder(CultureMertConfig(model=str(path)))
    assert not marker.exists()


def test_unsupported_mert_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="feature_extractor_cqt"):
        hubert_config({**SMALL, "feature_extractor_cqt": True})
    path = tmp_path / "bad"
    write_mert_checkpoint(path)
    (path / "config.json").write_text(json.dumps({**SMALL, "hidden_size": 48}))
    with pytest.raises(ConfigError, match=r"weights do not fit|has shape"):
        load_hubert(path)


def test_offline_without_cache_fails_fast_with_advice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoints, "_reachable", lambda host, timeout=3.0: False)
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        resolve_checkpoint("ntua-slp/CultureMERT-95M", "main", cache_dir=tmp_path / "hub")
    assert time.monotonic() - started < 10
    message = str(info.value)
    assert (
        "\n" not in message and "hf download ntua-slp/CultureMERT-95M" in message and "--model DIR" in message
    )
    with pytest.raises(NotFoundError, match="no checkpoint directory"):
        resolve_checkpoint(str(tmp_path / "missing-dir"))


def test_windows_layers_and_frames(mert_dir: Path) -> None:
    rate = 24_000
    clip = np.random.default_rng(0).normal(0, 0.1, int(3.5 * rate)).astype(np.float32)
    mean = CultureMertEmbedder(CultureMertConfig(model=str(mert_dir), window_s=1.0, hop_s=0.5))
    per_layer = mean.layer_states([clip])
    assert per_layer.shape == (1, SMALL["num_hidden_layers"] + 1, SMALL["hidden_size"])
    np.testing.assert_allclose(mean.embed([clip])[0], per_layer[0].mean(axis=0), rtol=1e-5, atol=1e-6)
    last = CultureMertEmbedder(CultureMertConfig(model=str(mert_dir), window_s=1.0, layers="-1"))
    np.testing.assert_allclose(last.embed([clip])[0], last.layer_states([clip])[0, -1], rtol=1e-5, atol=1e-6)
    weighted = CultureMertEmbedder(
        CultureMertConfig(model=str(mert_dir), window_s=1.0, layers="weights", layer_weights=(0.0, 1.0, 3.0))
    )
    states = weighted.layer_states([clip])[0]
    np.testing.assert_allclose(
        weighted.embed([clip])[0], 0.25 * states[1] + 0.75 * states[2], rtol=1e-5, atol=1e-6
    )
    assert len({mean.version, last.version, weighted.version}) == 3
    frames = mean.embed_frames([clip, clip[:rate]])
    assert frames[0].shape[1] == SMALL["hidden_size"]
    # 75 frames per second; each window loses at most one frame at its edge (the conv receptive field)
    assert abs(len(frames[0]) - 3.5 * 75) <= 7 and abs(len(frames[1]) - 75) <= 1


def test_task_arithmetic_merge_loads_and_matches_the_formula(tmp_path: Path) -> None:
    base = write_mert_checkpoint(tmp_path / "base", seed=1)
    greek = write_mert_checkpoint(tmp_path / "greek", seed=2, old_names=False)  # the new weight-norm names
    turkish = write_mert_checkpoint(tmp_path / "turkish", seed=3)
    result = merge_checkpoints(
        str(tmp_path / "base"), [str(tmp_path / "greek"), str(tmp_path / "turkish")], tmp_path / "ta", lam=0.2
    )
    assert result.parameters == parameter_count(base)
    merged = load_hubert(tmp_path / "ta").state_dict()
    b, g, t = base.state_dict(), greek.state_dict(), turkish.state_dict()
    for name, value in merged.items():
        if name == "masked_spec_embed":
            continue
        torch.testing.assert_close(value, b[name] + 0.2 * ((g[name] - b[name]) + (t[name] - b[name])))
    assert json.loads((tmp_path / "ta" / "merge.json").read_text())["lambda"] == 0.2
    embedder = CultureMertEmbedder(CultureMertConfig(model=str(tmp_path / "ta"), window_s=1.0))
    assert embedder.embed([np.ones(24_000, dtype=np.float32) * 0.1]).shape == (1, SMALL["hidden_size"])


def test_merge_refuses_another_architecture(tmp_path: Path) -> None:
    write_mert_checkpoint(tmp_path / "base")
    write_mert_checkpoint(tmp_path / "other", config={**SMALL, "intermediate_size": 48})
    with pytest.raises(ConfigError, match="has shape"):
        merge_checkpoints(str(tmp_path / "base"), [str(tmp_path / "other")], tmp_path / "out")


def test_cpu_passes_of_a_few_windows_give_what_one_wide_pass_gives(mert_dir: Path) -> None:
    rng = np.random.default_rng(5)
    clips = [rng.normal(0, 0.1, int(24_000 * s)).astype(np.float32) for s in (3.0, 5.0, 2.0)]
    wide = CultureMertEmbedder(
        CultureMertConfig(model=str(mert_dir), window_s=1.0, batch_size=8, cpu_batch_size=8, device="cpu")
    )
    narrow = CultureMertEmbedder(
        CultureMertConfig(model=str(mert_dir), window_s=1.0, batch_size=8, cpu_batch_size=3, device="cpu")
    )
    np.testing.assert_allclose(narrow.embed(clips), wide.embed(clips), rtol=1e-4, atol=1e-5)
    frames_wide, frames_narrow = wide.embed_frames(clips), narrow.embed_frames(clips)
    for a, b in zip(frames_narrow, frames_wide, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


class TestCultureMertInt8Contract(EmbedderContract):
    @pytest.fixture
    def embedder(self, mert_dir: Path) -> CultureMertEmbedder:
        return CultureMertEmbedder(
            CultureMertConfig(model=str(mert_dir), window_s=1.0, batch_size=4, precision="int8")
        )


def test_precision_is_in_the_version_and_int8_runs_the_same_checkpoint(mert_dir: Path) -> None:
    reference = load_hubert(mert_dir)
    float32 = CultureMertEmbedder(CultureMertConfig(model=str(mert_dir), window_s=1.0))
    int8 = CultureMertEmbedder(CultureMertConfig(model=str(mert_dir), window_s=1.0, precision="int8"))
    # float32 keeps the version it had before precisions existed; int8 says so
    assert float32.version == f"{float32.checkpoint.version}|w1h1|layer:mean"
    assert int8.version == f"{float32.checkpoint.version}|w1h1|int8|layer:mean"
    assert (float32.params()["precision"], int8.params()["precision"]) == ("float32", "int8")
    linears = sum(isinstance(m, torch.nn.Linear) for m in reference.modules())
    assert quantised_linear_count(float32.model) == 0 and quantised_linear_count(int8.model) == linears > 0
    # the same weights: float32 parts equal, int8 weights within half a quantisation step of the float ones
    ours, theirs = int8.model.state_dict(), reference.state_dict()
    conv = "feature_extractor.conv_layers.1.conv.weight"
    assert torch.equal(ours[conv], theirs[conv])
    packed = int8.model.encoder.layers[0].feed_forward.intermediate_dense
    weight = packed.weight()
    step = weight.q_per_channel_scales().to(torch.float32)[:, None]
    original = reference.encoder.layers[0].feed_forward.intermediate_dense.weight
    assert (weight.dequantize() - original).abs().le(step / 2 + 1e-6).all()
    clip = np.random.default_rng(3).normal(0, 0.1, 3 * 24_000).astype(np.float32)
    a, b = float32.embed([clip])[0], int8.embed([clip])[0]
    assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) > 0.99


class TestCultureMertInt8Bf16Contract(EmbedderContract):
    @pytest.fixture
    def embedder(self, mert_dir: Path) -> CultureMertEmbedder:
        return CultureMertEmbedder(
            CultureMertConfig(model=str(mert_dir), window_s=1.0, batch_size=4, precision="int8-bf16")
        )


def test_int8_bf16_runs_the_front_end_in_bfloat16_and_says_so(mert_dir: Path) -> None:
    int8 = CultureMertEmbedder(CultureMertConfig(model=str(mert_dir), window_s=1.0, precision="int8"))
    bf16 = CultureMertEmbedder(CultureMertConfig(model=str(mert_dir), window_s=1.0, precision="int8-bf16"))
    assert bf16.version == int8.version.replace("|int8|", "|int8-bf16|") != int8.version
    assert quantised_linear_count(bf16.model) == quantised_linear_count(int8.model) > 0
    convs = [m for m in bf16.model.feature_extractor.modules() if isinstance(m, torch.nn.Conv1d)]
    assert convs and all(m.weight.dtype == torch.bfloat16 for m in convs)
    assert all(
        m.weight.dtype == torch.float32
        for m in int8.model.feature_extractor.modules()
        if isinstance(m, torch.nn.Conv1d)
    )
    clip = np.random.default_rng(5).normal(0, 0.1, 3 * 24_000).astype(np.float32)
    a, b = int8.embed([clip])[0], bf16.embed([clip])[0]
    assert a.dtype == b.dtype == np.float32
    assert 0.999 < float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) < 1.0  # close, and not the same path


def test_unknown_precision_and_int8_off_the_cpu_are_refused(mert_dir: Path) -> None:
    with pytest.raises(ConfigError, match="precision must be one of float32, int8, int8-bf16"):
        CultureMertConfig(model=str(mert_dir), precision="int4")
    with pytest.raises(ConfigError, match="CPU only"):
        apply_precision(load_hubert(mert_dir), "int8", torch.device("cuda"))


def test_int8_retrieves_the_same_nearest_neighbours_as_float32(tmp_path: Path, mert_dir: Path) -> None:
    """Same-style retrieval over the planted demo styles: int8 finds each clip's float32 nearest neighbour.

    The test model's weights are random, so its same-style P@1 is what random features give
    (below 1); what the fast path must keep is the ranking, hence the P@1, of float32.
    """
    clips = generate_demo_audio(tmp_path, DemoAudioConfig(clips_per_style=3, seconds=3.0))
    styles = np.array([c.style for c in clips])
    nearest = {}
    for precision in ("float32", "int8", "int8-bf16"):
        embedder = CultureMertEmbedder(
            CultureMertConfig(model=str(mert_dir), window_s=1.0, precision=precision)
        )
        vectors = embedder.embed([load_audio(c.path, embedder.sample_rate).samples for c in clips])
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        sims = unit @ unit.T
        np.fill_diagonal(sims, -np.inf)
        nearest[precision] = np.argmax(sims, axis=1)
    for fast in ("int8", "int8-bf16"):
        assert (nearest[fast] == nearest["float32"]).all(), (fast, nearest[fast], nearest["float32"])
    p_at_1 = {k: float((styles[v] == styles).mean()) for k, v in nearest.items()}
    assert (
        p_at_1["int8"] == p_at_1["int8-bf16"] == p_at_1["float32"] > 0.25
    )  # above chance (4 styles, 12 clips)
