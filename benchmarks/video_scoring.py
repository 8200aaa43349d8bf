"""End-to-end latency of scoring a video: decode, frame encoding, fusion (with a prompt), vector search.

A 30 s 1280x720 H.264 video (30 fps, a keyframe every ``--gop`` frames) is generated,
then scored by the full pipeline with (a) the full-size CLIP ViT-B/32 vision tower
(random weights: the architecture's cost, not its quality) and (b) the weight-free
frame descriptor, against ``--tracks`` random ``music`` vectors (with payloads) in an
embedded Qdrant Edge store built in a temporary directory, the store the CLI searches
by default (a published version, as ``recsys index rebuild`` leaves it). Beside them,
in the same run, the baseline that decodes every frame to full-size RGB and then
picks one per second. Prints the figures and writes JSON (``--json``, default
``benchmarks/results/video_scoring.json``). Runs unchanged on a CUDA machine
(``--device auto`` picks the GPU; CLIP then runs in fp16).

    python -m benchmarks.video_scoring [--repeats 3] [--device auto] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent


def make_video(path: Path, seconds: int, gop: int) -> Path:
    import av

    fps, width, height = 30, 1280, 720
    yy, xx = np.mgrid[0:height, 0:width]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {"preset": "ultrafast", "crf": "23", "keyint_min": str(gop), "sc_threshold": "0"}
        for i in range(seconds * fps):
            shift = i * 7
            frame = np.empty((height, width, 3), np.uint8)
            frame[..., 0] = (xx + shift) % 256
            frame[..., 1] = (yy + 2 * shift) % 256
            frame[..., 2] = ((xx // 40 + yy // 40 + i // fps) % 2) * 200
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decode_every_frame(path: Path, fps: float, size: int) -> np.ndarray:
    """The baseline: every frame decoded and converted to full-size RGB, then one per 1/fps s kept and resized."""
    import av
    from PIL import Image

    kept = []
    target = 0.0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            image = frame.to_ndarray(format="rgb24")  # (H, W, 3) at full size
            if frame.time is not None and frame.time + 1e-6 >= target:
                h, w = image.shape[:2]
                scale = size / min(h, w)
                resized = np.asarray(Image.fromarray(image).resize((round(w * scale), round(h * scale))))
                top, left = (resized.shape[0] - size) // 2, (resized.shape[1] - size) // 2
                kept.append(resized[top : top + size, left : left + size])
                target += 1.0 / fps
    return np.stack(kept)


VERSION = "benchmark"


def build_store(root: Path, tracks: int, dim: int) -> Any:
    """An Edge store whose ``tracks`` hold ``tracks`` random unit ``music`` vectors stamped with VERSION."""
    from recsys.vectorstore.base import Point
    from recsys.vectorstore.collections import tracks_spec
    from recsys.vectorstore.edge import EdgeStore

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(tracks, dim)).astype(np.float32)
    cultures = ["indian", "western", "greek"]
    store = EdgeStore(root)
    points = (
        Point(
            i,
            {"music": vectors[i]},
            {"track_id": i, "title": f"track {i}", "cultures": [cultures[i % 3]], "music_model": VERSION},
        )
        for i in range(tracks)
    )
    store.rebuild(tracks_spec({"music": dim}), points)
    return store


def build_scorer(kind: str, store: Any, device: Any, text_model: str | None = None) -> Any:
    import torch

    from recsys.embedders.text import MiniLMTextEncoder
    from recsys.embedders.video_frames import ClipFrameEncoder, FrameDescriptor
    from recsys.models.trimodal import TrimodalConfig, TrimodalModel
    from recsys.models.trimodal_bundle import Bundle, FeatureSpec
    from recsys.recommend.video_scoring import VideoScorer

    torch.manual_seed(0)
    if kind == "clip":
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        frames: Any = ClipFrameEncoder(
            network=CLIPVisionModelWithProjection(CLIPVisionConfig(projection_dim=512)), device=device
        )
    else:
        frames = FrameDescriptor()
    text = MiniLMTextEncoder(model_dir=text_model, device=device)
    config = TrimodalConfig(video_dim=frames.dim, text_dim=text.dim, music_dim=53)
    model = TrimodalModel(config).eval()
    bundle = Bundle(model, FeatureSpec(frame_encoder=kind), VERSION)
    return VideoScorer(bundle, store, device=device, frame_encoder=frames, text_encoder=text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument(
        "--gop", type=int, default=30, help="Frames between keyframes (30 = 1 s, as phones write)."
    )
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's own choice)."
    )
    parser.add_argument("--prompt", default="warm acoustic, slowly building")
    parser.add_argument(
        "--text-model",
        default=None,
        help="directory of a BERT-shaped sentence encoder (default: the packaged all-MiniLM-L6-v2)",
    )
    parser.add_argument("--json", type=Path, default=ROOT / "results" / "video_scoring.json")
    args = parser.parse_args()

    import torch

    from recsys.devices import resolve_device
    from recsys.media.video import read_frames

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    results: dict[str, Any] = {
        "video": {"seconds": args.seconds, "size": "1280x720", "fps": 30, "gop": args.gop},
        "tracks": args.tracks,
        "store": "Qdrant Edge (embedded), one published version",
        "device": str(device),
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average": os.getloadavg(),
            "platform": platform.platform(),
        },
        "prompt": args.prompt,
        "text_model": args.text_model or "all-MiniLM-L6-v2 (packaged)",
    }
    from recsys.models.trimodal import TrimodalConfig

    with tempfile.TemporaryDirectory() as tmp:
        path = make_video(Path(tmp) / "bench.mp4", args.seconds, args.gop)
        store = build_store(Path(tmp) / "vectors", args.tracks, TrimodalConfig.embed_dim)
        for kind in ("clip", "descriptor"):
            scorer = build_scorer(kind, store, device, args.text_model)
            scorer.score(path, prompt=args.prompt, n=20)  # warm-up: first-call costs are not latency
            runs = [scorer.score(path, prompt=args.prompt, n=20) for _ in range(args.repeats)]
            stages = {k: statistics.median(r.timings[k] for r in runs) for k in runs[0].timings}
            size = scorer.frame_encoder.input_size
            decoded = read_frames(path, size=size).decoded
            baseline = []
            for _ in range(args.repeats):
                clock = time.perf_counter()
                frames = decode_every_frame(path, 1.0, size)
                baseline.append(time.perf_counter() - clock)
            base_decode = statistics.median(baseline)
            total = sum(stages.values())
            results[kind] = {
                "frames": runs[0].frames,
                "decoded_frames": decoded,
                "stages_s": {k: round(v, 4) for k, v in stages.items()},
                "end_to_end_s": round(total, 4),
                "baseline_decode_every_frame": {
                    "decoded_frames": args.seconds * 30,
                    "decode_s": round(base_decode, 4),
                    "end_to_end_s": round(total - stages["decode_s"] + base_decode, 4),
                    "frames": len(frames),
                },
            }
            print(
                f"{kind:<10} end to end {total:6.3f} s  "
                + "  ".join(f"{k.removesuffix('_s')} {v:.3f}" for k, v in stages.items())
                + f"  | baseline (decode every frame) {results[kind]['baseline_decode_every_frame']['end_to_end_s']:.3f} s"
                f" (decode {base_decode:.3f} s, {args.seconds * 30} frames vs {decoded})"
            )
        store.close()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
