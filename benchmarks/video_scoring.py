"""End-to-end latency of scoring a video: decode, frame encoding, fusion (with a prompt), vector search.

A 30 s 1280x720 H.264 video (30 fps, a keyframe every ``--gop`` frames) is generated,
then scored by the full pipeline with the full-size CLIP ViT-B/32 vision tower (random
weights: the architecture's cost, not its quality) in ``float32`` and in ``int8``
(``RECSYS_VIDEO_PRECISION=int8``: Linear layers dynamically quantised), and with the
weight-free frame descriptor, against ``--tracks`` random ``music`` vectors (with
payloads) in an embedded Qdrant Edge store built in a temporary directory, the store
the CLI searches by default (a published version, as ``recsys index rebuild`` leaves
it). The paths are timed paired: each repeat scores the video once with every path, in
turn, so a busy machine slows them alike. Beside them, in the same run, the baseline
that decodes every frame to full-size RGB and then picks one per second.

Ranking agreement of the two CLIP paths (``--agreement-clips``, 0 skips it): the demo's
synthetic video–music set (what ``recsys demo`` generates) is generated, a trimodal
model is trained on it with the same random-weight CLIP B/32 features in ``float32``
(no pretrained CLIP can be fetched here; the model is trained, the frame encoder is
not), its music is indexed, and each held-out clip is scored with both paths: the
share of the ``float32`` top 10 that the ``int8`` top 10 also holds, without and with
a prompt, and each path's held-out Recall@10 of the clip's own music.

Prints the figures and writes JSON (``--json``, default
``benchmarks/results/video_scoring.json``). Runs unchanged on a CUDA machine
(``--device auto`` picks the GPU; CLIP then runs in fp16 and the int8 path is the
same fp16 path).

    python -m benchmarks.video_scoring [--repeats 5] [--device auto] [--json OUT]
"""

from __future__ import annotations

import argparse
import copy
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


