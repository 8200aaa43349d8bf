"""Frame encoders: the weight-free descriptor measures what it says; a small CLIP directory loads like the real one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from recsys.devices import resolve_device
from recsys.embedders.video_frames import (
    ClipFrameEncoder,
    FrameDescriptor,
    make_frame_encoder,
)
from recsys.errors import ConfigError


def solid(rgb: tuple[int, int, int], n: int = 1, size: int = 32) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, np.uint8), (n, size, size, 3)).copy()


def test_descriptor_measures_colour_brightness_edges_and_motion() -> None:
    d = FrameDescriptor(size=32)
    red, blue = d.encode(solid((220, 20, 20))), d.encode(solid((20, 20, 220)))
    assert red.shape == (1, d.dim) and red.dtype == np.float32
    assert int(np.argmax(red[0, :12])) == 0  # hue bin of red
    assert int(np.argmax(blue[0, :12])) == 8  # hue 240° → bin 8 of 12
    dark, bright = d.encode(solid((30, 30, 30))), d.encode(solid((230, 230, 230)))
    value_mean = 12 + 2
    assert bright[0, value_mean] > dark[0, value_mean]
    stripes = solid((0, 0, 0))
    stripes[:, :, ::2] = 255
    edge_energy = 12 + 4 + 6 + 12
    assert d.encode(stripes)[0, edge_energy] > d.encode(solid((128, 128, 128)))[0, edge_energy]
    still = d.encode(np.concatenate([solid((200, 100, 0))] * 3))
    cuts = d.encode(np.concatenate([solid((200, 100, 0)), solid((0, 100, 200)), solid((200, 100, 0))]))
    motion = d.dim - 3
    assert np.all(still[:, motion:] == 0)
    assert np.all(cuts[1:, motion] > 0.3) and cuts[0, motion] == 0
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        d.encode(np.zeros((4, 4), np.uint8))


def write_small_clip(directory: Path, image_size: int = 32, projection_dim: int = 24) -> Path:
    """A small CLIP checkpoint in the Hugging Face format (random weights), as the tests' stand-in for a download."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "vocab_size": 100,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": 8,
        },
        projection_dim=projection_dim,
    )
    CLIPModel(config).save_pretrained(directory)
    CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    ).save_pretrained(directory)
    return directory


def test_a_small_clip_directory_loads_through_the_production_path(tmp_path: Path) -> None:
    from transformers import CLIPImageProcessor, CLIPModel

    directory = write_small_clip(tmp_path / "clip-small")
    encoder = make_frame_encoder("clip", str(directory), device="cpu")
    assert isinstance(encoder, ClipFrameEncoder)
    assert (encoder.input_size, encoder.dim) == (32, 24)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    features = encoder.encode(frames)
    assert features.shape == (3, 24) and np.isfinite(features).all()
    # The same numbers as the full CLIPModel with the Hugging Face processor's preprocessing.
    reference = CLIPModel.from_pretrained(directory).eval()
    processor = CLIPImageProcessor.from_pretrained(directory)
    pixels = processor(images=list(frames), return_tensors="pt", do_resize=False, do_center_crop=False)[
        "pixel_values"
    ]
    with torch.inference_mode():
        expected = reference.get_image_features(pixel_values=pixels)
    expected = expected if isinstance(expected, torch.Tensor) else expected.pooler_output
    assert np.allclose(features, expected.numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="expects 32x32"):
        encoder.encode(np.zeros((1, 16, 16, 3), np.uint8))


def test_unloadable_clip_and_unknown_encoder_are_named_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "clip"}))
    with pytest.raises(ConfigError, match="cannot load the CLIP vision model"):
        make_frame_encoder("clip", str(broken), device="cpu")
    with pytest.raises(ConfigError, match="unknown frame encoder"):
        make_frame_encoder("resnet")


def test_device_auto_is_cpu_without_a_gpu() -> None:
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ConfigError, match="unknown device 'tpu0'"):
        resolve_device("tpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            resolve_device("cuda")
