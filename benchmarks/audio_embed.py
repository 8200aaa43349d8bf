"""Audio embedding throughput: real-time factor (seconds of audio embedded per second).

Measured in one run, on the same machine and the same weights (the full-size MERT-95M
architecture with random weights, written as a MERT-format checkpoint and loaded
through the production loader), the runs taking turns so a busy machine slows them alike:

- ``raw_forward_b{1,8}``: the model's forward pass on ready tensors (5 s windows),
  every hidden state returned: the ceiling;
- ``end_to_end_b{1,8}``: ``CultureMertEmbedder`` from files: decode (mp3, flac,
  ogg at 44.1/48 kHz), resample to 24 kHz, window, normalise, forward, pool; the next
  files decode on worker threads while a batch is in the model, as in ``recsys embed audio``;
- ``raw_forward_int8_b8``, ``end_to_end_int8_b{1,8}``: the same with
  ``precision="int8"`` (``RECSYS_AUDIO_PRECISION=int8``: int8 linear layers, CPU only);
  ``..._int8bf16_...``: ``precision="int8-bf16"`` (and the convolutional front end in bfloat16);
- ``naive_loop``: one file and one window at a time, normalised with transformers'
  ``Wav2Vec2FeatureExtractor``, under ``torch.no_grad`` (what a first script does);
- ``dsp``: the weight-free DSP embedder from the same files.

Then, on real recordings (``--audio``, by default the project's shared audio folder
when it is there; the first ``--audio-seconds`` of each file), how close the int8 vectors
are to the float32 ones from the same weights: the cosine of the track embeddings the
product stores (mean over layers), of each layer's time-pooled state, and how often a
track's nearest neighbour among the others is the same. The weights are random, so
this measures the arithmetic of the two paths, not what trained weights would give.

On CUDA the model runs in bfloat16 (the embedder's choice) and the int8 runs are left out.

    python -m benchmarks.audio_embed [--files 8] [--seconds 20] [--repeats 2] [--runs NAME,...]
        [--audio DIR] [--audio-seconds 10] [--json PATH]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

from pipelines.demo.audio import STYLES, synthesize
from recsys.embedders.checkpoints import MERT_95M_CONFIG, MERT_PREPROCESSOR, hubert_config, parameter_count
from recsys.embedders.culturemert import CultureMertConfig, CultureMertEmbedder
from recsys.embedders.dsp_audio import DspAudioEmbedder
from recsys.errors import AudioError
from recsys.media.ahead import default_workers, map_ahead
from recsys.media.audio import load_audio, window_starts

WINDOW_S = 5.0
FAST = ("int8", "int8-bf16")  # the CPU paths timed beside float32


def run_tag(precision: str) -> str:
    """The infix of a precision's run names: ``end_to_end_int8_b8``, ``end_to_end_int8bf16_b8``."""
    return "" if precision == "float32" else precision.replace("-", "") + "_"


RATE = 24_000
FORMATS: tuple[tuple[str, int, dict[str, Any]], ...] = (
    ("flac", 44_100, {}),
    ("mp3", 44_100, {}),
    ("ogg", 48_000, {}),
)


def write_checkpoint(path: Path) -> None:
    """The full-size 95M architecture, random weights, as MERT publishes it (old weight-norm names)."""
    from transformers import HubertModel

    torch.manual_seed(0)
    model = HubertModel(hubert_config(MERT_95M_CONFIG))
    state = {
        k.replace("parametrizations.weight.original0", "weight_g").replace(
            "parametrizations.weight.original1", "weight_v"
        ): v.contiguous()
        for k, v in model.state_dict().items()
    }
    from safetensors.torch import save_file

    save_file(state, str(path / "model.safetensors"))
    (path / "config.json").write_text(json.dumps(MERT_95M_CONFIG))
    (path / "preprocessor_config.json").write_text(json.dumps(MERT_PREPROCESSOR))


def write_files(folder: Path, count: int, seconds: float) -> list[Path]:
    styles = list(STYLES.values())
    paths = []
    for i in range(count):
        suffix, rate, kwargs = FORMATS[i % len(FORMATS)]
        audio = synthesize(styles[i % len(styles)], seconds=seconds, sample_rate=rate, seed=i)
        stereo = np.stack([audio, np.roll(audio, 7)], axis=1)
        path = folder / f"clip{i:02d}.{suffix}"
        sf.write(path, stereo, rate, **kwargs)
        paths.append(path)
    return paths


AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg"}
SHARED_AUDIO = Path(__file__).resolve().parents[2] / "shared" / "data" / "audio"


def best_times(runs: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
    """Best wall time of each run; the runs take turns so a busy machine slows them alike."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two arrays of the same shape (last axis the vector)."""
    dot = (a * b).sum(-1)
    return dot / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)


