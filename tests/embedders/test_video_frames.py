"""Frame encoders: the weight-free descriptor measures what it says; a small CLIP directory loads like the real one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from recsys.devices import resolve_device
from recsys.embedders.video_frames import (
    CLIP_MEAN,
    CLIP_STD,
    ClipFrameEncoder,
    FrameDescriptor,
    clip_pixels,
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
    # Frames of another size are resized and cropped to the model's size, as the processor does.
    wide = rng.integers(0, 256, (2, 24, 40, 3), dtype=np.uint8)
    pixels = processor(images=list(wide), return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        expected = reference.get_image_features(pixel_values=pixels)
    expected = expected if isinstance(expected, torch.Tensor) else expected.pooler_output
    # (upscaling: PIL and torch may round a resampled value to neighbouring levels)
    assert np.allclose(encoder.encode(wide), expected.numpy(), atol=2e-3)


def planted_frame(height: int, width: int) -> np.ndarray:
    """A frame with known structure: two gradients, a checkerboard and a bright square off centre."""
    yy, xx = np.mgrid[0:height, 0:width]
    frame = np.stack([(xx * 3) % 256, (yy * 5) % 256, ((xx // 10 + yy // 10) % 2) * 200], axis=-1)
    frame[height // 4 : height // 2, width // 3 : width // 2] = (250, 240, 10)
    return frame.astype(np.uint8)


def per_frame_pixels(frames: np.ndarray, size: int) -> np.ndarray:
    """The former preprocessing, one frame at a time: PIL resize of the short side (bicubic, the long side
    truncated, as CLIP's processor does), centre crop, then ``(x / 255 - mean) / std``."""
    from PIL import Image

    out = []
    for frame in frames:
        h, w = frame.shape[:2]
        if (h, w) != (size, size):
            new_w, new_h = (int(size * w / h), size) if h <= w else (size, int(size * h / w))
            frame = np.asarray(Image.fromarray(frame).resize((new_w, new_h), Image.Resampling.BICUBIC))
            top, left = (new_h - size) // 2, (new_w - size) // 2
            frame = frame[top : top + size, left : left + size]
        x = frame.astype(np.float32).transpose(2, 0, 1) / 255.0  # (3, S, S)
        out.append(
            (x - np.array(CLIP_MEAN, np.float32)[:, None, None])
            / np.array(CLIP_STD, np.float32)[:, None, None]
        )
    return np.stack(out)


@pytest.mark.parametrize("shape", [(90, 160), (160, 90), (224, 224)])
def test_batched_preprocessing_equals_the_per_frame_preprocessing(shape: tuple[int, int]) -> None:
    frame = planted_frame(*shape)
    frames = np.stack([frame, frame[::-1], 255 - frame])  # (3, H, W, 3)
    size = 32 if shape != (224, 224) else 224
    batched = clip_pixels(frames, size, CLIP_MEAN, CLIP_STD)
    assert batched.shape == (3, 3, size, size) and batched.dtype == torch.float32
    expected = per_frame_pixels(frames, size)
    # At most one of 256 levels apart (PIL and torch may round a resampled value differently), rarely.
    one_level = 1.0 / (255.0 * min(CLIP_STD)) + 1e-5
    difference = np.abs(batched.numpy() - expected)
    assert difference.max() <= one_level and (difference > 1e-5).mean() < 0.01
    # The planted square survives where it should: bright yellow has high red and green, low blue.
    if shape == (90, 160):
        square = per_frame_pixels(frames[:1], size)[0, :, 11, 11]  # inside the square after resize and crop
        assert square[0] > 1.5 and square[1] > 1.5 and square[2] < -1.0
        assert np.allclose(batched[0, :, 11, 11].numpy(), square, atol=1e-5)


def test_the_int8_path_is_close_to_float32_and_named_apart(tmp_path: Path) -> None:
    directory = write_small_clip(tmp_path / "clip-small", image_size=64, projection_dim=32)
    full = make_frame_encoder("clip", str(directory), device="cpu")
    fast = make_frame_encoder("clip", str(directory), device="cpu", precision="int8")
    assert isinstance(full, ClipFrameEncoder) and isinstance(fast, ClipFrameEncoder)
    assert (full.precision, fast.precision) == ("float32", "int8")
    # Vectors of the two paths are never taken for one another: their versions differ.
    assert fast.version != full.version and fast.version.endswith("+int8")
    assert make_frame_encoder("clip", str(directory), device="cpu").version == full.version
    kinds = {type(m) for m in fast.network.modules()}
    assert torch.nn.Linear not in kinds and torch.ao.nn.quantized.dynamic.Linear in kinds
    assert torch.nn.Linear in {type(m) for m in full.network.modules()}
    rng = np.random.default_rng(1)
    batches = [
        rng.integers(0, 256, (4, 64, 64, 3), dtype=np.uint8),
        planted_frame(90, 160)[None].repeat(2, 0),
    ]
    f32 = np.concatenate([full.encode(b) for b in batches])
    i8 = np.concatenate([fast.encode(b) for b in batches])
    assert f32.shape == i8.shape == (6, 32)
    cosine = (f32 * i8).sum(axis=1) / np.linalg.norm(f32, axis=1) / np.linalg.norm(i8, axis=1)
    assert cosine.min() > 0.99, cosine
    assert not np.allclose(f32, i8, atol=1e-6)  # the quantised path really ran
    with pytest.raises(ConfigError, match="unknown video precision 'int4'"):
        make_frame_encoder("clip", str(directory), device="cpu", precision="int4")


def test_the_precision_setting_reaches_the_frame_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    from recsys.config import Settings

    monkeypatch.setenv("RECSYS_VIDEO_PRECISION", "int8")
    assert Settings().video_precision == "int8"
    monkeypatch.setenv("RECSYS_VIDEO_PRECISION", "int4")
    with pytest.raises(ValueError, match="video_precision"):
        Settings()
    monkeypatch.delenv("RECSYS_VIDEO_PRECISION")
    assert Settings().video_precision == "float32"


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