def clip_b32(seed: int = 0) -> Any:
    """The full-size CLIP ViT-B/32 vision tower with its projection, random weights drawn from ``seed``."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(seed)
    return CLIPVisionModelWithProjection(CLIPVisionConfig(projection_dim=512)).eval()


def build_scorer(
    kind: str, store: Any, device: Any, text_model: str | None = None, network: Any = None
) -> Any:
    import torch

    from recsys.embedders.text import MiniLMTextEncoder
    from recsys.embedders.video_frames import ClipFrameEncoder, FrameDescriptor
    from recsys.models.trimodal import TrimodalConfig, TrimodalModel
    from recsys.models.trimodal_bundle import Bundle, FeatureSpec
    from recsys.recommend.video_scoring import VideoScorer

    torch.manual_seed(0)
    if kind.startswith("clip"):
        precision = kind.removeprefix("clip-")
        frames: Any = ClipFrameEncoder(network=network or clip_b32(), device=device, precision=precision)
    else:
        frames = FrameDescriptor()
    text = MiniLMTextEncoder(model_dir=text_model, device=device)
    config = TrimodalConfig(video_dim=frames.dim, text_dim=text.dim, music_dim=53)
    model = TrimodalModel(config).eval()
    bundle = Bundle(model, FeatureSpec(frame_encoder=kind.split("-")[0]), VERSION)
    return VideoScorer(bundle, store, device=device, frame_encoder=frames, text_encoder=text)


KINDS = ("clip-float32", "clip-int8", "descriptor")


def overlap_at(a: list[int], b: list[int], k: int = 10) -> float:
    """Share of the first ``k`` of ``a`` that the first ``k`` of ``b`` also holds."""
    return len(set(a[:k]) & set(b[:k])) / k


def ranking_agreement(root: Path, clips: int, epochs: int, device: Any, prompt: str) -> dict[str, Any]:
    """Top-10 agreement of the int8 and float32 CLIP paths on the demo's video–music set, through a
    trimodal model trained on float32 features of the same (random-weight) CLIP B/32."""
    import torch

    from pipelines.demo.video import SynthConfig, generate
    from pipelines.train.trimodal import run_training, split
    from recsys.embedders.video_frames import ClipFrameEncoder
    from recsys.models.trimodal_batches import load_features, pad
    from recsys.models.trimodal_bundle import FeatureSpec, load_bundle
    from recsys.models.trimodal_training import TrainSettings
    from recsys.recommend.video_scoring import VideoScorer
    from recsys.vectorstore.base import Point
    from recsys.vectorstore.collections import tracks_spec
    from recsys.vectorstore.edge import EdgeStore

    clock = time.perf_counter()
    videos = root / "demo-video"
    generate(videos, SynthConfig(clips=clips))
    clip_dir = root / "clip-b32"
    clip_b32().save_pretrained(clip_dir)
    spec = FeatureSpec(frame_encoder="clip", clip_model=str(clip_dir))
    model_path = root / "trimodal" / "model.pt"
    report = run_training(
        videos,
        model_path,
        spec=spec,
        settings=TrainSettings(epochs=epochs, device=str(device)),
        cache=root / "trimodal" / "cache",
    )
    bundle = load_bundle(model_path)
    train, test = load_features(model_path.with_name("features.npz"))
    ids = train.ids + test.ids
    music, mask = pad(
        [f[m] for f, m in zip(train.music, train.music_mask, strict=True)]
        + [f[m] for f, m in zip(test.music, test.music_mask, strict=True)]
    )
    with torch.inference_mode():
        vectors = bundle.model.embed_music(torch.from_numpy(music), torch.from_numpy(mask)).numpy()
    store = EdgeStore(root / "demo-vectors")
    store.rebuild(
        tracks_spec({"music": vectors.shape[1]}),
        (
            Point(i, {"music": vectors[i]}, {"track_id": i, "clip": ids[i], "music_model": bundle.version})
            for i in range(len(ids))
        ),
    )
    scorers = {
        precision: VideoScorer(
            bundle,
            store,
            device=device,
            frame_encoder=ClipFrameEncoder(str(clip_dir), None, device, precision=precision),
        )
        for precision in ("float32", "int8")
    }
    _, held_out = split(ids)
    queries = [ids[i] for i in held_out]
    rows: dict[str, list[float]] = {"video": [], "video+prompt": []}
    found = {"float32": 0, "int8": 0}
    for clip in queries:
        path = videos / f"{clip}.mov"
        for mode, words in (("video", None), ("video+prompt", prompt)):
            ranked = {
                precision: [t.track_id for t in scorer.score(path, prompt=words, n=10).tracks]
                for precision, scorer in scorers.items()
            }
            rows[mode].append(overlap_at(ranked["float32"], ranked["int8"]))
            if mode == "video":
                own = ids.index(clip)
                for precision, ranking in ranked.items():
                    found[precision] += own in ranking
    store.close()
    return {
        "set": f"demo video-music set, {len(ids)} clips ({len(queries)} held out as queries), "
        f"{len(ids)} music vectors",
        "frame_encoder": "CLIP ViT-B/32, random weights (seed 0), full size",
        "trimodal_model": f"trained {epochs} epochs on float32 CLIP features, {report.train} clips",
        "top10_overlap": {
            mode: {"mean": round(float(np.mean(v)), 4), "min": round(float(np.min(v)), 4)}
            for mode, v in rows.items()
        },
        "recall_at_10_own_music": {k: round(v / max(1, len(queries)), 4) for k, v in found.items()},
        "seconds": round(time.perf_counter() - clock, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument(
        "--gop", type=int, default=30, help="Frames between keyframes (30 = 1 s, as phones write)."
    )
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
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
    parser.add_argument(
        "--agreement-clips",
        type=int,
        default=120,
        help="clips of the demo video-music set for the ranking agreement (0 skips it)",
    )
    parser.add_argument("--agreement-epochs", type=int, default=30)
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
            "load_average_start": os.getloadavg(),
            "platform": platform.platform(),
        },
        "prompt": args.prompt,
        "text_model": args.text_model or "all-MiniLM-L6-v2 (packaged)",
        "repeats": args.repeats,
        "timing": "paired: every repeat scores the video once with each path in turn; medians",
    }
    from recsys.models.trimodal import TrimodalConfig

    with tempfile.TemporaryDirectory() as tmp:
        path = make_video(Path(tmp) / "bench.mp4", args.seconds, args.gop)
        store = build_store(Path(tmp) / "vectors", args.tracks, TrimodalConfig.embed_dim)
        network = clip_b32()
        scorers = {
            kind: build_scorer(
                kind,
                store,
                device,
                args.text_model,
                copy.deepcopy(network) if kind.startswith("clip") else None,
            )
            for kind in KINDS
        }
        for scorer in scorers.values():
            scorer.score(path, prompt=args.prompt, n=20)  # warm-up: first-call costs are not latency
        runs: dict[str, list[Any]] = {kind: [] for kind in KINDS}
        cpu: dict[str, list[float]] = {kind: [] for kind in KINDS}
        for _ in range(args.repeats):
            for kind, scorer in scorers.items():
                clock = time.process_time()
                runs[kind].append(scorer.score(path, prompt=args.prompt, n=20))
                cpu[kind].append(time.process_time() - clock)
        agreement_tops = {
            kind: [t.track_id for t in runs[kind][0].tracks[:10]] for kind in ("clip-float32", "clip-int8")
        }
        results["random_vectors_top10_overlap_int8_vs_float32"] = overlap_at(
            agreement_tops["clip-float32"], agreement_tops["clip-int8"]
        )
        baselines: dict[int, float] = {}
        for kind in KINDS:
            scorer = scorers[kind]
            kind_runs = runs[kind]
            stages = {k: statistics.median(r.timings[k] for r in kind_runs) for k in kind_runs[0].timings}
            totals = [sum(r.timings.values()) for r in kind_runs]
            size = scorer.frame_encoder.input_size
            decoded = read_frames(path, size=size).decoded
            if size not in baselines:
                baseline = []
                for _ in range(min(args.repeats, 3)):
                    clock = time.perf_counter()
                    decode_every_frame(path, 1.0, size)
                    baseline.append(time.perf_counter() - clock)
                baselines[size] = statistics.median(baseline)
            base_decode = baselines[size]
            total = statistics.median(totals)
            results[kind] = {
                "frame_encoder": kind_runs[0].frame_encoder,
                "frames": kind_runs[0].frames,
                "decoded_frames": decoded,
                "stages_s": {k: round(v, 4) for k, v in stages.items()},
                "end_to_end_s": round(total, 4),
                "end_to_end_each_s": [round(t, 4) for t in totals],
                # CPU time of the process (all threads) per call: the work, less sensitive to other load.
                "cpu_s": round(statistics.median(cpu[kind]), 4),
                "baseline_decode_every_frame": {
                    "decoded_frames": args.seconds * 30,
                    "decode_s": round(base_decode, 4),
                    "end_to_end_s": round(total - stages["decode_s"] + base_decode, 4),
                },
            }
            print(
                f"{kind:<13} end to end {total:6.3f} s  "
                + "  ".join(f"{k.removesuffix('_s')} {v:.3f}" for k, v in stages.items())
                + f"  cpu {statistics.median(cpu[kind]):.3f} s"
                + f"  | baseline (decode every frame) {results[kind]['baseline_decode_every_frame']['end_to_end_s']:.3f} s"
                f" (decode {base_decode:.3f} s, {args.seconds * 30} frames vs {decoded})"
            )
        ratios = [
            sum(a.timings.values()) / sum(b.timings.values())
            for a, b in zip(runs["clip-float32"], runs["clip-int8"], strict=True)
        ]
        results["speedup_int8_over_float32"] = {
            "end_to_end_median": round(statistics.median(ratios), 3),
            "each": [round(r, 3) for r in ratios],
        }
        print(
            f"int8 vs float32, paired: {statistics.median(ratios):.2f}x faster end to end (median of {len(ratios)})"
        )
        store.close()
        if args.agreement_clips > 0:
            agreement = ranking_agreement(
                Path(tmp), args.agreement_clips, args.agreement_epochs, device, args.prompt
            )
            results["ranking_agreement"] = agreement
            overlap = agreement["top10_overlap"]
            print(
                f"ranking agreement, int8 vs float32 top 10 on {agreement['set']}: "
                f"video {overlap['video']['mean']:.3f} (min {overlap['video']['min']:.2f}), "
                f"video+prompt {overlap['video+prompt']['mean']:.3f} (min {overlap['video+prompt']['min']:.2f}); "
                f"own-music Recall@10 float32 {agreement['recall_at_10_own_music']['float32']:.3f}, "
                f"int8 {agreement['recall_at_10_own_music']['int8']:.3f}"
            )
    results["machine"]["load_average_end"] = os.getloadavg()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(
        f"load average {results['machine']['load_average_start'][0]:.2f} at the start, "
        f"{results['machine']['load_average_end'][0]:.2f} at the end"
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