def nearest_other(vectors: np.ndarray) -> np.ndarray:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    return np.argmax(sims, axis=1)


def agreement(
    reference: CultureMertEmbedder, other: CultureMertEmbedder, folder: Path, seconds: float
) -> dict:
    """How close ``other``'s vectors are to ``reference``'s on the recordings in ``folder``."""
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    clips, skipped = [], []
    for path in paths:
        try:
            clips.append(load_audio(path, reference.sample_rate, max_duration_s=seconds).samples)
        except AudioError as exc:
            skipped.append(f"{path.name}: {exc}")
    layers = {}
    for name, embedder in (("reference", reference), ("other", other)):
        states = []
        for i in range(0, len(clips), 8):
            states.append(embedder.layer_states(clips[i : i + 8]))  # (N, L, D)
        layers[name] = np.concatenate(states)
    weights = reference._layer_weights
    tracks = {k: np.einsum("nld,l->nd", v, weights) for k, v in layers.items()}  # what embed() stores
    track_cos = cosines(tracks["reference"], tracks["other"])
    layer_cos = cosines(layers["reference"], layers["other"])  # (N, L)
    same_nearest = nearest_other(tracks["reference"]) == nearest_other(tracks["other"])
    return {
        "files": len(clips),
        "skipped": skipped,
        "seconds": round(sum(len(c) for c in clips) / reference.sample_rate, 1),
        "track_cosine_mean": round(float(track_cos.mean()), 5),
        "track_cosine_min": round(float(track_cos.min()), 5),
        "layer_cosine_mean": [round(float(x), 5) for x in layer_cos.mean(axis=0)],
        "last_layer_cosine_min": round(float(layer_cos[:, -1].min()), 5),
        "same_nearest_neighbour": round(float(same_nearest.mean()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each file (a multiple of 5 s)")
    parser.add_argument("--repeats", type=int, default=2, help="turns per run; the best counts")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--runs", default="", help="comma-separated names of the runs to time (default: all)")
    parser.add_argument(
        "--audio",
        type=Path,
        default=SHARED_AUDIO,
        help="folder of real recordings for the int8-vs-float32 comparison (skipped when absent)",
    )
    parser.add_argument(
        "--audio-seconds", type=float, default=10.0, help="seconds of each recording compared"
    )
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "audio_embed.json")
    args = parser.parse_args()

    results: dict[str, Any] = {}
    runs: dict[str, Callable[[], Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "ckpt").mkdir()
        write_checkpoint(root / "ckpt")
        files = write_files(root, args.files, args.seconds)
        audio_s = args.files * args.seconds

        def build(b: int, precision: str) -> CultureMertEmbedder:
            config = CultureMertConfig(
                model=str(root / "ckpt"),
                window_s=WINDOW_S,
                batch_size=b,
                device=args.device,
                precision=precision,
            )
            return CultureMertEmbedder(config)

        embedders = {("float32", b): build(b, "float32") for b in (1, 8)}
        first = embedders[("float32", 1)]
        model, device, dtype = first.model, first.device, first.dtype
        if device.type == "cpu":
            embedders.update({(precision, b): build(b, precision) for precision in FAST for b in (1, 8)})
        print(
            f"device {device} ({dtype}), torch threads {torch.get_num_threads()}, "
            f"{parameter_count(model) / 1e6:.2f}M parameters, {args.files} files x {args.seconds:g} s, "
            f"{default_workers()} decode thread(s)"
        )

        # raw forward on ready tensors: the same number of 5 s windows as the files hold
        windows = int(audio_s // WINDOW_S)
        raw_models = [("", b, model) for b in (1, 8)]
        for precision in FAST:
            if (precision, 8) in embedders:
                raw_models.append((run_tag(precision), 8, embedders[(precision, 8)].model))
        for tag, b, net in raw_models:
            batches = [torch.randn(min(b, windows - i), int(WINDOW_S * RATE)) for i in range(0, windows, b)]

            def raw(batches: list[torch.Tensor] = batches, net: Any = net) -> None:
                with torch.inference_mode():
                    for x in batches:
                        net(x.to(device, dtype), output_hidden_states=True)
                sync(device)

            runs[f"raw_forward_{tag}b{b}"] = raw

        for (precision, b), embedder in embedders.items():

            def end_to_end(embedder: CultureMertEmbedder = embedder, b: int = b) -> None:
                # as `recsys embed audio` does it: the next files decode on threads during the forward
                rate = embedder.sample_rate
                clips = map_ahead(lambda p: load_audio(p, rate).samples, files, ahead=b)
                while batch := list(itertools.islice(clips, b)):
                    embedder.embed(batch)
                sync(device)

            runs[f"end_to_end_{run_tag(precision)}b{b}"] = end_to_end

        from transformers import Wav2Vec2FeatureExtractor

        extractor = Wav2Vec2FeatureExtractor(
            **{k: v for k, v in MERT_PREPROCESSOR.items() if k != "feature_extractor_type"}
        )

        def naive() -> None:
            for path in files:
                samples = load_audio(path, RATE).samples
                pooled = []
                size = int(WINDOW_S * RATE)
                for start in window_starts(len(samples), size, size):
                    inputs = extractor(samples[start : start + size], sampling_rate=RATE, return_tensors="pt")
                    with torch.no_grad():
                        out = model(inputs["input_values"].to(device, dtype), output_hidden_states=True)
                    pooled.append(torch.stack(out.hidden_states).squeeze(1).mean(-2).float().cpu())
                torch.stack(pooled).mean(0).mean(0)
            sync(device)

        runs["naive_loop"] = naive

        dsp = DspAudioEmbedder()

        def dsp_run() -> None:
            dsp.embed([load_audio(p, dsp.sample_rate).samples for p in files])

        runs["dsp"] = dsp_run

        if args.runs:
            wanted = [name.strip() for name in args.runs.split(",") if name.strip()]
            unknown = sorted(set(wanted) - set(runs))
            if unknown:
                parser.error(f"unknown run(s) {unknown}; the runs are {sorted(runs)}")
            runs = {name: runs[name] for name in wanted}

        # warm-up: one short window through each model, one short clip through the DSP embedder
        for embedder in embedders.values():
            embedder.embed([np.zeros(RATE, dtype=np.float32) + 0.01])
        dsp.embed([np.random.default_rng(0).normal(0, 0.1, dsp.sample_rate).astype(np.float32)])
        for name, seconds in best_times(runs, args.repeats).items():
            results[name] = audio_s / seconds

        closeness = closeness_bf16 = None
        if ("int8", 8) in embedders and args.audio.is_dir():
            closeness = agreement(
                embedders[("float32", 8)], embedders[("int8", 8)], args.audio, args.audio_seconds
            )
            closeness_bf16 = agreement(
                embedders[("float32", 8)], embedders[("int8-bf16", 8)], args.audio, args.audio_seconds
            )
        elif ("int8", 8) in embedders:
            print(f"no folder {args.audio}: the int8-vs-float32 comparison on real recordings is skipped")

    for b in (1, 8):
        if f"end_to_end_b{b}" in results and f"raw_forward_b{b}" in results:
            results[f"end_to_end_vs_raw_b{b}"] = results[f"end_to_end_b{b}"] / results[f"raw_forward_b{b}"]
        for precision in FAST:
            tag = run_tag(precision)
            if f"end_to_end_{tag}b{b}" in results and f"end_to_end_b{b}" in results:
                results[f"{tag}vs_float32_b{b}"] = (
                    results[f"end_to_end_{tag}b{b}"] / results[f"end_to_end_b{b}"]
                )
    for name, value in results.items():
        unit = "x the other" if "_vs_" in name else "x real time"
        print(f"{name:<24} {value:8.2f} {unit}")
    if closeness:
        print(
            f"int8 vs float32 on {closeness['files']} real recordings ({closeness['seconds']:g} s): "
            f"track cosine mean {closeness['track_cosine_mean']:.4f}, min {closeness['track_cosine_min']:.4f}; "
            f"last layer min {closeness['last_layer_cosine_min']:.4f}; "
            f"same nearest neighbour {closeness['same_nearest_neighbour']:.1%}"
        )
        if closeness_bf16:
            print(
                f"int8-bf16 vs float32 on the same recordings: track cosine mean "
                f"{closeness_bf16['track_cosine_mean']:.4f}, min {closeness_bf16['track_cosine_min']:.4f}; "
                f"same nearest neighbour {closeness_bf16['same_nearest_neighbour']:.1%}"
            )
        for line in closeness["skipped"]:
            print(f"skipped {line}")
    record = {
        "benchmark": "audio_embed",
        "device": str(device),
        "dtype": str(dtype),
        "torch_threads": torch.get_num_threads(),
        "decode_threads": default_workers(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "load_average": list(os.getloadavg()),
        "files": args.files,
        "seconds_per_file": args.seconds,
        "repeats": args.repeats,
        "window_s": WINDOW_S,
        "baseline": "raw_forward_b1/raw_forward_b8 (model forward on ready tensors)",
        "real_time_factor": {k: round(v, 3) for k, v in results.items()},
        "int8_vs_float32": closeness,
        "int8_bf16_vs_float32": closeness_bf16,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
